"""The training loop: `fit`, `evaluate`, `predict`, `predict_proba`, and the `History` of a run.

`fit` knows nothing about the model beyond "call it on one sample, get a Value or a list of
Values": it turns each batch into a loss, runs `zero_grad(); loss.backward(); step()`, and
after each epoch measures the loss and accuracy of the weights as they are *after* that
epoch's updates (under `no_grad`, on the whole training set and the validation set). So
`history.loss[-1]` is the loss of the final weights: recomputing it from the trained model
gives the same number. The untrained model's loss is measured too, as the yardstick of
divergence: a run whose whole-set loss grows by orders of magnitude over its best
(`check_divergence`, callable by any training loop once per epoch), turns NaN or infinite,
or whose forward pass overflows, stops with a `DivergenceError`, and the model keeps the
weights of the last finished epoch.

A loss is named ("hinge", "bce", "cross_entropy", "mse", or the function itself from
`nn.losses`), so `fit` also knows how outputs become class predictions:

| loss          | outputs        | targets given to the loss | predicted class     |
|---------------|----------------|---------------------------|---------------------|
| hinge         | one score      | -1 / +1 (from 0 / 1)      | score > 0           |
| bce           | one logit      | 0 / 1                     | logit > 0           |
| cross_entropy | C logits       | class index               | argmax              |
| mse           | one value / C  | 0 / 1, or one-hot         | value > 0.5, argmax |

`y` is always given as class indices 0..C-1 (hinge also accepts -1 / +1).

Two engines run the same loop. `engine="tape"` (the default for `nn` modules and the built-in
losses) records one sample's loss once (`autograd.tape`: the model, the loss, and the
sample's features and label as inputs) and replays it over each batch with numpy; the
optimiser updates a flat array of the weights. `engine="values"` builds a Value graph per
sample, as a learner would write it: the reference, and what the tape is tested against.
Both give the same history (losses equal to about 1e-12 relative).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from autograd import Value, no_grad
from autograd.tape import Tape, one_blas_thread, record

from . import losses
from .module import Module
from .optim import LRScheduler, Optimizer


class DivergenceError(ArithmeticError):
    """Training stopped because it diverged: the loss became NaN or infinite, a forward pass
    overflowed, or the loss grew by orders of magnitude (see `check_divergence`).

    Attributes:
        epoch, batch: where it happened (1-based).
        history: the `History` up to the last finished epoch.
    The model holds the weights of the last finished epoch (or the untrained ones): the
    last whose loss was finite and measured on the whole training set.
    """

    def __init__(self, message: str, epoch: int, batch: int, history: History) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.history = history


@dataclass
class History:
    """What `fit` measured, one entry per epoch, after that epoch's updates.

    Attributes:
        loss, accuracy: on the training set.
        val_loss, val_accuracy: on the validation set (empty without one).
        lr: the learning rate used during the epoch.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """How many epochs finished."""
        return len(self.loss)

    def to_dict(self) -> dict[str, list[float]]:
        """The history as plain lists (for JSON)."""
        return asdict(self)


# -----------------------------------------------------------------------------------------
# Losses and how outputs become predictions
# -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Objective:
    name: str
    loss: Callable[..., Value]
    targets: Callable[[np.ndarray, int], Any]  # (class indices, n_outputs) -> loss targets
    classify: Callable[[np.ndarray], np.ndarray]  # outputs (n, k) -> class indices
    # For the tape: the targets as float columns (n, t), the tape's label inputs, and how
    # many terms of the loss one sample adds (its "mean" divides by n times that).
    columns: Callable[[np.ndarray, int], np.ndarray] | None = None
    terms: Callable[[int], int] = lambda k: 1


def _binary(threshold: float) -> Callable[[np.ndarray], np.ndarray]:
    def classify(out: np.ndarray) -> np.ndarray:
        if out.shape[1] == 1:
            return (out[:, 0] > threshold).astype(np.int64)
        return np.argmax(out, axis=1)

    return classify


