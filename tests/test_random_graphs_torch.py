"""Random expression graphs against PyTorch float64 (orders 1 and 2) and central differences.

The graphs come from `autograd.testing.expressions`: DAGs over up to three leaves whose ops
are drawn from the derivative table `autograd.OPS`, with sub-expressions reused (one node
feeding several others, `x * x`), each op inside its domain and away from its kinks. They
are built here through the public functions (`a + b`, `autograd.tanh`, `autograd.linear`,
...), not through the table, so the operators and functions a user calls are what is tested.

Two tests of 1000 examples each (derandomized, so the suite is deterministic):

- against PyTorch float64, where torch is installed: the value, the gradient
  (`autograd.grad`) and the Hessian (`autograd.grad` of `create_graph=True` gradients).
  Tolerance: relative 1e-12, with an absolute floor of 1e-12 times the largest value or
  derivative of the same expression. The floor is for results that are tiny next to the
  numbers they came from: there torch keeps only absolute precision where this engine keeps
  relative precision (torch's tanh backward is 1 - tanh(x)**2, 0.0 at x = 20, where the
  exact tanh'(20) is 1.7e-17; its sigmoid double backward is 1 - 2 sigmoid(x), which
  cancels near 0), so the two agree only to about 1e-16 absolute there;
- against central differences of the expression's own float forward, everywhere
  (`autograd.testing.assert_grad_close`, order 2: gradient and Hessian; rtol 1e-5,
  atol 1e-8, the finite-difference error at these step sizes).

Leaves are drawn from ordinary values, from values up to 25 in size (saturated tanh,
sigmoid, softplus) and from tiny ones (3e-9, 1e-20), where second derivatives are hardest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd
from autograd import OPS, Value
from autograd.testing import Expression, assert_grad_close, expressions

REL = 1e-12
EXAMPLES = 1000

LEAVES = (
    st.floats(-3.0, 3.0)
    | st.floats(-25.0, 25.0)
    | st.sampled_from([3e-9, -3e-9, 1e-20, -1e-12, 0.0, 5e-324])
)
GRAPHS = expressions(max_ops=7, values=LEAVES)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _linear(b: Any, *wx: Any) -> Value:
    n = len(wx) // 2
    return autograd.linear(wx[:n], wx[n:], b)


# name in autograd.OPS -> the public function or operator that applies it
PUBLIC: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda a: -a,
    "pow": lambda a, b: a**b,
    "abs": abs,
    "maximum": autograd.maximum,
    "minimum": autograd.minimum,
    "exp": autograd.exp,
    "log": autograd.log,
    "sqrt": autograd.sqrt,
    "tanh": autograd.tanh,
    "sigmoid": autograd.sigmoid,
    "relu": autograd.relu,
    "leaky_relu": autograd.leaky_relu,
    "elu": autograd.elu,
    "ndtr": autograd.ndtr,
    "gelu": autograd.gelu,
    "softplus": autograd.softplus,
    "sin": autograd.sin,
    "cos": autograd.cos,
    "sum": lambda *xs: autograd.sum(xs),
    "logsumexp": lambda *xs: autograd.logsumexp(xs),
    "linear": _linear,
}


def test_every_op_has_a_public_function() -> None:
    assert set(PUBLIC) == set(OPS)


def ours(expr: Expression, xs: Sequence[Any]) -> Any:
    """The expression through the public API, on Values (or floats for finite differences)."""

    def apply_op(name: str, args: list[Any]) -> Any:
        if not any(isinstance(a, Value) for a in args):
            return OPS[name].forward(*args)  # a float run: the op's own forward
        return PUBLIC[name](*args)

    return expr.evaluate(xs, apply_op)


def test_graphs_are_built_through_the_public_functions() -> None:
    # The public functions reach the same table entries as the expression's own nodes.
    for name, f in PUBLIC.items():
        args: list[Any] = [Value(0.7), Value(1.3)]
        if name in ("neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "ndtr",
                    "gelu", "softplus", "sin", "cos"):  # fmt: skip
            args = args[:1]
        elif name in ("leaky_relu", "elu"):
            args = [Value(0.7), 0.5]
        elif name == "linear":
            args = [Value(0.1), Value(0.2), Value(0.3)]
        assert f(*args).op is OPS[name], name


def our_derivatives(expr: Expression) -> tuple[float, list[float], list[list[float]]]:
    xs = [Value(v) for v in expr.values]
    out = ours(expr, xs)
    first = autograd.grad(out, xs, create_graph=True, allow_unused=True)
    plain = autograd.grad(out, xs, allow_unused=True)
    for g, p in zip(first, plain):
        # The create_graph pass and the plain pass agree on the first derivative.
        assert (0.0 if g is None else g.data) == pytest.approx(
            0.0 if p is None else p, rel=REL, abs=1e-300
        )
    second = [
        [0.0] * len(xs)
        if g is None
        else [0.0 if h is None else h for h in autograd.grad(g, xs, allow_unused=True)]
        for g in first
    ]
    return out.data, [0.0 if g is None else g.data for g in first], second


def torch_derivatives(torch: Any, expr: Expression) -> tuple[float, list[float], list[list[float]]]:
    F = torch.nn.functional

    def t(x: Any) -> Any:
        return x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)

    def lin(b: Any, *wx: Any) -> Any:
        n = len(wx) // 2
        return (
            t(b) + (torch.stack([t(w) for w in wx[:n]]) * torch.stack([t(x) for x in wx[n:]])).sum()
        )

    def pow_(a: Any, b: Any) -> Any:
        # torch.pow masks d/da to 0 where the exponent is 0, and its double backward through
        # that mask loses d2/(da db) = 1/a: torch gives 1 for the second derivative of
        # (x + 1)**x at 0, which is 2 (x**2 + O(x**3)). exp(b log a), the same function for
        # a > 0 (every Value exponent has a positive base here), has torch's exact derivatives.
        if isinstance(b, torch.Tensor) and b.requires_grad:
            return torch.exp(b * torch.log(t(a)))
        return torch.pow(t(a), t(b))

    fns: dict[str, Callable[..., Any]] = {
        "add": lambda a, b: t(a) + t(b), "sub": lambda a, b: t(a) - t(b),
        "mul": lambda a, b: t(a) * t(b), "div": lambda a, b: t(a) / t(b),
        "neg": lambda a: -a, "pow": pow_, "abs": torch.abs,
        "maximum": lambda a, b: torch.maximum(t(a), t(b)),
        "minimum": lambda a, b: torch.minimum(t(a), t(b)),
        "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "tanh": torch.tanh,
        "sigmoid": torch.sigmoid, "relu": torch.relu,
        "leaky_relu": lambda x, s: F.leaky_relu(x, s), "elu": lambda x, a: F.elu(x, a),
        "ndtr": torch.special.ndtr, "gelu": F.gelu,
        # torch's default threshold 20 returns x itself above 20 (off by exp(-20) ~ 2e-9).
        "softplus": lambda x: F.softplus(x, threshold=1e300),
        "sin": torch.sin, "cos": torch.cos,
        "sum": lambda *xs: torch.stack([t(x) for x in xs]).sum(),
        "logsumexp": lambda *xs: torch.logsumexp(torch.stack([t(x) for x in xs]), dim=0),
        "linear": lin,
    }  # fmt: skip
    assert set(fns) == set(OPS)
    xs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in expr.values]
    out = expr.evaluate(xs, lambda name, args: fns[name](*args))
    first = torch.autograd.grad(
        out, xs, create_graph=True, allow_unused=True, materialize_grads=True
    )
    second = []
    for g in first:
        if g.requires_grad:
            row = torch.autograd.grad(
                g, xs, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            second.append([float(h) for h in row])
        else:
            second.append([0.0] * len(xs))
    return out.item(), [g.item() for g in first], second


def agree(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=REL * scale)


@SETTINGS
@given(GRAPHS)
def test_random_graphs_match_torch_at_orders_1_and_2(expr: Expression) -> None:
    torch = pytest.importorskip("torch")
    value, first, second = our_derivatives(expr)
    t_value, t_first, t_second = torch_derivatives(torch, expr)
    scale = max([1.0, abs(value)] + [abs(g) for g in first] + [abs(h) for r in second for h in r])
    assert agree(value, t_value, scale), (value, t_value)
    for i, (g, t_g) in enumerate(zip(first, t_first)):
        assert agree(g, t_g, scale), (expr.names[i], g, t_g)
    for i, (row, t_row) in enumerate(zip(second, t_second)):
        for j, (h, t_h) in enumerate(zip(row, t_row)):
            assert agree(h, t_h, scale), (expr.names[i], expr.names[j], h, t_h)


def test_second_derivative_of_a_power_with_exponent_zero() -> None:
    # The case that made torch's pow unusable as a reference above, checked against the
    # Taylor expansion (x + 1)**x = 1 + x**2 + O(x**3).
    assert autograd.func.derivative(lambda x: (x + 1.0) ** x, 2)(0.0) == 2.0


@SETTINGS
@given(GRAPHS)
def test_random_graphs_match_central_differences_at_orders_1_and_2(expr: Expression) -> None:
    assert_grad_close(lambda *xs: ours(expr, xs), expr.values, order=2)


def test_enough_graphs_share_nodes() -> None:
    shared = 0
    seen = 0

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(GRAPHS)
    def count(expr: Expression) -> None:
        nonlocal shared, seen
        seen += 1
        uses: dict[int, int] = {}
        for node in expr.nodes:
            for a in node.args:
                index = getattr(a, "index", None)
                if index is not None:
                    uses[index] = uses.get(index, 0) + 1
        shared += any(n > 1 for n in uses.values())

    count()
    assert seen == 200
    assert shared >= 50, shared
