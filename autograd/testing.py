"""Property-testing derivatives: random expressions (hypothesis) and `assert_grad_close`.

Public and documented: this project's own tests use it, and so can yours.

- `expressions()` is a hypothesis strategy for random expression DAGs over named leaves.
  Its ops come from the derivative table `autograd.OPS`, so an op added to the table is
  property-tested with no change here. Sub-expressions are shared and reused (`x * x`, one
  node feeding several others), and every op gets operands inside its domain and away from
  its kinks, with a margin far wider than gradcheck's default steps can move them.
- `assert_grad_close(f, inputs, order=1|2)` checks first (and second) derivatives against
  central finite differences (`gradcheck`, `gradgradcheck`).

    from hypothesis import given
    from autograd.testing import assert_grad_close, expressions

    @given(expressions())
    def test_engine(expr):
        assert_grad_close(expr, expr.values, order=2)

Needs hypothesis (`pip install hypothesis`, part of the `dev` extra); `import autograd` does
not. How an expression is built: leaf values are drawn first, then ops one at a time,
forward, each computed at once. An op's operands are drawn from the leaves and the nodes
built so far; where an operand is outside the op's domain or near a kink, a shift node
`operand + c` moves it to a safe value (c is drawn). An op whose result or local
derivative would be too large is skipped. So every drawn expression is valid by
construction, and hypothesis rarely has to reject a draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .gradcheck import DEFAULT_STEP, gradcheck, gradgradcheck
from .ops import OPS
from .value import Value, apply

__all__ = ["Expression", "Node", "Ref", "assert_grad_close", "expressions"]

# Limits that keep finite differences meaningful: with |values| <= 100 and local derivatives
# <= 100 the rounding error of a central difference stays far below rtol=1e-5.
MAX_VALUE = 100.0
MAX_LOCAL_GRAD = 100.0
# An operand stays this far from a kink or a domain edge, and at least SAFETY times farther
# than the finite-difference steps of the leaves can move it (see `_Builder.gap`).
MIN_GAP = 0.01
SAFETY = 1000.0


@dataclass(frozen=True)
class Ref:
    """An operand that is an earlier leaf or node: `index` counts leaves first, then nodes."""

    index: int


@dataclass(frozen=True)
class Node:
    """One op application: `op` is a name in `autograd.OPS`; args are Refs and constants."""

    op: str
    args: tuple[Ref | float, ...]


@dataclass(frozen=True)
class Expression:
    """A random expression DAG, callable like the function it stands for.

    Attributes:
        names: the leaves' names, e.g. ("x", "y").
        values: the point the expression was built for (one float per leaf). Its ops are
            inside their domains and away from kinks near this point.
        nodes: the ops in forward order; the last node is the output.

    Call it with one float or Value per leaf: floats give a float, Values give a Value with
    the graph (`expr(*map(Value, expr.values)).backward()`).
    """

    names: tuple[str, ...]
    values: tuple[float, ...]
    nodes: tuple[Node, ...]

    def __call__(self, *xs: Any) -> Any:
        def apply_op(name: str, args: list[Any]) -> Any:
            if any(isinstance(a, Value) for a in args):
                return apply(OPS[name], *args)
            return OPS[name].forward(*(float(a) for a in args))

        return self.evaluate(xs, apply_op)

    def evaluate(self, xs: Sequence[Any], apply_op: Callable[[str, list[Any]], Any]) -> Any:
        """Run the expression with your own ops, e.g. PyTorch's, on your own leaf objects.

        Args:
            xs: one object per leaf.
            apply_op: (op name, resolved args) -> result; constants arrive as floats.
        Returns:
            The output node's result.
        Raises:
            ValueError: len(xs) is not the number of leaves.
        """
        if len(xs) != len(self.names):
            raise ValueError(f"expression takes {len(self.names)} inputs, got {len(xs)}")
        results: list[Any] = list(xs)
        for node in self.nodes:
            args = [results[a.index] if isinstance(a, Ref) else a for a in node.args]
            results.append(apply_op(node.op, args))
        return results[-1]

    @property
    def ops(self) -> set[str]:
        """The names of the ops the expression uses."""
        return {node.op for node in self.nodes}

    def __repr__(self) -> str:
        labels = list(self.names) + [f"v{k}" for k in range(len(self.nodes))]
        lines = [", ".join(f"{n}={v!r}" for n, v in zip(self.names, self.values))]
        for k, node in enumerate(self.nodes):
            args = ", ".join(labels[a.index] if isinstance(a, Ref) else repr(a) for a in node.args)
            lines.append(f"  v{k} = {node.op}({args})")
        return "Expression(\n  " + "\n".join(lines) + "\n)"


class _Builder:
    """Builds one expression forward, keeping every node's value and sensitivity."""

    def __init__(self, draw: Callable[..., Any], values: list[float]) -> None:
        self.draw = draw
        self.n_leaves = len(values)
        self.values: list[float] = list(values)
        # sens[k] bounds how far the value of k can move when each leaf moves by its
        # finite-difference step: steps for leaves, sum_j |local_j| * sens[input_j] for nodes.
        self.sens: list[float] = [DEFAULT_STEP * max(1.0, abs(v)) for v in values]
        self.nodes: list[Node] = []

    # -- operands --------------------------------------------------------------------------

    def pick(self) -> Ref:
        """Any leaf or node built so far; later nodes more often, so expressions grow deep."""
        n = len(self.values)
        return Ref(self.draw(st.integers(0, n - 1) | st.integers(max(0, n - 3), n - 1)))

    def operand(self, constant_ok: bool = True) -> Ref | float:
        if constant_ok and self.draw(st.integers(0, 4)) == 0:
            return self.draw(st.floats(-2.0, 2.0, allow_nan=False).filter(lambda c: c != 0))
        return self.pick()

    def value(self, a: Ref | float) -> float:
        return self.values[a.index] if isinstance(a, Ref) else a

    def gap(self, *operands: Ref | float) -> float:
        """How far these operands must stay from a kink or a domain edge."""
        moved = sum(self.sens[a.index] for a in operands if isinstance(a, Ref))
        return max(MIN_GAP, SAFETY * moved)

    def shift(self, a: Ref | float, target: float) -> Ref | float:
        """a moved to the value `target` by a new node `a + c` (a constant moves directly)."""
        if not isinstance(a, Ref):
            return target
        ref = self.add_node(Node("add", (a, target - self.values[a.index])), check=False)
        assert ref is not None
        return ref

    def positive(self, a: Ref | float) -> Ref | float:
        """a itself if safely > 0, else a shifted to a drawn value in [0.5, 2]."""
        if self.value(a) >= self.gap(a):
            return a
        return self.shift(a, self.draw(st.floats(0.5, 2.0)))

    def away_from(self, a: Ref | float, point: float) -> Ref | float:
        """a itself if safely away from `point`, else shifted to point +- [0.5, 2]."""
        if abs(self.value(a) - point) >= self.gap(a):
            return a
        side = self.draw(st.sampled_from([-1.0, 1.0]))
        return self.shift(a, point + side * self.draw(st.floats(0.5, 2.0)))

    def apart(self, a: Ref | float, b: Ref | float) -> Ref | float:
        """b, shifted if needed so that it is safely apart from a (no tie for max/min)."""
        if abs(self.value(a) - self.value(b)) >= self.gap(a, b):
            return b
        side = self.draw(st.sampled_from([-1.0, 1.0]))
        return self.shift(b, self.value(a) + side * self.draw(st.floats(0.5, 2.0)))

    # -- nodes -----------------------------------------------------------------------------

    def add_node(self, node: Node, check: bool = True) -> Ref | None:
        """Compute the node; keep it and return its Ref, or None if it is out of bounds."""
        op = OPS[node.op]
        args = [self.value(a) for a in node.args]
        try:
            out = op.forward(*args)
            local: list[Any] = [
                op.local_grad(i, out, tuple(args)) if isinstance(a, Ref) else None
                for i, a in enumerate(node.args)
            ]
        except (ValueError, ZeroDivisionError, OverflowError):
            return None
        refs = [(a, d) for a, d in zip(node.args, local) if isinstance(a, Ref)]
        if check and not (
            refs
            and math.isfinite(out)
            and abs(out) <= MAX_VALUE
            and all(math.isfinite(d) and abs(d) <= MAX_LOCAL_GRAD for _, d in refs)
        ):
            return None
        self.values.append(float(out))
        self.sens.append(math.fsum(abs(d) * self.sens[a.index] for a, d in refs))
        self.nodes.append(node)
        return Ref(len(self.values) - 1)

    def try_op(self, name: str) -> None:
        """Draw operands for op `name`, made safe for it, and add the node if it fits.

        Shift nodes made on the way stay even when the op itself is skipped: they are
        valid nodes (additions) of their own.
        """
        make = _OPERANDS.get(name, _generic_operands)
        args = make(self, name)
        if args is None:
            return
        ref = self.add_node(Node(name, tuple(args)))
        if ref is not None and name not in _OPERANDS and not _smooth_near(self, name, args):
            # An op this module knows nothing about, with a kink or an edge nearby: undo.
            self.values.pop()
            self.sens.pop()
            self.nodes.pop()

    def output(self) -> None:
        """Make the last node the output: the sum of every node no later node uses."""
        used = {a.index for node in self.nodes for a in node.args if isinstance(a, Ref)}
        sinks = [Ref(k) for k in range(self.n_leaves, len(self.values)) if k not in used]
        if not sinks:
            # Nothing was built: one op on the first leaf keeps the expression an op.
            self.add_node(Node("mul", (Ref(0), Ref(0))), check=False)
        elif len(sinks) > 1:
            self.add_node(Node("sum", tuple(sinks)), check=False)


