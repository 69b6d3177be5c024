"""Loss functions on Values, with PyTorch's definitions and `reduction="mean" | "sum"`.

Each takes the model's outputs (Values, or plain numbers) and the targets (plain numbers, or
Values) and returns one Value. The per-sample terms are combined by `autograd.sum` (one node),
so a batch of a thousand samples does not make a chain of a thousand additions.

- `mse_loss`: (x - y)**2 (torch.nn.functional.mse_loss);
- `hinge_loss`: max(0, 1 - y * s) for labels y = +-1, the max-margin (SVM) loss of
  micrograd's demo;
- `binary_cross_entropy_with_logits`: (1 - y) softplus(x) + y softplus(-x), the stable form
  of -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] (torch's function of the same name);
- `cross_entropy(logits, target)`: logsumexp(logits - t) with t the target's logit, never
  overflowing (torch.nn.functional.cross_entropy, class indices or class probabilities).

Every loss computes the same graph whatever the label: no term is dropped for a target of 0
and no logit is picked by indexing. A label is an argument of the graph's ops, so a target
may be a Value too, and the tape (`autograd.tape`) can record one sample's loss and replay it
with every sample's label as an input.
"""

from __future__ import annotations

import math
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


def _label(y: Any) -> Any:
    """A target as the loss uses it: a Value stays a Value (a tape input), a number a float."""
    return y if isinstance(y, Value) else float(y)


def _pair(input: Any, target: Any, where: str) -> tuple[list[Any], list[Any]]:
    xs = _flat(input, where, "input")
    ys = [_label(y) for y in _flat(target, where, "target")]
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
        if float(y) not in (-1.0, 1.0):
            raise ValueError(f"hinge_loss: labels must be -1 or +1, got {float(y)!r} at index {i}")
    return _reduce([autograd.relu(1.0 - y * x) for x, y in zip(xs, ys)], reduction, "hinge_loss")


def binary_cross_entropy_with_logits(input: Any, target: Any, reduction: str = "mean") -> Value:
    """Binary cross entropy on logits x with targets y in [0, 1], stable for any x.

    Each term is -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]
    = (1 - y) softplus(x) + y softplus(-x), since -log sigmoid(x) = softplus(-x) and
    -log(1 - sigmoid(x)) = softplus(x) (torch.nn.functional.binary_cross_entropy_with_logits).
    It neither overflows nor loses precision for large |x|: with y = 1 and x = 50 the loss
    is softplus(-50) = 1.9287498479639178e-22, where the shorter softplus(x) - y x would
    round to 0. Both terms are computed for every target, so the graph is the same for
    every label (a target of 0 multiplies the second by 0).

    Raises:
        ValueError: a target outside [0, 1] (named with its index), lengths differ, empty
            input, or an unknown reduction.
    """
    where = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, where)
    xs, ys = _pair(input, target, where)
    for i, y in enumerate(ys):
        if not 0.0 <= float(y) <= 1.0:
            raise ValueError(f"{where}: targets must be in [0, 1], got {float(y)!r} at index {i}")
    terms = [(1.0 - y) * autograd.softplus(x) + y * autograd.softplus(-x) for x, y in zip(xs, ys)]
    return _reduce(terms, reduction, where)


def _probabilities(target: Any, n_classes: int, where: str) -> list[Any]:
    """A target as class probabilities: a class index becomes one-hot (plain floats); a
    sequence of probabilities (numbers or Values, e.g. one-hot labels) is checked."""
    if isinstance(target, Value) or is_number(target):
        if isinstance(target, Value):
            raise TypeError(
                f"{where}: a class index cannot be a Value (it would pick a logit by "
                "indexing); give the target as class probabilities, e.g. one-hot Values"
            )
        integral = isinstance(target, (float, np.floating)) and float(target).is_integer()
        if isinstance(target, np.integer) or integral:
            target = int(target)
        if not isinstance(target, int) or isinstance(target, bool):
            raise TypeError(f"{where}: target must be a class index (int), got {target!r}")
        if not 0 <= target < n_classes:
            raise ValueError(f"{where}: target {target} is out of range for {n_classes} classes")
        return [1.0 if j == target else 0.0 for j in range(n_classes)]
    probs = [_label(p) for p in _flat(target, where, "target")]
    if len(probs) != n_classes:
        raise ValueError(
            f"{where}: target has {len(probs)} class probabilities for {n_classes} logits"
        )
    data = [float(p) for p in probs]
    if not all(0.0 <= p <= 1.0 for p in data) or not math.isclose(sum(data), 1.0, rel_tol=1e-9):
        raise ValueError(f"{where}: class probabilities must be in [0, 1] and sum to 1, got {data}")
    return probs


def _one_cross_entropy(logits: Sequence[Any], target: Any, index: int | None) -> Any:
    where = "cross_entropy" + ("" if index is None else f" (sample {index})")
    logits = list(logits)
    if not logits:
        raise ValueError(f"{where}: logits are empty")
    probs = _probabilities(target, len(logits), where)
    # -sum_j p_j log softmax(z)_j = logsumexp(z) - t with t = sum_j p_j z_j, the target's
    # logit for a one-hot p. Computed as logsumexp(z - t): the target's own term is exactly
    # 0, so for logits near 1e16 no rounding of a large logsumexp lands in a difference.
    # t is one `linear` node whose weights are the probabilities (labels as inputs, no index).
    t = autograd.linear(probs, logits)
    return autograd.logsumexp([z - t for z in logits])


def _is_one_sample(logits: Any) -> bool:
    try:
        first = next(iter(logits))
    except (TypeError, StopIteration):
        return True
    return _is_scalar(first)


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Value:
    """Cross entropy of class logits against a class (torch.nn.functional.cross_entropy).

    One sample: `logits` is a sequence of C Values, `target` an int in [0, C) or C class
    probabilities (one-hot labels, numbers or Values); the loss is logsumexp(logits) - t
    with t = sum_j p_j logits_j (the target's logit), computed as logsumexp(logits - t).
    A batch: `logits` is a sequence of such sequences and `target` a sequence of targets;
    the per-sample losses are reduced.

    Raises:
        ValueError: a target out of range, probabilities outside [0, 1] or not summing to 1,
            batch sizes that differ, empty logits, or an unknown reduction.
        TypeError: a class index that is not an integer.
    """
    _check_reduction(reduction, "cross_entropy")
    if _is_one_sample(logits):
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