def _hinge_targets(y: np.ndarray, k: int) -> list[float]:
    # Hinge wants -1 / +1; class indices 0 / 1 map to -1 / +1.
    values = set(np.unique(y).tolist())
    if values <= {-1, 1}:
        return [float(v) for v in y]
    if values <= {0, 1}:
        return [2.0 * v - 1.0 for v in y]
    raise ValueError(f"hinge loss: needs two classes (0/1 or -1/+1), got labels {sorted(values)}")


def _mse_targets(y: np.ndarray, k: int) -> Any:
    if k == 1:
        return [float(v) for v in y]
    eye = np.eye(k)
    return [eye[int(v)].tolist() for v in y]


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    bad = np.flatnonzero((y < 0) | (y >= k) | (y != np.round(y)))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"cross_entropy (sample {i}): target {y[i]!r} is out of range for {k} classes"
        )
    return np.eye(k)[y.astype(np.int64)]


def _mse_columns(y: np.ndarray, k: int) -> np.ndarray:
    return y.astype(np.float64)[:, None] if k == 1 else _one_hot(y, k)


_OBJECTIVES = {
    "hinge": _Objective(
        "hinge",
        losses.hinge_loss,
        _hinge_targets,
        _binary(0.0),
        lambda y, k: np.array(_hinge_targets(y, k))[:, None],
    ),
    "bce": _Objective(
        "bce",
        losses.binary_cross_entropy_with_logits,
        lambda y, k: [float(v) for v in y],
        _binary(0.0),
        lambda y, k: y.astype(np.float64)[:, None],
    ),
    "cross_entropy": _Objective(
        "cross_entropy",
        losses.cross_entropy,
        lambda y, k: [int(v) for v in y],
        _binary(0.0),
        _one_hot,
    ),
    "mse": _Objective(
        "mse", losses.mse_loss, _mse_targets, _binary(0.5), _mse_columns, lambda k: k
    ),
}


def _objective(loss: str | Callable[..., Value]) -> _Objective:
    if isinstance(loss, str):
        if loss not in _OBJECTIVES:
            raise ValueError(f"loss: unknown name {loss!r}; choose one of {sorted(_OBJECTIVES)}")
        return _OBJECTIVES[loss]
    for obj in _OBJECTIVES.values():
        if obj.loss is loss:
            return obj
    if callable(loss):
        # A loss of one's own: targets as given; predictions as for a score or logits.
        return _Objective(
            getattr(loss, "__name__", "loss"), loss, lambda y, k: y.tolist(), _binary(0.0)
        )
    raise TypeError(f"loss: expected a name or a callable, got {type(loss).__name__}")


# -----------------------------------------------------------------------------------------
# Forward passes
# -----------------------------------------------------------------------------------------


def _rows(X: Any) -> list[list[float]]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    # Plain Python floats, not Values: the data needs no gradient, so it adds no nodes.
    return X.tolist()


def _outputs(model: Callable[[Any], Any], rows: Sequence[Sequence[float]]) -> list[Any]:
    return [model(r) for r in rows]


def _as_matrix(outs: list[Any]) -> np.ndarray:
    """Model outputs (Values, or lists of Values) as a float array (n, k)."""
    return np.array(
        [[o.data] if isinstance(o, Value) else [getattr(v, "data", v) for v in o] for o in outs],
        dtype=np.float64,
    ).reshape(len(outs), -1)


def _forward_numpy(model: Any, X: Any) -> np.ndarray:
    if hasattr(model, "forward_numpy"):
        out = np.asarray(model.forward_numpy(np.asarray(X, dtype=np.float64).reshape(len(X), -1)))
        return out
    with no_grad():
        return _as_matrix(_outputs(model, _rows(X)))


