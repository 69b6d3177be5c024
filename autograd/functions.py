"""Functions of Values and plain numbers: the table's n-ary and parametrised ops, and composites.

`sum`, `logsumexp` and `linear` are ONE node each, however many inputs (Python's built-in
`sum` makes a chain of `+`); `mean` and `softmax` are composites of primitives. `maximum`,
`minimum`, `leaky_relu` and `elu` give a float when every argument is a number, else a node.
Read after `value.py`; `autograd` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import ops
from .ops import OPS, is_number
from .value import Value, _as_float, apply


def _items(xs: Iterable[Any], where: str) -> list[Any]:
    items = list(xs)
    if not items:
        raise ValueError(f"{where}: needs at least one element, got an empty sequence")
    return items


def sum(xs: Iterable[Any]) -> Value:
    """Sum of Values and numbers as ONE node. Its value is math.fsum's, correctly rounded:
    the same float on every Python version (the built-in sum of floats is compensated from
    3.12 on, plain before; see ops._fsum).

    Raises ValueError for an empty sequence, TypeError for a non-number element.
    """
    return apply(OPS["sum"], *_items(xs, "sum"))


def mean(xs: Iterable[Any]) -> Value:
    """Arithmetic mean: sum(xs) / len(xs), the sum correctly rounded as in `sum`.

    Raises ValueError for an empty sequence.
    """
    items = _items(xs, "mean")
    return apply(OPS["sum"], *items) / len(items)


def logsumexp(xs: Iterable[Any]) -> Value:
    """log(sum(exp(x_i))), shifted by the maximum so it never overflows; its gradient is
    softmax(xs). Raises ValueError for an empty sequence."""
    return apply(OPS["logsumexp"], *_items(xs, "logsumexp"))


def softmax(xs: Iterable[Any]) -> list[Value]:
    """softmax_i = exp(x_i) / sum_j exp(x_j): a list of Values summing to 1.

    Computed as `ops.softmax` does (shifted by the largest x, never overflowing, exact at
    any magnitude: softmax([1e16, 1e16]) is [0.5, 0.5]). Raises ValueError for an empty
    sequence, TypeError for a non-number element.
    """
    items = [x if isinstance(x, Value) else _as_float(x, "softmax") for x in _items(xs, "softmax")]
    return [p if isinstance(p, Value) else Value(p) for p in ops.softmax(items)]


def _function(name: str, *args: Any) -> Any:
    """op(args): a float when every argument is a number, else a node."""
    if all(is_number(a) for a in args):
        return OPS[name].forward(*(_as_float(a, name) for a in args))
    return apply(OPS[name], *args)


def maximum(a: Any, b: Any) -> Any:
    """max(a, b); a tie splits the gradient 0.5/0.5 (torch.maximum). NaN propagates."""
    return _function("maximum", a, b)


def minimum(a: Any, b: Any) -> Any:
    """min(a, b); a tie splits the gradient 0.5/0.5 (torch.minimum). NaN propagates."""
    return _function("minimum", a, b)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """x if x > 0 else negative_slope * x (PyTorch's default slope 0.01)."""
    return _function("leaky_relu", x, negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """x if x > 0 else alpha * (exp(x) - 1) (Clevert et al. 2015)."""
    return _function("elu", x, alpha)


def linear(weights: Iterable[Any], xs: Iterable[Any], bias: Any = 0.0) -> Value:
    """A neuron's weighted sum `bias + sum_i weights[i] * xs[i]` as ONE node: the gradients
    of the chain of `*` and `+` it replaces, with far fewer nodes; the value is the correctly
    rounded sum (math.fsum) of bias and the rounded products, the same on every Python.

    Raises ValueError when weights and xs differ in length (both lengths named).
    """
    ws, vs = list(weights), list(xs)
    if len(ws) != len(vs):
        raise ValueError(f"linear: {len(ws)} weights but {len(vs)} inputs")
    return apply(OPS["linear"], bias, *ws, *vs)
