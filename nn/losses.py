"""Loss functions on Values, with PyTorch's definitions and `reduction="mean" | "sum"`.

Each takes the model's outputs (Values, or plain numbers) and the targets (plain numbers)
and returns one Value. The per-sample terms are combined by `autograd.sum` (one node), so a
batch of a thousand samples does not make a chain of a thousand additions.

- `mse_loss`: (x - y)**2 (torch.nn.functional.mse_loss);
- `hinge_loss`: max(0, 1 - y * s) for labels y = +-1, the max-margin (SVM) loss of
  micrograd's demo;
- `binary_cross_entropy_with_logits`: (1 - y) softplus(x) + y softplus(-x), the stable form of
  -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] (torch's function of the same name);
- `cross_entropy(logits, target)`: logsumexp(logits) - logits[target], never overflowing
  (torch.nn.functional.cross_entropy with class-index targets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import autograd
from autograd import Value
from autograd.ops import is_number

_REDUCTIONS = ("mean", "sum")


def _is_scalar(x: Any) -> bool:
    # numpy integers and floats count: make_moons and friends return int64 labels.
    return isinstance(x, Value) or is_number(x)


def _flat(x: Any, where: str, what: str) -> list[Any]:
    """A Value or number becomes [x]; a sequence (possibly of sequences) is flattened."""
    if _is_scalar(x):
        return [x]
    try:
        items = list(x)
    except TypeError:
        raise TypeError(
            f"{where}: {what} must be a Value, a number or a sequence, got {type(x).__name__}"
        ) from None
    out: list[Any] = []
    for item in items:
        if _is_scalar(item):
            out.append(item)
        else:
            out.extend(_flat(item, where, what))
    return out


def _pair(input: Any, target: Any, where: str) -> tuple[list[Any], list[float]]:
    xs = _flat(input, where, "input")
    ys = [float(y) for y in _flat(target, where, "target")]
    if len(xs) != len(ys):
        raise ValueError(f"{where}: input has {len(xs)} elements but target has {len(ys)}")
    if not xs:
        raise ValueError(f"{where}: input is empty")
    return xs, ys


def _reduce(terms: list[Any], reduction: str, where: str) -> Any:
    if reduction == "sum":
        return autograd.sum(terms)
    if reduction == "mean":
        return autograd.sum(terms) / len(terms)
    raise ValueError(f"{where}: reduction must be 'mean' or 'sum', got {reduction!r}")


def _check_reduction(reduction: str, where: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: reduction must be 'mean' or 'sum', got {reduction!r}")


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Value:
    """Mean (or sum) of squared errors (x_i - y_i)**2 (torch.nn.functional.mse_loss).

    Args:
        input: a Value or a (nested) sequence of Values/numbers.
        target: numbers of the same total length.
        reduction: "mean" (default) or "sum".
    Raises:
        ValueError: lengths differ, empty input, or an unknown reduction.
    """
    _check_reduction(reduction, "mse_loss")
    xs, ys = _pair(input, target, "mse_loss")
    return _reduce([(x - y) ** 2 for x, y in zip(xs, ys)], reduction, "mse_loss")


def hinge_loss(input: Any, target: Any, reduction: str = "mean") -> Value:
    """Max-margin loss max(0, 1 - y_i * s_i) for scores s and labels y in {-1, +1}.

    The binary SVM loss (Cortes & Vapnik 1995) used by micrograd's demo. PyTorch has no
    function of this exact form; `MultiMarginLoss` on two classes is the same up to scale.

    Raises:
        ValueError: a label other than -1 or +1 (named with its index), lengths differ,
            empty input, or an unknown reduction.
    """
    _check_reduction(reduction, "hinge_loss")
    xs, ys = _pair(input, target, "hinge_loss")
    for i, y in enumerate(ys):
        if y not in (-1.0, 1.0):
            raise ValueError(f"hinge_loss: labels must be -1 or +1, got {y!r} at index {i}")
    return _reduce([autograd.relu(1.0 - y * x) for x, y in zip(xs, ys)], reduction, "hinge_loss")


def binary_cross_entropy_with_logits(input: Any, target: Any, reduction: str = "mean") -> Value:
    """Binary cross entropy on logits x with targets y in [0, 1], stable for any x.

    Each term is -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]
    = (1 - y) softplus(x) + y softplus(-x), which neither overflows nor cancels for any x
    (torch.nn.functional.binary_cross_entropy_with_logits).

    Raises:
        ValueError: a target outside [0, 1] (named with its index), lengths differ, empty
            input, or an unknown reduction.
    """
    where = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, where)
    xs, ys = _pair(input, target, where)
    for i, y in enumerate(ys):
        if not 0.0 <= y <= 1.0:
            raise ValueError(f"{where}: targets must be in [0, 1], got {y!r} at index {i}")
    # softplus(x) - y x = (1 - y) softplus(x) + y softplus(-x): two terms >= 0, so nothing
    # cancels; softplus(50) - 50 would be 0.0, where the loss is 1.9e-22.
    terms = [(1.0 - y) * autograd.softplus(x) + y * autograd.softplus(-x) for x, y in zip(xs, ys)]
    return _reduce(terms, reduction, where)


def _one_cross_entropy(logits: Sequence[Any], target: Any, index: int | None) -> Any:
    where = "cross_entropy" + ("" if index is None else f" (sample {index})")
    logits = list(logits)
    if not logits:
        raise ValueError(f"{where}: logits are empty")
    integral = isinstance(target, (float, np.floating)) and float(target).is_integer()
    if isinstance(target, np.integer) or integral:
        target = int(target)
    if not isinstance(target, int) or isinstance(target, bool):
        raise TypeError(f"{where}: target must be a class index (int), got {target!r}")
    if not 0 <= target < len(logits):
        raise ValueError(f"{where}: target {target} is out of range for {len(logits)} classes")
    # -log softmax(logits)[target] = logsumexp(logits) - x_t
    #                              = (x_k - x_t) + logsumexp(0, x_j - x_k for j != k),
    # with x_k the largest logit. Both terms are >= 0, so nothing cancels: a large
    # logsumexp, rounded, minus x_t would keep only the digits left over (at logits near
    # 1e16, none). When the target is the largest, its gradient comes out as
    # -sum_{j != t} softmax_j, not softmax_t - 1, which cancels where softmax_t is near 1.
    for x in logits:
        if not _is_scalar(x):
            raise TypeError(f"{where}: logits must be Values or numbers, got {type(x).__name__}")
    data = [x.data if isinstance(x, Value) else float(x) for x in logits]
    k = max(range(len(logits)), key=data.__getitem__)
    x_k = logits[k]
    if len(logits) == 1:  # logsumexp([x]) - x is exactly 0, a function of x all the same
        return autograd.logsumexp(logits) - x_k
    shifted = autograd.logsumexp([0.0, *(x - x_k for j, x in enumerate(logits) if j != k)])
    return shifted if k == target else (x_k - logits[target]) + shifted


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Value:
    """Cross entropy of class logits against a class index (torch.nn.functional.cross_entropy).

    One sample: `logits` is a sequence of C Values, `target` an int in [0, C); the loss is
    logsumexp(logits) - logits[target]. A batch: `logits` is a sequence of such sequences
    and `target` a sequence of ints; the per-sample losses are reduced.

    Raises:
        ValueError: a target out of range, batch sizes that differ, empty logits, or an
            unknown reduction.
        TypeError: a target that is not an integer.
    """
    _check_reduction(reduction, "cross_entropy")
    if isinstance(target, (int, float, np.number)):
        return _one_cross_entropy(logits, target, None)
    rows = list(logits)
    targets = list(target)
    if len(rows) != len(targets):
        raise ValueError(f"cross_entropy: {len(rows)} rows of logits but {len(targets)} targets")
    if not rows:
        raise ValueError("cross_entropy: empty batch")
    terms = [_one_cross_entropy(r, t, i) for i, (r, t) in enumerate(zip(rows, targets))]
    return _reduce(terms, reduction, "cross_entropy")


#: Losses by the names the command line and `fit` use.
LOSSES = {
    "mse": mse_loss,
    "hinge": hinge_loss,
    "bce": binary_cross_entropy_with_logits,
    "cross_entropy": cross_entropy,
}

__all__ = [
    "LOSSES",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "hinge_loss",
    "mse_loss",
]