def _check_array(X: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """X as a float64 array (n, d) and y as an array (n,), checked: shapes that agree, at
    least one sample, every feature finite (raises ValueError naming `where`)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{where}: X has {len(X)} rows but y has shape {y.shape}")
    if len(X) == 0:
        raise ValueError(f"{where}: no samples")
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        # Caught here, or it would surface later as a NaN loss blamed on the learning rate.
        i, j = bad[0]
        raise ValueError(f"{where}: X[{i}, {j}] is {float(X[i, j])!r}; the data must be finite")
    return X, y


def _check_xy(X: Any, y: Any, where: str) -> tuple[list[list[float]], np.ndarray]:
    """`_check_array`, with X as a list of rows of floats (what a model of Values takes)."""
    array, y = _check_array(X, y, where)
    return array.tolist(), y


def _measure(
    model: Callable[[Any], Any], rows: list[list[float]], y: np.ndarray, obj: _Objective
) -> tuple[float, float]:
    with no_grad():
        outs = _outputs(model, rows)
        out = _as_matrix(outs)
        value = obj.loss(outs, obj.targets(y, out.shape[1])).data
    accuracy = float(np.mean(obj.classify(out) == _class_index(y)))
    return value, accuracy


def _class_index(y: np.ndarray) -> np.ndarray:
    # -1/+1 labels (hinge) count as classes 0/1.
    return np.where(y < 0, 0, y).astype(np.int64)


def evaluate(
    model: Callable[[Any], Any],
    X: Any,
    y: Any,
    loss: str | Callable[..., Value] = "hinge",
    engine: str = "auto",
) -> tuple[float, float]:
    """The loss and the accuracy of `model` on `(X, y)`, under `no_grad` (no graph kept).

    Args:
        model: a callable from one sample to a Value or a list of Values (e.g. an MLP).
        X: features, shape (n_samples, n_features).
        y: class indices (hinge also takes -1/+1).
        loss: a loss name or function (see the module docstring).
        engine: "tape", "values" or "auto", as for `fit` (the tape replays one sample's
            recorded graph over all samples, a chunk at a time).
    Returns:
        `(loss, accuracy)` as floats.
    """
    obj = _objective(loss)
    if _use_tape(engine, model, obj):
        X, y = _check_array(X, y, "evaluate")
        return _TapeEngine(model, X, y, obj, None).measure(None, y)
    rows, y = _check_xy(X, y, "evaluate")
    return _measure(model, rows, y, obj)


def predict(model: Any, X: Any, loss: str | Callable[..., Value] = "hinge") -> np.ndarray:
    """Predicted class indices for `X`, as `fit` with this `loss` counts them correct.

    Uses a numpy forward pass when the model has one (`MLP.forward_numpy`), else Values
    under `no_grad`. Returns an int64 array of shape (n_samples,).
    """
    return _objective(loss).classify(_forward_numpy(model, X))


def predict_proba(model: Any, X: Any) -> np.ndarray:
    """Class probabilities for `X`: shape (n_samples, n_classes), rows summing to 1.

    One output is read as a logit (sigmoid gives P(class 1), as with the "bce" loss); several
    outputs as logits of a softmax (the "cross_entropy" loss). A hinge-trained model's score
    is not a probability: use `predict` for it.
    """
    out = _forward_numpy(model, X)
    if out.shape[1] == 1:
        z = out[:, 0]
        e = np.exp(-np.abs(z))
        p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return np.column_stack([1.0 - p, p])
    shifted = out - out.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


# -----------------------------------------------------------------------------------------
# The two engines: one batch's loss and gradients, an update, and the measure of an epoch
# -----------------------------------------------------------------------------------------

#: `fit` with `batch_size=None` trains on the whole set at once up to this many samples, and
#: in mini-batches of `DEFAULT_BATCH_SIZE` above it, so memory grows with the batch, not
#: with the table.
FULL_BATCH_LIMIT = 10_000
DEFAULT_BATCH_SIZE = 1_000


class _ValuesEngine:
    """Value graphs, one per sample: `obj.loss([model(x) ...]).backward()`, then `step()`."""

    def __init__(
        self, model: Any, rows: list[list[float]], targets: Any, obj: _Objective, opt: Optimizer
    ) -> None:
        self.model, self.rows, self.targets, self.obj, self.opt = model, rows, targets, obj, opt
        self.params = model.parameters()
        self._loss: Value | None = None

    def weights(self) -> list[float]:
        return [p.data for p in self.params]

    def set_weights(self, good: Any) -> None:
        for p, d in zip(self.params, good):
            p.data = d

    def batch_loss(self, idx: list[int]) -> float:
        """The batch's loss (raises OverflowError/ZeroDivisionError if a forward fails)."""
        self._loss = self.obj.loss(
            [self.model(self.rows[i]) for i in idx], [self.targets[i] for i in idx]
        )
        return self._loss.data

    def step(self) -> None:
        assert self._loss is not None
        self.opt.zero_grad()
        self._loss.backward()
        self.opt.step()
        self._loss = None

    def sync(self) -> None:
        """Nothing to do: the model's Values are the weights."""

    def measure(self, X: Any, y: np.ndarray) -> tuple[float, float]:
        rows = self.rows if X is None else _rows(X)
        return _measure(self.model, rows, y, self.obj)


class _TapeEngine:
    """One sample's loss recorded once, replayed over each batch with numpy (`autograd.tape`).

    The tape's inputs are a sample's features and its label columns (one-hot for
    cross-entropy); its outputs the sample's loss (reduction "sum": the terms of one sample)
    and the model's outputs. The weights live in a flat float64 array while training, in the
    order of `model.parameters()`; `sync()` writes them (and the last gradients) back into
    the model's Values.
    """

    def __init__(self, model: Any, X: np.ndarray, y: np.ndarray, obj: _Objective, opt: Any):
        if obj.columns is None:
            raise ValueError(
                f"fit: engine='tape' needs a built-in loss ({sorted(_OBJECTIVES)}), got "
                f"{obj.name!r}; use engine='values' for a loss of one's own"
            )
        self.model, self.obj, self.opt = model, obj, opt
        self.params = model.parameters()
        position = {id(p): i for i, p in enumerate(self.params)}
        opt_params = [] if opt is None else opt.params  # no optimiser: only measuring
        missing = [i for i, p in enumerate(opt_params) if id(p) not in position]
        if missing:
            raise ValueError(
                f"fit: the optimiser's parameter {missing[0]} is not a parameter of the model; "
                "engine='tape' trains the model's parameters"
            )
        self.opt_index = np.array([position[id(p)] for p in opt_params], dtype=np.intp)
        self.whole = bool(
            len(self.opt_index) == len(self.params)
            and np.array_equal(self.opt_index, np.arange(len(self.params)))
        )
        self.n_features = X.shape[1]
        self.n_outputs = _as_matrix([_first_output(model, X[0].tolist())]).shape[1]
        self.inputs = self.encode(X, y)
        self.tape = self._record(self.inputs)
        self.flat = np.array([p.data for p in self.params], dtype=np.float64)
        self.grads = np.zeros_like(self.flat)
        self._scale = 1.0

    def encode(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The tape's inputs for these samples: features, then label columns."""
        assert self.obj.columns is not None
        return np.hstack([X, self.obj.columns(y, self.n_outputs)])

    def _record(self, inputs: np.ndarray) -> Tape:
        d, obj, model = self.n_features, self.obj, self.model
        as_list = obj.name == "cross_entropy" or inputs.shape[1] - d > 1

        def per_sample(v: list[Value]) -> list[Value]:
            out = model(v[:d])
            outs = [out] if isinstance(out, Value) else list(out)
            target = v[d:] if as_list else v[d]
            return [obj.loss(out, target, reduction="sum"), *outs]

        # Recorded on up to 8 samples spread over the data, so a graph that depends on
        # the sample is caught (see autograd.tape.record).
        n = len(inputs)
        picks = sorted(set(np.linspace(0, n - 1, min(n, 8)).astype(int).tolist()))
        names = [f"x{i}" for i in range(d)] + [f"y{j}" for j in range(inputs.shape[1] - d)]
        return record(per_sample, *inputs[picks], params=self.params, input_names=names)

    def weights(self) -> np.ndarray:
        return self.flat.copy()

    def set_weights(self, good: Any) -> None:
        self.flat = np.array(good, dtype=np.float64)
        self.sync()

    def batch_loss(self, idx: list[int]) -> float:
        n = len(idx)
        per = self.obj.terms(self.n_outputs)
        self._scale = 1.0 / (n * per)
        run = self.tape.run(self.inputs[idx], self.flat, seed=self._scale, index=np.asarray(idx))
        self.grads = run.param_grads
        return float(run.outputs[:, 0].sum() / (n * per))

    def step(self) -> None:
        opt = self.opt
        if type(opt).update is Optimizer.update:
            # An optimiser of one's own with only step(): run it on the model's Values.
            self.sync()
            opt.step()
            self.flat = np.array([p.data for p in self.params], dtype=np.float64)
            return
        if self.whole:
            self.flat = opt.update(self.flat, self.grads)
        else:
            i = self.opt_index
            self.flat[i] = opt.update(self.flat[i], self.grads[i])

    def sync(self) -> None:
        for p, d, g in zip(self.params, self.flat.tolist(), self.grads.tolist()):
            p.data = d
            p.grad = g

    def measure(self, X: Any, y: np.ndarray) -> tuple[float, float]:
        inputs = self.inputs if X is None else self.encode(np.asarray(X, dtype=np.float64), y)
        out = self.tape.forward(inputs, self.flat)
        loss = float(out[:, 0].sum() / (len(inputs) * self.obj.terms(self.n_outputs)))
        accuracy = float(np.mean(self.obj.classify(out[:, 1:]) == _class_index(y)))
        return loss, accuracy


def _use_tape(engine: str, model: Any, obj: _Objective) -> bool:
    if engine not in ("auto", "tape", "values"):
        raise ValueError(f"fit: engine must be 'auto', 'tape' or 'values', got {engine!r}")
    if engine == "auto":
        return isinstance(model, Module) and obj.columns is not None
    return engine == "tape"


# -----------------------------------------------------------------------------------------
# fit
# -----------------------------------------------------------------------------------------


#: A whole-set loss more than this many times its best so far, and above the untrained
#: model's, means training diverged: two orders of magnitude, where a healthy run's loss
#: wobbles by a few percent to a few times (the step size, not the data, is at fault).
DIVERGENCE_FACTOR = 100.0


def check_divergence(
    loss: float, best: float, initial: float, factor: float = DIVERGENCE_FACTOR
) -> str | None:
    """Whether a loss measured on the whole training set means training diverged.

    Training has diverged when the loss is NaN or infinite, or when it is more than
    `factor` times the best loss so far *and* above the untrained model's loss (so a run
    that fits the data to a loss near 0 may wobble there without being stopped). Called
    once per epoch by `fit`; any other training loop can call it the same way.

    Args:
        loss: this epoch's loss on the whole training set.
        best: the smallest whole-set loss so far, the untrained model's included.
        initial: the untrained model's whole-set loss.
        factor: how many times the best counts as diverging.
    Returns:
        None, or the reason as a short phrase ("the loss is nan", "the loss grew to ...").
    """
    if not math.isfinite(loss):
        return f"the loss is {loss!r}"
    if loss > initial and loss > factor * best:
        return (
            f"the loss grew to {loss:.4g}, more than {factor:g} times its best ({best:.4g}; "
            f"untrained {initial:.4g})"
        )
    return None


def _batch_diverged(loss: float, initial: float, factor: float = DIVERGENCE_FACTOR) -> str | None:
    # A batch's loss is one batch's, not the whole set's: only a loss far above the untrained
    # model's (or not finite) stops training before the epoch is measured.
    if not math.isfinite(loss):
        return f"the loss is {loss!r}"
    if loss > factor * max(initial, 1.0):
        return (
            f"a batch's loss grew to {loss:.4g}, more than {factor:g} times the untrained "
            f"{initial:.4g}"
        )
    return None


def _progress_enabled(progress: bool) -> bool:
    # A bar only where someone watches: never in logs, pipes or CI output.
    return progress and sys.stderr is not None and sys.stderr.isatty()


def fit(
    model: Module,
    X: Any,
    y: Any,
    loss: str | Callable[..., Value],
    optimizer: Optimizer,
    epochs: int = 100,
    batch_size: int | None = None,
    scheduler: LRScheduler | None = None,
    validation_data: tuple[Any, Any] | None = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    progress: bool = True,
    engine: str = "auto",
) -> History:
    """Train `model` on `(X, y)` and return the `History` of the run.

    Args:
        model: a Module (e.g. an MLP): one sample -> a Value or a list of Values.
        X: features, shape (n_samples, n_features).
        y: class indices 0..C-1 (hinge also accepts -1/+1).
        loss: "hinge", "bce", "cross_entropy", "mse", or a function of (outputs, targets).
        optimizer: built on `model.parameters()`.
        epochs: passes over the data.
        batch_size: samples per update; None means the whole set (full batch) up to
            `FULL_BATCH_LIMIT` (10,000) samples, mini-batches of `DEFAULT_BATCH_SIZE` (1,000)
            above it.
        scheduler: stepped once per epoch, after the updates.
        validation_data: `(X_val, y_val)` measured after each epoch.
        shuffle: reshuffle the samples each epoch (only matters for mini-batches).
        seed: for the shuffling.
        progress: show a tqdm progress bar (only when stderr is a terminal).
        engine: "tape" records one sample's graph and replays it over each batch with
            numpy (`autograd.tape`); "values" builds a Value graph per sample; "auto" (the
            default) is "tape" for a `Module` with a built-in loss, else "values".
    Returns:
        A `History`; each entry is measured after that epoch's updates, so `loss[-1]` is
        the loss of the final weights.
    Raises:
        ValueError: bad shapes, epochs < 1, batch_size < 1, labels the loss cannot take;
            for the tape, a model whose graph depends on the sample (see `autograd.tape`).
        ValueError: also when the untrained model's loss is not finite (the data, not the
            learning rate, is at fault: standardise it).
        DivergenceError: the loss became NaN or infinite, a forward pass overflowed (on the
            training or the validation data), or the loss grew by orders of magnitude
            (`check_divergence`). The message names the epoch and batch; the model is left
            with the weights of the last finished epoch (or the untrained ones), the last
            whose loss was finite and measured on the whole training set.
    """
    from tqdm.auto import tqdm

    X, y = _check_array(X, y, "fit")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    n = len(X)
    if batch_size is None:
        batch_size = n if n <= FULL_BATCH_LIMIT else DEFAULT_BATCH_SIZE
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int or None, got {batch_size!r}")
    obj = _objective(loss)
    n_outputs = _as_matrix([_first_output(model, X[0].tolist())]).shape[1]
    if obj.name == "cross_entropy" and n_outputs < 2:
        raise ValueError(
            "fit: cross_entropy needs one output per class (2 or more), the model has 1; "
            "for two classes with one output use 'bce' or 'hinge'"
        )
    data_advice = (
        "the data is too large for the initial weights, whatever the learning rate; "
        "standardise the features (nn.StandardScaler)"
    )
    runner: _ValuesEngine | _TapeEngine
    if _use_tape(engine, model, obj):
        try:  # recording runs the untrained model on a few samples
            runner = _TapeEngine(model, X, y, obj, optimizer)
        except (OverflowError, ZeroDivisionError) as e:
            raise ValueError(
                f"fit: the untrained model's loss is not finite ({_one_line(str(e))}): "
                f"{data_advice}"
            ) from None
    else:
        runner = _ValuesEngine(model, X.tolist(), obj.targets(y, n_outputs), obj, optimizer)
    val = None
    if validation_data is not None:
        val = _check_array(*validation_data, "fit (validation_data)")
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    n_batches = math.ceil(n / batch_size)
    history = History()

    def untrained_loss(data: tuple[Any, Any] | None, where: str, advice: str) -> float:
        # The untrained model's loss on a whole set (None: the training set), which must be
        # finite: if it is not, the data is at fault, not the learning rate.
        try:
            value, _ = runner.measure(None, y) if data is None else runner.measure(*data)
        except (OverflowError, ZeroDivisionError) as e:
            value, why = math.inf, _one_line(str(e))
        else:
            why = f"it is {value!r}"
        if not math.isfinite(value):
            raise ValueError(
                f"fit: the untrained model's loss{where} is not finite ({why}): {advice}"
            )
        return value

    # The yardstick of divergence, and its weights the ones kept if the first epoch diverges.
    initial = untrained_loss(None, "", data_advice)
    if val is not None:
        untrained_loss(
            val,
            " on validation_data",
            "that data is too large for the initial weights; standardise it as the training data",
        )
    best = initial
    kept = runner.weights()  # weights whose whole-set loss was finite and measured
    kept_when = "the untrained weights"

    def diverged(epoch: int, batch: int, what: str) -> DivergenceError:
        runner.set_weights(kept)
        return DivergenceError(
            f"training diverged at epoch {epoch}, batch {batch}: {_one_line(what, 200)}; the "
            f"model keeps {kept_when} (try a smaller learning rate)",
            epoch,
            batch,
            history,
        )

    blas = one_blas_thread()  # small matrix products: one thread is faster (see autograd.tape)
    blas.__enter__()
    bar = tqdm(
        range(1, epochs + 1),
        desc="train",
        unit="epoch",
        disable=not _progress_enabled(progress),
        file=sys.stderr,
    )
    try:
        for epoch in bar:
            lr = optimizer.lr
            order = rng.permutation(n) if shuffle and batch_size < n else np.arange(n)
            for b in range(n_batches):
                idx = order[b * batch_size : (b + 1) * batch_size].tolist()
                try:
                    batch_loss = runner.batch_loss(idx)
                except (OverflowError, ZeroDivisionError) as e:
                    raise diverged(
                        epoch, b + 1, f"the forward pass failed ({_one_line(str(e))})"
                    ) from None
                reason = _batch_diverged(batch_loss, initial)
                if reason:
                    raise diverged(epoch, b + 1, reason)
                runner.step()
            runner.sync()
            if scheduler is not None:
                scheduler.step()
            try:
                train_loss, train_acc = runner.measure(None, y)
            except (OverflowError, ZeroDivisionError) as e:
                raise diverged(
                    epoch, n_batches, f"the forward pass failed ({_one_line(str(e))})"
                ) from None
            reason = check_divergence(train_loss, best, initial)
            if reason:
                raise diverged(epoch, n_batches, reason)
            postfix = {"loss": f"{train_loss:.4f}", "acc": f"{train_acc:.3f}"}
            if val is not None:
                try:
                    val_loss, val_acc = runner.measure(*val)
                except (OverflowError, ZeroDivisionError) as e:
                    val_loss, val_acc = math.inf, 0.0
                    what = f"the forward pass on the validation data failed ({_one_line(str(e))})"
                else:
                    what = f"the validation loss is {val_loss!r}"
                if not math.isfinite(val_loss):
                    raise diverged(epoch, n_batches, what)
                history.val_loss.append(val_loss)
                history.val_accuracy.append(val_acc)
                postfix["val_acc"] = f"{val_acc:.3f}"
            history.loss.append(train_loss)
            history.accuracy.append(train_acc)
            history.lr.append(lr)
            best = min(best, train_loss)
            kept = runner.weights()
            kept_when = f"the weights of epoch {epoch}"
            bar.set_postfix(postfix, refresh=False)
    finally:
        runner.sync()
        bar.close()
        blas.__exit__(None, None, None)
    return history


def _one_line(text: str, limit: int = 120) -> str:
    """`text` as one line of at most `limit` characters, cut with "..." if longer.

    The engine's error messages may list every input of a node (a `linear` node has one per
    weight); the start says which op failed and how, which is what the reader needs.
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _first_output(model: Callable[[Any], Any], row: list[float]) -> Any:
    with no_grad():
        return model(row)
