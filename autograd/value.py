"""`Value`: one float in a computation graph, and `apply`, which makes every node.

A Value holds `data` (a float) and `grad` (d(output)/d(this), filled in by `backward()`).
A Value made by an op remembers how: `op` (its entry in `ops.py`; None for a leaf), `args`
(Values and plain numbers as floats, in order) and `local_grads` (d(this)/d(arg) for each
argument by the op's rules, at forward time; None for a plain number: nobody needs it).
Numbers, not closures: no reference cycles, and backward is multiply-adds. Next: `engine.py`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from . import engine
from .grad_mode import _grad_enabled
from .ops import OPS, Op, is_number

_serials = itertools.count()  # creation numbers: every node is made after its inputs
_INF, _NEG_INF = math.inf, -math.inf  # the finiteness check's bounds, as names: no lookups


class Value:
    """A scalar node: `Value(data, label="")`, data a real number (`ops.is_number`; bool,
    str, complex, None, containers and Values raise TypeError) stored as a float.

    Operators take Values and numbers on either side; methods `exp`, `tanh`, ... are the
    table's ops. `==` is identity; `<` compares data. `float(v)` and `math.exp(v)` raise
    TypeError (they would drop the graph): `v.item()` is the number.
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
        self.data, self.grad, self.op, self.args = _as_float(data, "Value"), 0.0, None, ()
        self.local_grads, self.label, self.serial = (), label, next(_serials)

    @property
    def label(self) -> str:  # a name for pictures and reprs: a str, "" when none is given
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

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    def __format__(self, spec: str) -> str:
        return format(self.data, spec) if spec else repr(self)  # f"{loss:.4f}" formats data

    def __float__(self) -> float:
        # math.tanh(v) calls this, and would return a float with no graph behind it.
        raise TypeError("math functions and float() would drop the graph: use autograd.exp(v), "
                        "autograd.log(v), autograd.sqrt(v), autograd.tanh(v), autograd.sin(v), "
                        "autograd.cos(v), ... or v.exp(); v.item() is the number")  # fmt: skip

    def backward(self, gradient: float = 1.0) -> None:
        """Fill `.grad` of every node this Value depends on (see `engine.backward`)."""
        engine.backward(self, gradient)

    # PyTorch's names (the data as a float; a new leaf with the same data and label; this
    # node's grad to 0.0), then micrograd's, as views of the fields (README: "Coming from
    # micrograd"): its input set, its op's symbol, its own chain-rule step.
    # fmt: off
    def item(self) -> float: return self.data
    def detach(self) -> Value: return Value(self.data, self.label)
    def zero_grad(self) -> None: self.grad = 0.0
    @property
    def is_leaf(self) -> bool: return self.op is None  # made directly or under no_grad()
    @property
    def _prev(self) -> set[Value]: return set(self.inputs)
    @property
    def _op(self) -> str: return "" if self.op is None else self.op.symbol
    def _backward(self) -> None: engine.chain_rule((self,))
    # fmt: on

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle and deepcopy: the graph as a flat program (no recursion at any depth), rows
        # (op, args as row numbers or floats, local_grads, data, grad, label), inputs first;
        # other leaves as themselves, so pickle keeps them shared.
        order = engine.topological_order(self) if self.op is not None else [self]
        row = {node: i for i, node in enumerate(order)}
        program = [n if n.op is None and n is not self else (n.op, tuple(
            row[a] if isinstance(a, Value) else a for a in n.args), n.local_grads, n.data,
            n.grad, n.label) for n in order]  # fmt: skip
        return (_run_program, (program,))

    # -- comparisons on .data (plain bools, nothing recorded), operators, the table's ops ----
    # fmt: off
    def __lt__(self, other: Any) -> bool: return self.data < _compare_data(other)
    def __le__(self, other: Any) -> bool: return self.data <= _compare_data(other)
    def __gt__(self, other: Any) -> bool: return self.data > _compare_data(other)
    def __ge__(self, other: Any) -> bool: return self.data >= _compare_data(other)
    __hash__ = object.__hash__  # == stays identity, so Values work in sets and dicts

    def __add__(self, other: Any) -> Value: return _binary(ADD, self, other)
    def __radd__(self, other: Any) -> Value: return _binary(ADD, other, self)
    def __sub__(self, other: Any) -> Value: return _binary(SUB, self, other)
    def __rsub__(self, other: Any) -> Value: return _binary(SUB, other, self)
    def __mul__(self, other: Any) -> Value: return _binary(MUL, self, other)
    def __rmul__(self, other: Any) -> Value: return _binary(MUL, other, self)
    def __truediv__(self, other: Any) -> Value: return _binary(DIV, self, other)
    def __rtruediv__(self, other: Any) -> Value: return _binary(DIV, other, self)
    def __pow__(self, other: Any) -> Value: return _binary(POW, self, other)
    def __rpow__(self, other: Any) -> Value: return _binary(POW, other, self)
    def __neg__(self) -> Value: return apply(OPS["neg"], self)
    def __pos__(self) -> Value: return self
    def __abs__(self) -> Value: return apply(OPS["abs"], self)

    def exp(self) -> Value: return apply(OPS["exp"], self)
    def log(self) -> Value: return apply(OPS["log"], self)
    def sqrt(self) -> Value: return apply(OPS["sqrt"], self)
    def tanh(self) -> Value: return apply(OPS["tanh"], self)
    def sigmoid(self) -> Value: return apply(OPS["sigmoid"], self)
    def relu(self) -> Value: return apply(OPS["relu"], self)
    def gelu(self) -> Value: return apply(OPS["gelu"], self)
    def ndtr(self) -> Value: return apply(OPS["ndtr"], self)
    def softplus(self) -> Value: return apply(OPS["softplus"], self)
    def sin(self) -> Value: return apply(OPS["sin"], self)
    def cos(self) -> Value: return apply(OPS["cos"], self)
    def leaky_relu(self, negative_slope: float = 0.01) -> Value: return apply(OPS["leaky_relu"], self, negative_slope)  # noqa: E501
    def elu(self, alpha: float = 1.0) -> Value: return apply(OPS["elu"], self, alpha)
    def maximum(self, other: Any) -> Value: return apply(OPS["maximum"], self, other)
    def minimum(self, other: Any) -> Value: return apply(OPS["minimum"], self, other)
    # fmt: on


