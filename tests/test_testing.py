"""autograd.testing: the expression strategy, assert_grad_close, and the engine checked by them.

The engine requirement lives here too: on random expression graphs (ops from the table,
shared sub-expressions) gradients match central finite differences within rtol 1e-5,
atol 1e-8, over 500 examples (the "random-graphs" settings profile below).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd
from autograd import OPS, GradcheckError, Op, Value
from autograd.testing import MIN_GAP, Expression, Node, Ref, assert_grad_close, expressions

# Deterministic (derandomize) so that a run is reproducible; no deadline, since CI machines vary.
settings.register_profile(
    "random-graphs",
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
RANDOM_GRAPHS = settings(settings.get_profile("random-graphs"))


@RANDOM_GRAPHS
@given(expressions(max_ops=8))
def test_engine_gradients_match_finite_differences(expr):
    assert_grad_close(expr, expr.values, order=1, rtol=1e-5, atol=1e-8)


@RANDOM_GRAPHS
@given(expressions(max_ops=8))
def test_engine_second_derivatives_match_finite_differences(expr):
    assert_grad_close(expr, expr.values, order=2)


@RANDOM_GRAPHS
@given(expressions(max_ops=8))
def test_expressions_are_valid_where_they_were_drawn(expr):
    assert 1 <= len(expr.names) <= 3 and len(expr.values) == len(expr.names)
    assert expr.ops <= set(OPS)
    n = len(expr.names)
    for k, node in enumerate(expr.nodes):
        refs = [a.index for a in node.args if isinstance(a, Ref)]
        assert refs and all(i < n + k for i in refs), "an op uses only earlier nodes"
    value = expr(*expr.values)
    assert isinstance(value, float) and math.isfinite(value)
    out = expr(*map(Value, expr.values))
    assert out.data == value
    out.backward()


def _draws(strategy, n=30):
    """n expressions drawn deterministically (a tiny @given run that keeps its draws)."""
    drawn = []

    @settings(RANDOM_GRAPHS, max_examples=n)
    @given(strategy)
    def collect(expr):
        drawn.append(expr)

    collect()
    return drawn


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_of_the_table_is_drawn(name):
    drawn = [e for e in _draws(expressions(ops=[name]), n=10) if name in e.ops]
    assert drawn, f"{name} never appeared"
    assert_grad_close(drawn[0], drawn[0].values, order=2)


def test_sub_expressions_are_shared_and_reused():
    drawn = _draws(expressions(), n=50)

    def reuses(e: Expression) -> bool:  # one node feeding two ops, or one op twice
        uses = [a.index for node in e.nodes for a in node.args if isinstance(a, Ref)]
        return any(uses.count(i) > 1 for i in range(len(e.names), len(e.names) + len(e.nodes)))

    def squares(e: Expression) -> bool:  # the same operand twice in one op: x * x
        return any(
            len(node.args) == 2 and node.args[0] == node.args[1] and isinstance(node.args[0], Ref)
            for node in e.nodes
        )

    assert any(map(reuses, drawn)) and any(map(squares, drawn))


CUBE = Op("cube", "cube", 1, lambda x: x**3, (lambda out, x: 3 * x * x,), ("",))
WRONG_CUBE = Op("wrong_cube", "cube", 1, lambda x: x**3, (lambda out, x: 3 * x,), ("",))
# Right first derivative, but float() cuts the graph: second derivatives come out wrong.
GRAPHLESS_SIN = Op(
    "graphless_sin", "sin", 1, math.sin, (lambda out, x: math.cos(getattr(x, "data", x)),), ("",)
)
KINKED = Op(
    "kinked", "kinked", 1, lambda x: abs(x) * 2.0 + x, (lambda out, x: 4.0 * (x > 0) - 1.0,), ("",)
)


@pytest.fixture
def extra_ops(monkeypatch):
    """The table with three ops added, as a user (or a new table entry) would add them."""
    for op in (CUBE, WRONG_CUBE, GRAPHLESS_SIN, KINKED):
        monkeypatch.setitem(OPS, op.name, op)


def test_a_new_op_in_the_table_is_tested_automatically(extra_ops):
    drawn = _draws(expressions(ops=["cube", "sin", "mul"]), n=50)
    assert sum("cube" in e.ops for e in drawn) >= 10
    for expr in drawn:
        assert_grad_close(expr, expr.values, order=2)


def test_a_new_op_with_a_wrong_rule_is_caught(extra_ops):
    @settings(RANDOM_GRAPHS, max_examples=50)
    @given(expressions(ops=["wrong_cube"]))
    def check(expr):
        assert_grad_close(expr, expr.values)

    with pytest.raises(GradcheckError, match="MISMATCH"):
        check()


def test_a_rule_wrong_only_at_second_order_is_caught_at_order_2(extra_ops):
    strategy = expressions(ops=["graphless_sin", "mul"])
    for expr in _draws(strategy, n=20):
        assert_grad_close(expr, expr.values, order=1)

    @settings(RANDOM_GRAPHS, max_examples=50)
    @given(strategy)
    def check(expr):
        assert_grad_close(expr, expr.values, order=2)

    with pytest.raises(GradcheckError, match=r"(?s)gradgradcheck: .*MISMATCH"):
        check()


def test_a_new_op_is_kept_away_from_its_kinks(extra_ops):
    # The strategy knows nothing of `kinked`: it finds the kink numerically and avoids it.
    drawn = _draws(expressions(ops=["kinked", "add"], values=st.sampled_from([0.0, 1e-9])), n=50)
    assert sum("kinked" in e.ops for e in drawn) >= 5
    for expr in drawn:
        operands = []

        def record(name, args):
            if name == "kinked":
                operands.append(args[0])
            return OPS[name].forward(*args)

        expr.evaluate(expr.values, record)
        assert all(abs(x) >= MIN_GAP for x in operands), operands
        assert_grad_close(expr, expr.values, order=2)


def test_expression_evaluates_with_other_ops():
    expr = Expression(
        ("x", "y"), (2.0, 3.0), (Node("mul", (Ref(0), Ref(1))), Node("add", (Ref(2), 1.5)))
    )
    assert expr(2.0, 3.0) == 7.5
    trace = expr.evaluate(["a", "b"], lambda name, args: f"{name}({', '.join(map(str, args))})")
    assert trace == "add(mul(a, b), 1.5)"
    assert "v0 = mul(x, y)" in repr(expr) and "v1 = add(v0, 1.5)" in repr(expr)
    with pytest.raises(ValueError, match="takes 2 inputs, got 1"):
        expr(1.0)


def test_assert_grad_close_raises_with_the_table():
    bad = Op("bad_exp", "e", 1, math.exp, (lambda out, x: out * 1.001,), ("",))
    with pytest.raises(GradcheckError, match=r"input 0 .*MISMATCH"):
        assert_grad_close(lambda x: autograd.apply(bad, x), [0.5])
    with pytest.raises(ValueError, match="order must be 1 or 2, got 3"):
        assert_grad_close(lambda x: x * x, [0.5], order=3)


def test_strategy_arguments_are_checked():
    with pytest.raises(ValueError, match=r"ops must be names in autograd\.OPS"):
        _draws(expressions(ops=["nope"]), n=1)
    with pytest.raises(ValueError, match="min_leaves"):
        _draws(expressions(names=("x",), min_leaves=2), n=1)


def test_importing_autograd_does_not_need_hypothesis():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import autograd, autograd.func, autograd.gradcheck\n"
        "try:\n    import autograd.testing\nexcept ImportError:\n    print('needs hypothesis')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "needs hypothesis"