# -- operands for each op in the table ------------------------------------------------------

Operands = Callable[[_Builder, str], "list[Ref | float] | None"]


def _binary(b: _Builder, name: str) -> list[Ref | float]:
    first = b.operand()
    return [first, b.operand(constant_ok=isinstance(first, Ref))]


def _unary(b: _Builder, name: str) -> list[Ref | float]:
    return [b.pick()]


def _div(b: _Builder, name: str) -> list[Ref | float]:
    numerator = b.operand()
    denominator = b.operand(constant_ok=isinstance(numerator, Ref))
    return [numerator, b.away_from(denominator, 0.0)]


def _pow(b: _Builder, name: str) -> list[Ref | float]:
    form = b.draw(st.sampled_from(["x**n", "x**c", "c**x", "x**y"]))
    if form == "x**n":  # integer exponent: any sign of base, but not 0 for n < 0
        n = b.draw(st.sampled_from([2.0, 3.0, -1.0, -2.0]))
        base = b.pick()
        return [b.away_from(base, 0.0) if n < 0 else base, n]
    if form == "x**c":  # real exponent: base > 0
        return [b.positive(b.pick()), b.draw(st.sampled_from([0.5, 1.5, -0.5, 2.5]))]
    if form == "c**x":
        return [b.draw(st.floats(0.5, 3.0)), b.pick()]
    return [b.positive(b.pick()), b.pick()]


