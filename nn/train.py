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
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from autograd import Value, no_grad

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


_OBJECTIVES = {
    "hinge": _Objective("hinge", losses.hinge_loss, _hinge_targets, _binary(0.0)),
    "bce": _Objective(
        "bce",
        losses.binary_cross_entropy_with_logits,
        lambda y, k: [float(v) for v in y],
        _binary(0.0),
    ),
    "cross_entropy": _Objective(
        "cross_entropy", losses.cross_entropy, lambda y, k: [int(v) for v in y], _binary(0.0)
    ),
    "mse": _Objective("mse", losses.mse_loss, _mse_targets, _binary(0.5)),
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


def _check_xy(X: Any, y: Any, where: str) -> tuple[list[list[float]], np.ndarray]:
    array = np.asarray(X, dtype=np.float64)
    rows = _rows(array)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(rows):
        raise ValueError(f"{where}: X has {len(rows)} rows but y has shape {y.shape}")
    if len(rows) == 0:
        raise ValueError(f"{where}: no samples")
    bad = np.argwhere(~np.isfinite(array.reshape(len(rows), -1)))
    if len(bad):
        # Caught here, or it would surface later as a NaN loss blamed on the learning rate.
        i, j = bad[0]
        raise ValueError(
            f"{where}: X[{i}, {j}] is {float(array.reshape(len(rows), -1)[i, j])!r}; "
            "the data must be finite"
        )
    return rows, y


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
    model: Callable[[Any], Any], X: Any, y: Any, loss: str | Callable[..., Value] = "hinge"
) -> tuple[float, float]:
    """The loss and the accuracy of `model` on `(X, y)`, under `no_grad` (no graph kept).

    Args:
        model: a callable from one sample to a Value or a list of Values (e.g. an MLP).
        X: features, shape (n_samples, n_features).
        y: class indices (hinge also takes -1/+1).
        loss: a loss name or function (see the module docstring).
    Returns:
        `(loss, accuracy)` as floats.
    """
    rows, y = _check_xy(X, y, "evaluate")
    return _measure(model, rows, y, _objective(loss))


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
) -> History:
    """Train `model` on `(X, y)` and return the `History` of the run.

    Args:
        model: a Module (e.g. an MLP): one sample -> a Value or a list of Values.
        X: features, shape (n_samples, n_features).
        y: class indices 0..C-1 (hinge also accepts -1/+1).
        loss: "hinge", "bce", "cross_entropy", "mse", or a function of (outputs, targets).
        optimizer: built on `model.parameters()`.
        epochs: passes over the data.
        batch_size: samples per update; None means the whole set (full batch).
        scheduler: stepped once per epoch, after the updates.
        validation_data: `(X_val, y_val)` measured after each epoch.
        shuffle: reshuffle the samples each epoch (only matters for mini-batches).
        seed: for the shuffling.
        progress: show a tqdm progress bar (only when stderr is a terminal).
    Returns:
        A `History`; each entry is measured after that epoch's updates, so `loss[-1]` is
        the loss of the final weights.
    Raises:
        ValueError: bad shapes, epochs < 1, batch_size < 1, labels the loss cannot take.
        ValueError: also when the untrained model's loss is not finite (the data, not the
            learning rate, is at fault: standardise it).
        DivergenceError: the loss became NaN or infinite, a forward pass overflowed (on the
            training or the validation data), or the loss grew by orders of magnitude
            (`check_divergence`). The message names the epoch and batch; the model is left
            with the weights of the last finished epoch (or the untrained ones), the last
            whose loss was finite and measured on the whole training set.
    """
    from tqdm.auto import tqdm

    rows, y = _check_xy(X, y, "fit")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    n = len(rows)
    if batch_size is None:
        batch_size = n
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int or None, got {batch_size!r}")
    obj = _objective(loss)
    n_outputs = _as_matrix([_first_output(model, rows[0])]).shape[1]
    if obj.name == "cross_entropy" and n_outputs < 2:
        raise ValueError(
            "fit: cross_entropy needs one output per class (2 or more), the model has 1; "
            "for two classes with one output use 'bce' or 'hinge'"
        )
    targets = obj.targets(y, n_outputs)
    val = None
    if validation_data is not None:
        val_rows, val_y = _check_xy(*validation_data, "fit (validation_data)")
        val = (val_rows, val_y)
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    params = model.parameters()
    n_batches = math.ceil(n / batch_size)
    history = History()

    # The untrained model's loss on the whole set: the yardstick of divergence, and its
    # weights the ones kept if the first epoch already diverges.
    try:
        initial, _ = _measure(model, rows, y, obj)
    except (OverflowError, ZeroDivisionError) as e:
        initial, why = math.inf, _one_line(str(e))
    else:
        why = f"it is {initial!r}"
    if not math.isfinite(initial):
        raise ValueError(
            f"fit: the untrained model's loss is not finite ({why}): the data is too large "
            "for the initial weights, whatever the learning rate; standardise the features "
            "(nn.StandardScaler)"
        )
    if val is not None:
        try:
            val_initial, _ = _measure(model, val[0], val[1], obj)
        except (OverflowError, ZeroDivisionError) as e:
            val_initial, why = math.inf, _one_line(str(e))
        else:
            why = f"it is {val_initial!r}"
        if not math.isfinite(val_initial):
            raise ValueError(
                f"fit: the untrained model's loss on validation_data is not finite ({why}): "
                "that data is too large for the initial weights; standardise it as the "
                "training data"
            )
    best = initial
    kept = [p.data for p in params]  # weights whose whole-set loss was finite and measured
    kept_when = "the untrained weights"

    def diverged(epoch: int, batch: int, what: str) -> DivergenceError:
        for p, d in zip(params, kept):
            p.data = d
        return DivergenceError(
            f"training diverged at epoch {epoch}, batch {batch}: {_one_line(what, 200)}; the "
            f"model keeps {kept_when} (try a smaller learning rate)",
            epoch,
            batch,
            history,
        )

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
                    batch_loss = obj.loss([model(rows[i]) for i in idx], [targets[i] for i in idx])
                except (OverflowError, ZeroDivisionError) as e:
                    raise diverged(
                        epoch, b + 1, f"the forward pass failed ({_one_line(str(e))})"
                    ) from None
                reason = _batch_diverged(batch_loss.data, initial)
                if reason:
                    raise diverged(epoch, b + 1, reason)
                optimizer.zero_grad()
                batch_loss.backward()
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            try:
                train_loss, train_acc = _measure(model, rows, y, obj)
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
                    val_loss, val_acc = _measure(model, val[0], val[1], obj)
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
            kept = [p.data for p in params]
            kept_when = f"the weights of epoch {epoch}"
            bar.set_postfix(postfix, refresh=False)
    finally:
        bar.close()
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
