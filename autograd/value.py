"""`Value`: one float in a computation graph, and `apply`, which makes every node.

A Value holds `data` (a Python float) and `grad` (d(output)/d(this), filled in by
`backward()`). A Value made by an operation also remembers how it was made:

- `op`: the primitive from `ops.py` (None for a leaf);
- `args`: what the op was called with, Values and plain numbers (as floats), in order;
- `local_grads`: d(this)/d(arg) for each argument, computed at forward time by the op's
  rules; None for a plain-number argument, whose derivative nobody needs.

Storing local derivatives as numbers, not closures, keeps the graph free of reference
cycles (reference counting frees it) and makes backward a loop of multiply-adds. Plain
numbers are never boxed into Values: `x * 2.0` is one node. Read next: `engine.py`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from . import engine, ops
from .grad_mode import _grad_enabled
from .ops import OPS, Op, is_number

_serials = itertools.count()  # creation order: every node is made after its inputs
_INF, _NEG_INF = math.inf, -math.inf  # bounds of the finiteness check, as names: no lookups


class Value:
    """A scalar node of the computation graph.

    Args:
        data: a real number (int, float, numpy real scalar), stored as a Python float;
            bool, str, complex, None, containers and Values raise TypeError.
        label: a name for pictures and reprs (e.g. "x").

    `+ - * / **`, unary `-` and `abs()` take Values and numbers on either side. `==` and
    `hash` are by identity (Values work in sets and dicts); `< <= > >=` compare `.data`.
    `float(v)` and `math.exp(v)` raise TypeError: they would drop the graph silently; use
    `v.item()` for the number and `v.exp()` or `autograd.exp(v)` for the function.
    """

    __slots__ = ("data", "grad", "op", "args", "local_grads", "_label", "serial")
    data: float
    grad: float
    op: Op | None
    args: tuple[Any, ...]  # Values and floats
    local_grads: tuple[Any, ...]  # floats, None for a plain-number argument
    serial: int  # creation number: every node is made after its inputs
    _label: str

    def __init__(self, data: float, label: str = "") -> None:
        if isinstance(data, Value):
            raise TypeError("Value: data must be a real number, got Value (use v.detach())")
        self.data, self.grad, self.op, self.args, self.local_grads = (
            _as_float(data, "Value"),
            0.0,
            None,
            (),
            (),
        )
        self.label = label
        self.serial = next(_serials)

    @property
    def label(self) -> str:
        """A name for pictures and reprs; "" when none was given."""
        return self._label

    @label.setter
    def label(self, label: str) -> None:
        if not isinstance(label, str):
            raise TypeError(f"Value: label must be a str, got {type(label).__name__}: {label!r}")
        self._label = label

    @property
    def inputs(self) -> tuple[Value, ...]:
        """The Values among `args`, in order (empty for a leaf): the graph's edges."""
        return tuple(a for a in self.args if isinstance(a, Value))

    @property
    def is_leaf(self) -> bool:
        """True for a Value made directly (or under no_grad), not by a recorded op."""
        return self.op is None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __format__(self, spec: str) -> str:
        return format(self.data, spec) if spec else repr(self)  # f"{loss:.4f}" formats data

    def __float__(self) -> float:
        # math.tanh(v) calls this, and would return a float with no graph behind it.
        raise TypeError(
            "math functions and float() would drop a Value's graph: use autograd's function "
            "of the same name (autograd.exp(v), autograd.log(v), autograd.sqrt(v), "
            "autograd.tanh(v), autograd.sin(v), autograd.cos(v), ...) or the method (v.exp()); "
            "v.item() gives the number"
        )

    def item(self) -> float:
        """The data as a Python float (PyTorch's name)."""
        return self.data

    def detach(self) -> Value:
        """A new leaf with the same data and label and no history (PyTorch's `detach`)."""
        return Value(self.data, self.label)

    def zero_grad(self) -> None:
        """Set this node's grad to 0.0. For a whole graph use `Module.zero_grad()` or loop."""
        self.grad = 0.0

    def backward(self, gradient: float = 1.0) -> None:
        """Fill `.grad` of every node this Value depends on; see `engine.backward`."""
        engine.backward(self, gradient)

    # -- micrograd's names, as views of the fields above (see README "Coming from micrograd")

    @property
    def _prev(self) -> set[Value]:
        return set(self.inputs)

    @property
    def _op(self) -> str:
        return "" if self.op is None else self.op.symbol

    def _backward(self) -> None:
        """This node's own chain-rule step: input.grad += self.grad * local, per input."""
        engine.chain_rule((self,))

    # -- pickle and deepcopy: a graph as a flat program, so depth needs no recursion ----------

    def __reduce__(self) -> tuple[Any, ...]:
        if self.op is None:
            return (_leaf, (self.data, self.grad, self.label))
        # Leaves go in as objects (pickle keeps them shared with other references to them),
        # made nodes as rows (op, args as row numbers or floats, local_grads, data, grad, label).
        order = engine.topological_order(self)
        row = {node: i for i, node in enumerate(order)}
        program = [
            node
            if node.op is None
            else (
                node.op,
                tuple(row[a] if isinstance(a, Value) else a for a in node.args),
                node.local_grads,
                node.data,
                node.grad,
                node.label,
            )
            for node in order
        ]
        return (_run_program, (program,))

    # -- comparisons on .data: plain bools, nothing recorded --------------------------------

    def __lt__(self, other: Any) -> bool:
        return self.data < _compare_data(other)

    def __le__(self, other: Any) -> bool:
        return self.data <= _compare_data(other)

    def __gt__(self, other: Any) -> bool:
        return self.data > _compare_data(other)

    def __ge__(self, other: Any) -> bool:
        return self.data >= _compare_data(other)

    __hash__ = object.__hash__

    # -- operators and methods: each one call --------------------------------------------

    def __add__(self, other: Any) -> Value:
        return _binary(ADD, self, other)

    def __radd__(self, other: Any) -> Value:
        return _binary(ADD, other, self)

    def __sub__(self, other: Any) -> Value:
        return _binary(SUB, self, other)

    def __rsub__(self, other: Any) -> Value:
        return _binary(SUB, other, self)

    def __mul__(self, other: Any) -> Value:
        return _binary(MUL, self, other)

    def __rmul__(self, other: Any) -> Value:
        return _binary(MUL, other, self)

    def __truediv__(self, other: Any) -> Value:
        return _binary(DIV, self, other)

    def __rtruediv__(self, other: Any) -> Value:
        return _binary(DIV, other, self)

    def __pow__(self, other: Any) -> Value:
        return _binary(POW, self, other)

    def __rpow__(self, other: Any) -> Value:
        return _binary(POW, other, self)

    def __neg__(self) -> Value:
        return apply(OPS["neg"], self)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return apply(OPS["abs"], self)

    def exp(self) -> Value:
        """e**self. Raises OverflowError when the result exceeds float64 (self > ~709.78)."""
        return apply(OPS["exp"], self)

    def log(self) -> Value:
        """Natural log. Raises ValueError for data <= 0."""
        return apply(OPS["log"], self)

    def sqrt(self) -> Value:
        """Square root; derivative inf at 0. Raises ValueError for data < 0."""
        return apply(OPS["sqrt"], self)

    def tanh(self) -> Value:
        """Hyperbolic tangent; derivative precise in saturation (tanh'(20) = 1.7e-17)."""
        return apply(OPS["tanh"], self)

    def sigmoid(self) -> Value:
        """Logistic sigmoid, stable for any input."""
        return apply(OPS["sigmoid"], self)

    def relu(self) -> Value:
        """max(self, 0); relu'(0) = 0 (PyTorch, JAX)."""
        return apply(OPS["relu"], self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Value:
        """self if self > 0 else negative_slope * self (PyTorch's default slope 0.01)."""
        return apply(OPS["leaky_relu"], self, negative_slope)

    def elu(self, alpha: float = 1.0) -> Value:
        """self if self > 0 else alpha * (exp(self) - 1) (Clevert et al. 2015)."""
        return apply(OPS["elu"], self, alpha)

    def gelu(self) -> Value:
        """x * Phi(x), the exact GELU (Hendrycks & Gimpel 2016)."""
        return apply(OPS["gelu"], self)

    def ndtr(self) -> Value:
        """Standard normal CDF Phi(self)."""
        return apply(OPS["ndtr"], self)

    def softplus(self) -> Value:
        """log(1 + exp(self)), without overflow."""
        return apply(OPS["softplus"], self)

    def sin(self) -> Value:
        """Sine (radians)."""
        return apply(OPS["sin"], self)

    def cos(self) -> Value:
        """Cosine (radians)."""
        return apply(OPS["cos"], self)

    def maximum(self, other: Any) -> Value:
        """max(self, other); a tie splits the gradient 0.5/0.5 (torch.maximum)."""
        return apply(OPS["maximum"], self, other)

    def minimum(self, other: Any) -> Value:
        """min(self, other); a tie splits the gradient 0.5/0.5 (torch.minimum)."""
        return apply(OPS["minimum"], self, other)


ADD, SUB, MUL, DIV, POW = (OPS[name] for name in ("add", "sub", "mul", "div", "pow"))


def apply(op: Op, *args: Any) -> Value:
    """Run a primitive on Values and numbers and record the result as a graph node.

    Args:
        op: an entry of the derivative table (`ops.OPS`).
        args: Values and real numbers (see `ops.is_number`), in the op's argument order.
    Returns:
        A new Value; a leaf under `no_grad()` or when no argument is a Value.
    Raises:
        TypeError: a wrong number of arguments, or one that is neither Value nor number.
        Whatever `op.forward` raises for a domain error; OverflowError when finite inputs
        give a non-finite result. Nothing is recorded when it raises.
    """
    if len(args) != op.arity and (op.arity is not None or not args):
        raise TypeError(f"{op.name}: takes {op.arity or 'at least 1'} arguments, got {len(args)}")
    data, numbers = [], 0
    for a in args:
        if isinstance(a, Value):
            data.append(a.data)
        else:
            data.append(_as_float(a, op.name))
            numbers += 1
    out = op.forward(*data)
    if not _NEG_INF < out < _INF:
        _check_finite(op, out, data)
    if numbers == len(args) or not _grad_enabled.get():
        return _node(out, None, (), ())  # a leaf: nothing to differentiate
    local_grads = []
    for i, a in enumerate(args):
        # A Value's local derivative by the op's rule; a plain number's is never computed.
        local_grads.append(op.local_grad(i, out, data) if isinstance(a, Value) else None)
    if numbers:  # keep plain numbers as the floats the op computed with
        args = tuple([a if isinstance(a, Value) else d for a, d in zip(args, data)])
    node = Value.__new__(Value)
    node.data, node.grad, node.op, node.args, node.local_grads = (
        out,
        0.0,
        op,
        args,
        tuple(local_grads),
    )
    node._label = ""
    node.serial = next(_serials)
    return node


# ---- speed path: apply(op, a, b) for the operators + - * / **, unrolled -----------------
# The same node as apply (tests/test_value.py proves it on random operands) in fewer
# steps: about 10% faster (benchmarks/README.md). NotImplemented for an operand that is
# not a number, so Python tries the other side (numpy arrays broadcast Values this way).
def _binary(op: Op, a: Any, b: Any) -> Value:
    if isinstance(a, Value):
        ad = a.data
    elif type(a) is float:
        ad = a
    elif is_number(a):
        ad = a = _as_float(a, op.name)
    else:
        return NotImplemented
    if isinstance(b, Value):
        bd = b.data
    elif type(b) is float:
        bd = b
    elif is_number(b):
        bd = b = _as_float(b, op.name)
    else:
        return NotImplemented
    out = op.forward(ad, bd)
    if not _NEG_INF < out < _INF:
        _check_finite(op, out, (ad, bd))
    if not _grad_enabled.get():
        return _node(out, None, (), ())
    rule_a, rule_b = op.local_grads
    # A rule is a constant (a float) or a function; a plain-number operand gets None.
    da = None if type(a) is float else rule_a if type(rule_a) is float else rule_a(out, ad, bd)
    db = None if type(b) is float else rule_b if type(rule_b) is float else rule_b(out, ad, bd)
    node = Value.__new__(Value)
    node.data, node.grad, node.op, node.args = out, 0.0, op, (a, b)
    # Both derivatives constants of the table (x + y, x - y): share its tuple, no new one.
    node.local_grads = op.local_grads if da is rule_a and db is rule_b else (da, db)
    node._label = ""
    node.serial = next(_serials)
    return node


# ---- end of the speed path ---------------------------------------------------------------


def _node(data: float, op: Op | None, args: tuple, local_grads: tuple) -> Value:
    node = Value.__new__(Value)
    node.data, node.grad, node.op, node.args, node.local_grads = data, 0.0, op, args, local_grads
    node._label = ""
    node.serial = next(_serials)
    return node


def _as_float(x: object, where: str) -> float:
    """A real number as a Python float; anything else is a TypeError naming its type."""
    if not is_number(x):
        raise TypeError(
            f"{where}: expected a Value or a real number, got {type(x).__name__}: {x!r}"
        )
    try:
        return float(x)  # type: ignore[arg-type]
    except OverflowError:
        shown = repr(x) if len(repr(x)) <= 40 else f"an integer of {len(str(x))} digits"
        raise OverflowError(f"{where}: {shown} is too large for a float64") from None


def _check_finite(op: Op, out: float, data: Sequence[float]) -> None:
    """Raise OverflowError when finite inputs gave a non-finite result (IEEE inputs pass)."""
    if all(math.isfinite(d) for d in data):
        shown = ", ".join(repr(d) for d in data[:3]) + (
            f", ... ({len(data)} inputs)" if len(data) > 3 else ""
        )
        raise OverflowError(f"{op.name}: result {out!r} is not finite for finite input(s) {shown}")


def _compare_data(other: Any) -> float:
    if isinstance(other, Value):
        return other.data
    return _as_float(other, "comparison")


def _leaf(data: float, grad: float, label: str) -> Value:
    leaf = Value(data, label)
    leaf.grad = grad
    return leaf


def _run_program(program: list[Any]) -> Value:
    """The last node of a program made by `Value.__reduce__`, rebuilt row by row."""
    nodes: list[Value] = []
    for row in program:
        if isinstance(row, Value):
            nodes.append(row)
            continue
        op, args, local_grads, data, grad, label = row
        args = tuple(nodes[a] if isinstance(a, int) else a for a in args)
        node = _node(data, op, args, local_grads)
        node.grad, node.label = grad, label
        nodes.append(node)
    return nodes[-1]


# -- functions on sequences, and functions with a parameter ------------------------------


def _items(xs: Iterable[Any], where: str) -> list[Any]:
    items = list(xs)
    if not items:
        raise ValueError(f"{where}: needs at least one element, got an empty sequence")
    return items


def sum(xs: Iterable[Any]) -> Value:
    """Sum of Values and numbers as ONE node (Python's built-in sum makes a chain of `+`).

    Raises ValueError for an empty sequence, TypeError for a non-number element.
    """
    return apply(OPS["sum"], *_items(xs, "sum"))


def mean(xs: Iterable[Any]) -> Value:
    """Arithmetic mean: sum(xs) / len(xs). Raises ValueError for an empty sequence."""
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
    """op(args) as a float for numbers only, else as a node (the module functions below)."""
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
    """x if x > 0 else negative_slope * x. Numbers -> float, else Value."""
    return _function("leaky_relu", x, negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """x if x > 0 else alpha * (exp(x) - 1) (Clevert et al. 2015). Numbers -> float."""
    return _function("elu", x, alpha)


def linear(weights: Iterable[Any], xs: Iterable[Any], bias: Any = 0.0) -> Value:
    """A neuron's weighted sum `bias + sum_i weights[i] * xs[i]` as ONE node: the same value
    and gradients as the chain of `*` and `+` it replaces, with far fewer nodes.

    Raises ValueError when weights and xs differ in length (both lengths named).
    """
    ws, vs = list(weights), list(xs)
    if len(ws) != len(vs):
        raise ValueError(f"linear: {len(ws)} weights but {len(vs)} inputs")
    return apply(OPS["linear"], bias, *ws, *vs)