def _kink_at_zero(b: _Builder, name: str) -> list[Ref | float]:
    return [b.away_from(b.pick(), 0.0)]


def _leaky_relu(b: _Builder, name: str) -> list[Ref | float]:
    return [b.away_from(b.pick(), 0.0), b.draw(st.floats(0.01, 0.5))]


def _elu(b: _Builder, name: str) -> list[Ref | float]:
    return [b.away_from(b.pick(), 0.0), b.draw(st.floats(0.5, 2.0))]


def _positive_unary(b: _Builder, name: str) -> list[Ref | float]:
    return [b.positive(b.pick())]


def _max_min(b: _Builder, name: str) -> list[Ref | float]:
    first = b.pick()
    return [first, b.apart(first, b.operand())]


def _n_ary(b: _Builder, name: str) -> list[Ref | float]:
    k = b.draw(st.integers(1, 4))
    args = [b.pick()] + [b.operand() for _ in range(k - 1)]
    return b.draw(st.permutations(args))


def _linear(b: _Builder, name: str) -> list[Ref | float]:
    n = b.draw(st.integers(1, 3))
    return (
        [b.operand()]
        + [b.operand() for _ in range(n)]
        + [b.pick()]
        + [b.operand() for _ in range(n - 1)]
    )


_OPERANDS: dict[str, Operands] = {
    "add": _binary,
    "sub": _binary,
    "mul": _binary,
    "div": _div,
    "neg": _unary,
    "pow": _pow,
    "abs": _kink_at_zero,
    "relu": _kink_at_zero,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "maximum": _max_min,
    "minimum": _max_min,
    "exp": _unary,
    "log": _positive_unary,
    "sqrt": _positive_unary,
    "tanh": _unary,
    "sigmoid": _unary,
    "ndtr": _unary,
    "gelu": _unary,
    "softplus": _unary,
    "sin": _unary,
    "cos": _unary,
    "sum": _n_ary,
    "logsumexp": _n_ary,
    "linear": _linear,
}


def _generic_operands(b: _Builder, name: str) -> list[Ref | float] | None:
    """Operands for an op added to the table after this module: all Values, its arity."""
    arity = OPS[name].arity
    return [b.pick() for _ in range(b.draw(st.integers(1, 4)) if arity is None else arity)]