ADD, SUB, MUL, DIV, POW = (OPS[name] for name in ("add", "sub", "mul", "div", "pow"))


def apply(op: Op, *args: Any) -> Value:
    """op (an entry of `ops.OPS`) on Values and numbers, as a new node: a leaf under
    `no_grad()` or when no argument is a Value. Raises TypeError for a wrong number of
    arguments or one neither Value nor number; what `op.forward` raises for a domain error;
    OverflowError when finite inputs give a non-finite result. Then nothing is made."""
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
    return _node(out, op, args, tuple(local_grads))


# ---- speed path: apply(op, a, b) for the operators + - * / **, unrolled -----------------
# The same node as apply (tests/test_engine_design.py proves it on random operands) in fewer
# steps (benchmarks/README.md). NotImplemented for an operand that is not a number, so Python
# tries the other side (numpy arrays broadcast Values this way) or raises its TypeError.
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
    node._label, node.serial = "", next(_serials)
    return node


# ---- end of the speed path ---------------------------------------------------------------


def _node(data: float, op: Op | None, args: tuple, local_grads: tuple) -> Value:
    node = Value.__new__(Value)
    node.data, node.grad, node.op, node.args = data, 0.0, op, args
    node.local_grads, node._label, node.serial = local_grads, "", next(_serials)
    return node


def _as_float(x: object, where: str) -> float:
    if not is_number(x):
        raise TypeError(f"{where}: expected a Value or a real number, got {type(x).__name__}: "
                        f"{x!r}")  # fmt: skip
    try:
        return float(x)  # type: ignore[arg-type]
    except OverflowError:
        shown = repr(x) if len(repr(x)) <= 40 else f"an integer of {len(str(x))} digits"
        raise OverflowError(f"{where}: {shown} is too large for a float64") from None


def _check_finite(op: Op, out: float, data: Sequence[float]) -> None:
    if all(math.isfinite(d) for d in data):
        more = f", ... ({len(data)} inputs)" if len(data) > 3 else ""
        shown = ", ".join(repr(d) for d in data[:3]) + more
        raise OverflowError(f"{op.name}: result {out!r} is not finite for finite input(s) {shown}")


def _compare_data(other: Any) -> float:
    return other.data if isinstance(other, Value) else _as_float(other, "comparison")


def _run_program(program: list[Any]) -> Value:
    """The last node of a program made by `Value.__reduce__`, rebuilt row by row."""
    nodes: list[Value] = []
    for row in program:
        if not isinstance(row, Value):  # a row, made into a node
            op, args, local_grads, data, grad, label = row
            args = tuple(nodes[a] if isinstance(a, int) else a for a in args)
            row = _node(data, op, args, local_grads)
            row.grad, row.label = grad, label
        nodes.append(row)
    return nodes[-1]
