"""`Value`: one float in a computation graph.

A Value holds `data` (a Python float) and `grad` (d(output)/d(this), filled in by
`backward()`). A Value made by an operation also remembers how it was made:

- `op`: the primitive from `ops.py` that made it (None for a leaf);
- `args`: what the op was called with, Values and plain numbers, in order;
- `inputs`: the Values among `args` (the graph's edges point from these to this node);
- `local_grads`: d(this)/d(input) for each input, as floats, computed at forward time.

Storing the local derivatives as numbers, not as a closure, keeps the graph free of
reference cycles (plain reference counting frees it) and makes backward a loop of
multiply-adds. Plain numbers are never boxed into Values: `x * 2.0` is one node.

Two places were shaped by speed. How a node stores its inputs: Python's cyclic garbage
collector scans every container object again and again while a graph grows, and in a scalar
engine that scanning, not the arithmetic, is a large part of the time (see
benchmarks/README.md). So a node is ONE object: its first two inputs and their local
derivatives sit in slots (`_a`, `_da`, `_b`, `_db`); only n-ary ops (`sum`, `linear`,
`logsumexp`) keep the rest in a tuple (`_more`), and a label takes a slot only when one is
given. The public `inputs`, `local_grads` and `args` properties give the plain tuples. And
how an operator is called: `x * y` runs one recording function (`_binary_operation`), not a
method that calls a helper.

Composite operations (`mean`, `softmax`) are one-liners over the primitives.
Read next: `engine.py`, which walks this graph backwards.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

from . import ops
from .grad_mode import _grad_enabled
from .ops import Op, is_number


def _as_float(x: object, where: str) -> float:
    """Convert a plain real number to float; anything else is a TypeError naming its type."""
    if is_number(x):
        try:
            return float(x)  # type: ignore[arg-type]
        except OverflowError:
            shown = repr(x) if len(repr(x)) <= 40 else f"an integer of {len(str(x))} digits"
            raise OverflowError(f"{where}: {shown} is too large for a float64") from None
    raise TypeError(
        f"{where}: expected a real number (int or float), got {type(x).__name__}: {x!r}"
    )


# -----------------------------------------------------------------------------------------
# The functions behind + - * / ** (the operators of Value are these functions themselves)
# -----------------------------------------------------------------------------------------


def _binary_operation(op: Op) -> Callable[[Any, Any], Value]:
    """The function `record(a, b)` that computes `op(a, b)` and records it as a graph node.

    `record` is `apply(op, a, b)` unrolled for two arguments, for speed. Value's operators
    are these functions themselves (`Value.__mul__ is _mul`), not methods that call a
    helper: every operation pays Python's cost of a function call, and one call instead of
    two makes `x * y` about 10% faster (see benchmarks/README.md).

    Unknown operand types give NotImplemented, so Python tries the other operand (numpy
    arrays broadcast Values this way) or raises its usual TypeError.
    """

    def record(a: Any, b: Any) -> Value:
        """op(a, b) as a new node; a and b are Values or plain numbers, at least one a Value."""
        # Sort out the operands first: which are Values, and the floats the op runs on.
        # `type(x) is float` before is_number: plain floats are by far the most common constant.
        if isinstance(a, Value):
            ad = a.data
            if isinstance(b, Value):
                bd = b.data
                constants = None
            elif type(b) is float:
                bd = b
                constants = NUMBER_SECOND
            elif is_number(b):
                bd = b = _as_float(b, op.name)
                constants = NUMBER_SECOND
            else:
                return NotImplemented
        elif isinstance(b, Value):
            bd = b.data
            if type(a) is float:
                ad = a
            elif is_number(a):
                ad = a = _as_float(a, op.name)
            else:
                return NotImplemented
            constants = NUMBER_FIRST
        else:  # the operators always pass a Value on one side or the other
            return NotImplemented
        out = op.forward(ad, bd)
        if not _NEG_INF < out < _INF:
            _check_finite(op, out, (ad, bd))
        node = Value.__new__(Value)
        node.data = out
        node.grad = 0.0
        if not _grad_enabled.get():
            _make_leaf(node)
            return node
        da, db = op.local_grads(out, ad, bd)
        node.op = op
        node._more = constants
        # One statement per slot: a tuple assignment of four would build and unpack a tuple.
        if constants is None:
            node._a = a
            node._da = da
            node._b = b
            node._db = db
        elif constants is NUMBER_SECOND:
            node._a = a
            node._da = da
            node._b = None
            node._db = bd  # the number, for `args`; a one-input node has no second derivative
        else:
            node._a = b
            node._da = db
            node._b = None
            node._db = ad
        node._id = next(_counter)
        return node

    return record


_add = _binary_operation(ops.ADD)
_sub = _binary_operation(ops.SUB)
_mul = _binary_operation(ops.MUL)
_div = _binary_operation(ops.DIV)
_pow = _binary_operation(ops.POW)
_leaky_relu = _binary_operation(ops.LEAKY_RELU)
_elu = _binary_operation(ops.ELU)


class Value:
    """A scalar node of the computation graph.

    Args:
        data: a real number (int, float or numpy real scalar); stored as a Python float.
            bool, str, complex, None, containers and Values raise TypeError.
        label: a name for pictures and reprs (e.g. "x" or "layers.0.weight[1, 0]").

    Operators `+ - * / **`, unary `-` and `abs()` work with Values and plain numbers on
    either side. `==` and `hash` are by identity (Values are safe in sets and dicts);
    `< <= > >=` compare `.data` and return a plain bool, recording nothing.
    """

    __slots__ = ("data", "grad", "op", "_a", "_da", "_b", "_db", "_more", "_id", "_label")

    data: float
    grad: float
    op: Op | None
    # _a and _more are typed Any: backward reads them in loops where they are known to be
    # set, and a check there would cost time on every node.
    _a: Any  # first input: a Value (None for a leaf)
    _da: Any  # d(self)/d(_a): a float
    _b: Value | None  # second input, if any
    _db: Any  # d(self)/d(_b); or, with one input and a number, that number (see args)
    # What the slots above cannot hold, for the few nodes that need it; None for the rest:
    # - NUMBER_FIRST / NUMBER_SECOND: a binary op with one plain number (kept in _db, which
    #   a one-input node does not otherwise use), so `args` knows the order;
    # - (inputs 3.., their local derivatives, args or None): an op with more than two
    #   inputs or with plain numbers among its args; `args` has None where a Value stands,
    #   and is None itself when every argument is a Value.
    _more: Any
    _id: int  # creation order: every node is made after its inputs
    _label: str  # set only when a label is given (see the `label` property)

    def __init__(self, data: float, label: str = "") -> None:
        if isinstance(data, Value):
            raise TypeError(
                "Value: data must be a real number, got Value "
                "(use v.detach() for a new leaf with the same data)"
            )
        self.data = _as_float(data, "Value")
        self.grad = 0.0
        if label != "":  # most Values get no label: their label slot stays empty
            self.label = label
        _make_leaf(self)

    @property
    def label(self) -> str:
        """A name for pictures and reprs; "" when none was given."""
        # Stored only when given: most nodes never get a label, and an empty slot costs
        # neither a store when a node is made nor a visit by the garbage collector.
        return getattr(self, "_label", "")

    @label.setter
    def label(self, label: str) -> None:
        if not isinstance(label, str):
            raise TypeError(f"Value: label must be a str, got {type(label).__name__}: {label!r}")
        self._label = label

    # -- the graph, as plain tuples ---------------------------------------------------------

    @property
    def inputs(self) -> tuple[Value, ...]:
        """The Values this node was computed from, in argument order (empty for a leaf)."""
        if self._a is None:
            return ()
        if self._b is None:
            return (self._a,)
        if self._more is None:
            return (self._a, self._b)
        return (self._a, self._b, *self._more[0])

    @property
    def local_grads(self) -> tuple[float, ...]:
        """d(self)/d(input) for each of `inputs`, as computed at forward time."""
        if self._a is None:
            return ()
        if self._b is None:
            return (self._da,)
        if self._more is None:
            return (self._da, self._db)
        return (self._da, self._db, *self._more[1])

    @property
    def args(self) -> tuple[Value | float, ...]:
        """What the op was called with: Values and plain numbers, in order."""
        more = self._more
        if more is NUMBER_SECOND:
            return (self._a, self._db)
        if more is NUMBER_FIRST:
            return (self._db, self._a)
        constants = None if more is None else more[2]
        if constants is None:
            return self.inputs
        values = iter(self.inputs)
        return tuple(next(values) if c is None else c for c in constants)

    # -- display and conversion ---------------------------------------------------------

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __float__(self) -> float:
        return self.data

    def item(self) -> float:
        """The data as a Python float (PyTorch's name)."""
        return self.data

    @property
    def is_leaf(self) -> bool:
        """True for a Value made directly (or under no_grad), not by a recorded op."""
        return self.op is None

    # -- graph utilities ------------------------------------------------------------------

    def detach(self) -> Value:
        """A new leaf with the same data and no history (PyTorch's `detach`)."""
        return Value(self.data, self.label)

    # -- pickling: a graph is saved node by node, its ops by name (see ops.Op.__reduce__) ---

    def __getstate__(self) -> dict[str, Any]:
        # _id is left out: creation order is per process (see __setstate__). An unset
        # _label (no label given) is left out too.
        return {
            name: getattr(self, name)
            for name in Value.__slots__
            if name != "_id" and hasattr(self, name)
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        # The markers are compared by identity; an unpickled string is an equal copy.
        if self._more == NUMBER_FIRST:
            self._more = NUMBER_FIRST
        elif self._more == NUMBER_SECOND:
            self._more = NUMBER_SECOND
        # A fresh creation number, so nodes made from this one come after it. pickle
        # restores a node's inputs before the node, so the graph keeps its topological order.
        self._id = next(_counter)

    def zero_grad(self) -> None:
        """Set this node's grad to 0.0. For a whole graph use `Module.zero_grad()` or loop."""
        self.grad = 0.0

    def backward(self, gradient: float = 1.0) -> None:
        """Fill `.grad` of every node this Value depends on with d(self)/d(node).

        Args:
            gradient: d(loss)/d(self) to start from (default 1.0, for a scalar loss).

        Leaves accumulate across calls, as in PyTorch; intermediate nodes hold the gradient
        of the latest pass. Iterative: a chain of a million nodes needs no recursion.
        """
        from .engine import backward

        backward(self, gradient)

    # -- comparisons: on .data, plain bools, nothing recorded -----------------------------

    def __lt__(self, other: Any) -> bool:
        return self.data < _compare_data(other)

    def __le__(self, other: Any) -> bool:
        return self.data <= _compare_data(other)

    def __gt__(self, other: Any) -> bool:
        return self.data > _compare_data(other)

    def __ge__(self, other: Any) -> bool:
        return self.data >= _compare_data(other)

    # `==` stays identity (and hash with it), so Values can be dict keys and set members.
    __hash__ = object.__hash__

    # -- arithmetic -------------------------------------------------------------------------

    __add__ = _add

    def __radd__(self, other: Any) -> Value:
        return _add(other, self)

    __sub__ = _sub

    def __rsub__(self, other: Any) -> Value:
        return _sub(other, self)

    __mul__ = _mul

    def __rmul__(self, other: Any) -> Value:
        return _mul(other, self)

    __truediv__ = _div

    def __rtruediv__(self, other: Any) -> Value:
        return _div(other, self)

    __pow__ = _pow

    def __rpow__(self, other: Any) -> Value:
        return _pow(other, self)

    def __neg__(self) -> Value:
        return _unary(ops.NEG, self)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return _unary(ops.ABS, self)

    # -- unary functions (also reached by numpy: np.tanh(obj_array) calls .tanh()) ---------

    def exp(self) -> Value:
        """e**self. Raises OverflowError when the result exceeds float64 (self > ~709.78)."""
        return _unary(ops.EXP, self)

    def log(self) -> Value:
        """Natural log. Raises ValueError for data <= 0."""
        return _unary(ops.LOG, self)

    def sqrt(self) -> Value:
        """Square root; derivative inf at 0. Raises ValueError for data < 0."""
        return _unary(ops.SQRT, self)

    def tanh(self) -> Value:
        """Hyperbolic tangent; derivative precise in saturation (tanh'(20) = 1.7e-17)."""
        return _unary(ops.TANH, self)

    def sigmoid(self) -> Value:
        """Logistic sigmoid, stable for any input."""
        return _unary(ops.SIGMOID, self)

    def relu(self) -> Value:
        """max(self, 0); relu'(0) = 0 (PyTorch, JAX)."""
        return _unary(ops.RELU, self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Value:
        """self if self > 0 else negative_slope * self (PyTorch's default slope 0.01)."""
        return _leaky_relu(self, _operand(negative_slope, "leaky_relu"))

    def elu(self, alpha: float = 1.0) -> Value:
        """self if self > 0 else alpha * (exp(self) - 1) (Clevert et al. 2015)."""
        return _elu(self, _operand(alpha, "elu"))

    def gelu(self) -> Value:
        """x * Phi(x), the exact GELU (Hendrycks & Gimpel 2016)."""
        return _unary(ops.GELU, self)

    def ndtr(self) -> Value:
        """Standard normal CDF Phi(self)."""
        return _unary(ops.NDTR, self)

    def softplus(self) -> Value:
        """log(1 + exp(self)), without overflow."""
        return _unary(ops.SOFTPLUS, self)

    def sin(self) -> Value:
        """Sine (radians)."""
        return _unary(ops.SIN, self)

    def cos(self) -> Value:
        """Cosine (radians)."""
        return _unary(ops.COS, self)

    def maximum(self, other: Any) -> Value:
        """Elementwise max; a tie splits the gradient 0.5/0.5 (torch.maximum)."""
        # Not _binary_operation: a method has no reflected fallback, and NotImplemented
        # would be returned to the caller.
        return apply(ops.MAXIMUM, self, _operand(other, "maximum"))

    def minimum(self, other: Any) -> Value:
        """Elementwise min; a tie splits the gradient 0.5/0.5 (torch.minimum)."""
        return apply(ops.MINIMUM, self, _operand(other, "minimum"))


# -----------------------------------------------------------------------------------------
# Making nodes
# -----------------------------------------------------------------------------------------


def _operand(x: Any, where: str) -> Value | float:
    """A Value as it is, a plain number as a float; anything else is a TypeError."""
    if isinstance(x, Value):
        return x
    return _as_float(x, where)


def _compare_data(other: Any) -> float:
    if isinstance(other, Value):
        return other.data
    if is_number(other):
        return float(other)
    raise TypeError(f"cannot compare Value with {type(other).__name__}")


_counter = itertools.count()
NUMBER_FIRST = "number first"  # e.g. 2.0 - x
NUMBER_SECOND = "number second"  # e.g. x * 2.0
# Bounds for the finiteness check `_NEG_INF < out < _INF` (False for inf and NaN), held as
# constants: `-math.inf` written inline would make a new float on every operation.
_INF = math.inf
_NEG_INF = -math.inf


def _make_leaf(node: Value) -> None:
    node.op = None
    node._a = node._b = node._more = None
    node._da = node._db = 0.0
    node._id = next(_counter)


def _check_finite(op: Op, out: float, data: Iterable[float]) -> None:
    """Raise OverflowError when finite inputs gave a non-finite result (IEEE inputs pass)."""
    data = list(data)
    if all(math.isfinite(d) for d in data):
        shown = ", ".join(repr(d) for d in data[:3])
        if len(data) > 3:
            shown += f", ... ({len(data)} inputs)"
        raise OverflowError(f"{op.name}: result {out!r} is not finite for finite input(s) {shown}")


def _unary(op: Op, x: Value) -> Value:
    """apply(op, x) for one Value argument: the same steps as `apply`, unrolled for speed."""
    out = op.forward(x.data)
    if not _NEG_INF < out < _INF:
        _check_finite(op, out, (x.data,))
    node = Value.__new__(Value)
    node.data = out
    node.grad = 0.0
    if not _grad_enabled.get():
        _make_leaf(node)
        return node
    node.op = op
    node._a = x
    (node._da,) = op.local_grads(out, x.data)
    node._b = node._more = None
    node._db = 0.0
    node._id = next(_counter)
    return node


def apply(op: Op, *args: Value | float) -> Value:
    """Run a primitive on Values and floats and record the result as a graph node.

    Args:
        op: an entry of the derivative table (`ops.OPS`).
        args: Values and plain floats, in the op's argument order.

    Returns:
        A new Value. Under `no_grad()`, or when no argument is a Value, it is a leaf.

    Raises:
        Whatever `op.forward` raises for a domain error, and OverflowError when finite
        inputs give a non-finite result. Nothing is recorded when it raises.
    """
    data = [a.data if isinstance(a, Value) else float(a) for a in args]
    out = op.forward(*data)
    if not _NEG_INF < out < _INF:
        _check_finite(op, out, data)
    node = Value.__new__(Value)
    node.data = out
    node.grad = 0.0
    inputs = [a for a in args if isinstance(a, Value)]
    if not inputs or not _grad_enabled.get():
        _make_leaf(node)
        return node
    local_grads: Any = op.local_grads(out, *data)
    if len(inputs) != len(args):
        # Plain numbers are arguments, not graph inputs: keep only the Values' derivatives,
        # and remember the numbers (for pictures and for create_graph).
        local_grads = [d for a, d in zip(args, local_grads) if isinstance(a, Value)]
        constants = tuple(None if isinstance(a, Value) else a for a in args)
    else:
        constants = None
    node.op = op
    node._a, node._da = inputs[0], local_grads[0]
    if len(inputs) == 1:
        node._b, node._db = None, 0.0
    else:
        node._b, node._db = inputs[1], local_grads[1]
    if len(inputs) > 2 or constants is not None:
        node._more = (tuple(inputs[2:]), tuple(local_grads[2:]), constants)
    else:
        node._more = None
    node._id = next(_counter)
    return node


# -----------------------------------------------------------------------------------------
# Functions on sequences, and two-argument functions
# -----------------------------------------------------------------------------------------


def _operands(xs: Iterable[Any], where: str) -> tuple[Value | float, ...]:
    items = tuple(_operand(x, where) for x in xs)
    if not items:
        raise ValueError(f"{where}: needs at least one element, got an empty sequence")
    return items


def sum(xs: Iterable[Any]) -> Value:
    """Sum of Values and numbers as ONE graph node (Python's built-in sum makes a chain).

    The value is math.fsum's, correctly rounded: the same float on every Python version
    (the built-in sum of floats is compensated from 3.12 on, plain before; see ops._fsum).
    Raises ValueError for an empty sequence, TypeError for a non-number element.
    """
    return apply(ops.SUM, *_operands(xs, "sum"))


def mean(xs: Iterable[Any]) -> Value:
    """Arithmetic mean: sum(xs) / len(xs), the sum correctly rounded as in `sum`.

    Raises ValueError for an empty sequence.
    """
    items = _operands(xs, "mean")
    return apply(ops.SUM, *items) / len(items)


def logsumexp(xs: Iterable[Any]) -> Value:
    """log(sum(exp(x_i))), shifted by the maximum so it never overflows.

    Its gradient is softmax(xs). Raises ValueError for an empty sequence.
    """
    return apply(ops.LOGSUMEXP, *_operands(xs, "logsumexp"))


def softmax(xs: Iterable[Any]) -> list[Value]:
    """softmax_i = exp(x_i) / sum_j exp(x_j): a list of Values summing to 1.

    Computed as `ops.softmax` does (shifted by the largest x, never overflowing, exact at
    any magnitude: softmax([1e16, 1e16]) is [0.5, 0.5]). Raises ValueError for an empty
    sequence, TypeError for a non-number element.
    """
    items = _operands(xs, "softmax")
    return [p if isinstance(p, Value) else Value(p) for p in ops.softmax(items)]


def maximum(a: Any, b: Any) -> Any:
    """max(a, b); a tie splits the gradient 0.5/0.5 (torch.maximum). NaN propagates."""
    if is_number(a) and is_number(b):
        return ops.MAXIMUM.forward(float(a), float(b))
    return apply(ops.MAXIMUM, _operand(a, "maximum"), _operand(b, "maximum"))


def minimum(a: Any, b: Any) -> Any:
    """min(a, b); a tie splits the gradient 0.5/0.5 (torch.minimum). NaN propagates."""
    if is_number(a) and is_number(b):
        return ops.MINIMUM.forward(float(a), float(b))
    return apply(ops.MINIMUM, _operand(a, "minimum"), _operand(b, "minimum"))


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """x if x > 0 else negative_slope * x. Number -> float, Value -> Value."""
    if is_number(x):
        return ops.LEAKY_RELU.forward(float(x), float(negative_slope))
    return apply(ops.LEAKY_RELU, _operand(x, "leaky_relu"), _operand(negative_slope, "leaky_relu"))


def elu(x: Any, alpha: float = 1.0) -> Any:
    """x if x > 0 else alpha * (exp(x) - 1) (Clevert et al. 2015).

    Number -> float, Value -> Value.
    """
    if is_number(x):
        return ops.ELU.forward(float(x), float(alpha))
    return apply(ops.ELU, _operand(x, "elu"), _operand(alpha, "elu"))


def linear(weights: Iterable[Any], xs: Iterable[Any], bias: Any = 0.0) -> Value:
    """A neuron's weighted sum `bias + sum_i weights[i] * xs[i]` as ONE graph node.

    The gradients of the chain of `*` and `+` it replaces, with far fewer nodes; the value
    is the correctly rounded sum (math.fsum) of bias and the rounded products, the same
    float on every Python version.

    Raises:
        ValueError: when weights and xs differ in length (both lengths named).
    """
    # Inline checks, not a call per element: this runs for every neuron of every sample.
    ws = [w if isinstance(w, Value) or type(w) is float else _operand(w, "linear") for w in weights]
    vs = [x if isinstance(x, Value) or type(x) is float else _operand(x, "linear") for x in xs]
    if len(ws) != len(vs):
        raise ValueError(f"linear: {len(ws)} weights but {len(vs)} inputs")
    return apply(ops.LINEAR, _operand(bias, "linear"), *ws, *vs)