def _smooth_near(b: _Builder, name: str, args: list[Ref | float]) -> bool:
    """For an unknown op: defined, and without a kink, within the gap of each operand.

    Uses the forward only (the rule is what the tests are to check): the jump between the
    one-sided differences, forward - backward, is about h f'' for a smooth op and halves with
    the step h; at a kink it stays. The same test as gradcheck's, with h = the gap.
    """
    op = OPS[name]
    point = [b.value(a) for a in args]

    def at(k: int, x: float) -> float:
        return op.forward(*point[:k], x, *point[k + 1 :])

    for k, a in enumerate(args):
        if not isinstance(a, Ref):
            continue
        h, mid = b.gap(a), point[k]
        try:
            f_mid = at(k, mid)
            jumps = [
                (at(k, mid + s) - f_mid) / s - (f_mid - at(k, mid - s)) / s for s in (h, h / 2)
            ]
            slope = abs(at(k, mid + h) - f_mid) / h
        except (ValueError, ZeroDivisionError, OverflowError):
            return False
        if abs(jumps[0]) > 1e-3 * (1.0 + slope) and abs(jumps[0] - 2 * jumps[1]) > 0.25 * abs(
            jumps[0]
        ):
            return False
    return True


# -- the strategy ---------------------------------------------------------------------------


@st.composite
def expressions(
    draw: st.DrawFn,
    *,
    names: Sequence[str] = ("x", "y", "z"),
    min_leaves: int = 1,
    max_ops: int = 6,
    ops: Sequence[str] | None = None,
    values: st.SearchStrategy[float] | None = None,
) -> Expression:
    """A hypothesis strategy for random expression DAGs (see the module docstring).

    Args:
        names: the leaves' names; between `min_leaves` and len(names) leaves are used.
        min_leaves: the fewest leaves.
        max_ops: the most ops drawn (shift nodes and the final sum come on top).
        ops: names from `autograd.OPS` to draw from; default all of them. Whatever the
            choice, shift nodes are `add` and several outputs are joined by one `sum`.
        values: a strategy for leaf values; default floats in [-3, 3].

    Returns:
        A strategy of `Expression`s. Each is valid at its own `values`: ops inside their
        domains, away from kinks by more than finite-difference steps reach, |values| and
        local derivatives <= 100.

    Raises:
        ValueError: an unknown op name, or an empty or too-short `names`.
    """
    op_names = sorted(OPS) if ops is None else list(ops)
    unknown = [n for n in op_names if n not in OPS]
    if unknown or not op_names:
        raise ValueError(f"expressions: ops must be names in autograd.OPS, got {unknown or ops}")
    if not 1 <= min_leaves <= len(names):
        raise ValueError(
            f"expressions: need 1 <= min_leaves <= len(names), got {min_leaves}, {len(names)}"
        )
    leaf_values = values if values is not None else st.floats(-3.0, 3.0)
    n_leaves = draw(st.integers(min_leaves, len(names)))
    builder = _Builder(draw, [draw(leaf_values) for _ in range(n_leaves)])
    for _ in range(draw(st.integers(1, max_ops))):
        builder.try_op(draw(st.sampled_from(op_names)))
    builder.output()
    leaves = tuple(builder.values[:n_leaves])
    return Expression(tuple(names[:n_leaves]), leaves, tuple(builder.nodes))


def assert_grad_close(
    f: Callable[..., Any],
    inputs: Sequence[float],
    order: int = 1,
    *,
    eps: float | None = None,
    atol: float = 1e-8,
    rtol: float = 1e-5,
) -> None:
    """Assert that f's derivatives up to `order` match central finite differences.

    Args:
        f: a function of len(inputs) scalars returning a scalar Value (an `Expression` is one).
        inputs: the point.
        order: 1 checks the gradient (`gradcheck`); 2 checks it and the Hessian
            (`gradgradcheck`), like JAX's `check_grads(f, args, order=2)`.
        eps, atol, rtol: as for `gradcheck` (defaults eps_machine**(1/3) * max(1, |x|),
            1e-8, 1e-5).

    Raises:
        GradcheckError (an AssertionError): with the side-by-side table of the mismatch.
        ValueError: order is not 1 or 2; TypeError/ValueError from gradcheck for bad f or inputs.
    """
    if order not in (1, 2):
        raise ValueError(f"assert_grad_close: order must be 1 or 2, got {order!r}")
    gradcheck(f, inputs, eps=eps, atol=atol, rtol=rtol)
    if order == 2:
        gradgradcheck(f, inputs, eps=eps, atol=atol, rtol=rtol)
