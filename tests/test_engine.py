"""Tests for `autograd/engine.py` and `autograd/grad_mode.py`: backward semantics, topological
order, deep graphs, `grad`, `backward_steps`, `no_grad` / `enable_grad` and `detach`."""

from __future__ import annotations

import asyncio
import math
import sys
import threading

import pytest

import autograd
from autograd import Value, backward_steps, enable_grad, is_grad_enabled, no_grad

# ---------------------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------------------


def test_leaves_accumulate_and_intermediates_hold_the_latest_pass() -> None:
    a, b = Value(3.0), Value(-2.0)
    c = a * b  # intermediate
    d = c * c + a  # d = a^2 b^2 + a
    d.backward()
    one_pass = (a.grad, b.grad, c.grad)
    assert one_pass == (2 * 3.0 * 4.0 + 1.0, 2 * 9.0 * -2.0, 2 * -6.0)
    d.backward()
    assert (a.grad, b.grad) == (2 * one_pass[0], 2 * one_pass[1])
    assert c.grad == one_pass[2]  # not doubled
    assert d.grad == 1.0
    d.backward()
    assert (a.grad, b.grad, c.grad) == (3 * one_pass[0], 3 * one_pass[1], one_pass[2])


def test_backward_leaves_every_grad_a_float_even_when_interrupted() -> None:
    # backward stores nothing but floats in grad, even when interrupted mid-search.
    a, b = Value(0.5), Value(-1.5)
    shared = a * b
    out = autograd.sum([shared.tanh(), shared * shared, (shared + a).exp(), b])
    out.backward()
    nodes = autograd.topological_order(out)
    assert all(type(node.grad) is float for node in nodes)
    assert shared.grad == pytest.approx(
        (1 - math.tanh(-0.75) ** 2) + 2 * -0.75 + math.exp(-0.25), rel=1e-14
    )

    class Interrupting(tuple):  # an n-ary node's inputs that raise while being searched
        def __iter__(self):
            raise KeyboardInterrupt

    n_ary = autograd.sum([shared, a, b])
    top = n_ary * shared
    args = n_ary.args
    n_ary.args = Interrupting(args)
    with pytest.raises(KeyboardInterrupt):
        top.backward()
    assert all(type(node.grad) is float for node in (top, n_ary, shared))
    n_ary.args = args
    a.grad = b.grad = 0.0
    top.backward()  # nothing stale is left: the next pass finds every node again
    # top = (ab + a + b) * ab: d/da = (b + 1) * ab + (ab + a + b) * b = 3.0 at (0.5, -1.5)
    assert a.grad == pytest.approx(3.0, rel=1e-15)


def test_backward_order_when_the_search_meets_a_node_before_a_newer_one() -> None:
    # out = u * tanh(u): the search from out finds u before tanh(u), which feeds u; backward
    # must still finish tanh(u) first. And a plain chain, which needs no sorting at all.
    x = Value(0.3)
    u = x.exp()
    out = u * u.tanh()
    out.backward()
    t = math.tanh(math.exp(0.3))
    expected_du = t + math.exp(0.3) * (1 - t * t)
    assert u.grad == pytest.approx(expected_du, rel=1e-14)
    assert x.grad == pytest.approx(expected_du * math.exp(0.3), rel=1e-14)
    y = x
    for _ in range(50):
        y = (y * 0.9).sin() + 0.1
    y.backward()
    h, g = 0.3, 1.0
    for _ in range(50):
        g *= 0.9 * math.cos(0.9 * h)
        h = math.sin(0.9 * h) + 0.1
    assert (y.data, x.grad - expected_du * math.exp(0.3)) == pytest.approx((h, g), rel=1e-13)


def test_zero_grad_resets_a_leaf() -> None:
    x = Value(2.0)
    y = x * x
    y.backward()
    assert x.grad == 4.0
    x.zero_grad()
    assert x.grad == 0.0
    y.backward()
    assert x.grad == 4.0


def test_node_used_twice_gets_both_contributions() -> None:
    a = Value(3.0)
    b = a * a
    b.backward()
    assert a.grad == 6.0
    assert b.inputs == (a, a)  # an ordered tuple, duplicates kept
    x = Value(2.0)
    y = x + 1.0
    z = y * y * y  # y used three times via two nodes
    z.backward()
    assert x.grad == 3 * 3.0**2


def test_diamond() -> None:
    x = Value(2.0)
    left = x * 3.0
    right = x.exp()
    out = left * right
    out.backward()
    # d/dx 3x e^x = 3 e^x + 3x e^x
    assert math.isclose(x.grad, 3 * math.exp(2.0) * (1 + 2.0), rel_tol=1e-15)
    assert math.isclose(left.grad, math.exp(2.0), rel_tol=1e-15)
    assert right.grad == 6.0


def test_backward_with_a_gradient_scales_every_grad() -> None:
    x = Value(3.0)
    y = x * x
    y.backward(gradient=0.5)
    assert x.grad == 3.0 and y.grad == 0.5
    with pytest.raises(TypeError, match="gradient"):
        y.backward(gradient="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gradient"):
        y.backward(gradient=True)


def test_backward_accepts_numpy_real_gradients() -> None:
    np = pytest.importorskip("numpy")
    x = Value(3.0)
    (x * 2.0).backward(np.float64(0.5))
    assert x.grad == 1.0 and type(x.grad) is float
    (x * 2.0).backward(np.int64(2))
    assert x.grad == 5.0 and type(x.grad) is float
    for bad, name in ((True, "bool"), ("1", "str"), (np.bool_(True), "bool"), (1j, "complex")):
        with pytest.raises(TypeError, match=f"gradient must be a real number, got {name}"):
            (x * 2.0).backward(bad)
    assert x.grad == 5.0  # a rejected call changes nothing


def test_backward_on_a_leaf() -> None:
    x = Value(1.0)
    x.backward()
    x.backward()
    assert x.grad == 2.0


def test_backward_on_a_subgraph_root() -> None:
    x = Value(2.0)
    y = x * 3.0
    z = y.tanh()
    z.backward()
    x.zero_grad()
    y.backward()
    assert y.grad == 1.0 and x.grad == 3.0


def test_free_function_backward_is_the_method() -> None:
    x = Value(2.0)
    y = x * x
    autograd.backward(y, 2.0)
    assert x.grad == 8.0


# ---------------------------------------------------------------------------------------
# topological order and depth
# ---------------------------------------------------------------------------------------


def test_topological_order_puts_every_node_after_its_inputs() -> None:
    a, b = Value(1.0), Value(2.0)
    c = a + b
    d = c * a
    e = d - c
    f = e * e
    order = autograd.topological_order(f)
    assert len(order) == len(set(order)) == 6
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for child in node.inputs:
            assert position[child] < position[node]
    assert order[-1] is f
    both = autograd.topological_order([f, c])
    assert set(both) == set(order) and len(both) == 6


def test_200000_node_chain_at_the_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 1000 + 100  # pytest may add a little; never raised here
    x = Value(1.0)
    y = x
    for _ in range(200_000):
        y = y + 1.0
    y.backward()
    assert y.data == 200_001.0
    assert x.grad == 1.0
    (g,) = autograd.grad(y, x)
    assert g == 1.0
    steps = sum(1 for _ in backward_steps(y))
    assert steps == 200_001


def test_deep_chain_through_unary_ops() -> None:
    x = Value(0.5)
    y = x
    for _ in range(50_000):
        y = (y * 1.0).relu()
    y.backward()
    assert x.grad == 1.0


# ---------------------------------------------------------------------------------------
# autograd.grad
# ---------------------------------------------------------------------------------------


def test_grad_first_order_leaves_dot_grad_untouched() -> None:
    x, y = Value(2.0), Value(3.0)
    mid = x * y
    z = mid + x.sin()
    gx, gy = autograd.grad(z, [x, y])
    assert math.isclose(gx, 3.0 + math.cos(2.0), rel_tol=1e-15)
    assert gy == 2.0
    assert type(gx) is float
    assert x.grad == y.grad == mid.grad == z.grad == 0.0


def test_grad_of_a_single_input_returns_a_one_tuple() -> None:
    x = Value(2.0)
    result = autograd.grad(x * x, x)
    assert result == (4.0,)


def test_grad_of_an_input_with_respect_to_itself() -> None:
    x = Value(2.0)
    assert autograd.grad(x, x) == (1.0,)
    assert autograd.grad(x, x, grad_outputs=3.0) == (3.0,)


def test_grad_with_respect_to_an_intermediate_node() -> None:
    x = Value(2.0)
    y = x * x
    z = y.exp()
    (g,) = autograd.grad(z, y)
    assert g == math.exp(4.0)


def test_grad_outputs_and_several_outputs() -> None:
    x = Value(2.0)
    a, b = x * x, x * 3.0
    (g,) = autograd.grad(a, x, grad_outputs=0.5)
    assert g == 2.0
    (g,) = autograd.grad([a, b], x)
    assert g == 4.0 + 3.0  # summed over outputs, as PyTorch does
    (g,) = autograd.grad([a, b], [x], grad_outputs=[1.0, -2.0])
    assert g == 4.0 - 6.0
    (g,) = autograd.grad([a, a], x)
    assert g == 8.0  # the same output twice counts twice


def test_grad_allow_unused() -> None:
    x, y = Value(1.0), Value(2.0)
    z = x * 2.0
    with pytest.raises(ValueError, match="not used"):
        autograd.grad(z, [x, y])
    gx, gy = autograd.grad(z, [x, y], allow_unused=True)
    assert gx == 2.0 and gy is None


def test_grad_input_reached_with_a_zero_gradient_is_used() -> None:
    # Found while testing: a zero upstream gradient made the input look unused.
    x = Value(0.0)
    y = x.sqrt() * 0.0
    (g,) = autograd.grad(y, x)
    assert g == 0.0
    (g,) = autograd.grad(x.sqrt(), x, grad_outputs=0.0)
    assert g == 0.0


def test_grad_errors() -> None:
    x = Value(1.0)
    y = x * 2.0
    with pytest.raises(TypeError, match="Values"):
        autograd.grad(y, [1.0])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Values"):
        autograd.grad(2.0, x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grad_outputs"):
        autograd.grad([y, y], x, grad_outputs=[1.0])
    with pytest.raises(ValueError, match="empty"):
        autograd.grad(y, [])


def test_grad_matches_backward() -> None:
    a, b, c = Value(0.3), Value(-1.2), Value(2.0)
    out = ((a * b).tanh() + (b / c).exp() * a) ** 2 + autograd.logsumexp([a, b, c])
    grads = autograd.grad(out, [a, b, c])
    out.backward()
    assert grads == (a.grad, b.grad, c.grad)


# ---------------------------------------------------------------------------------------
# backward_steps
# ---------------------------------------------------------------------------------------


def _graph() -> tuple[list[Value], Value]:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    d = c + a.exp()
    e = (d * c).tanh() + d.relu() + c.sigmoid()
    return [a, b, c, d], e


def test_backward_steps_leaves_the_same_grads_as_backward() -> None:
    nodes, root = _graph()
    root.backward()
    root.backward()
    want = [n.grad for n in [*nodes, root]]
    nodes2, root2 = _graph()
    for _ in range(2):
        steps = list(backward_steps(root2))
    assert [n.grad for n in [*nodes2, root2]] == want
    order = autograd.topological_order(root2)
    assert [s.node for s in steps] == order[::-1]
    assert steps[0].node is root2 and steps[0].upstream == 1.0 and steps[0].index == 0
    for s in steps:
        assert s.inputs == s.node.inputs and s.local_grads == s.node.local_grads
        assert s.contributions == tuple(s.upstream * g for g in s.local_grads)


def test_backward_step_str_shows_the_chain_rule() -> None:
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    c = a * b
    c.label = "c"
    steps = list(backward_steps(c))
    text = str(steps[0])
    assert "c = a * b" in text and "dL/da += dL/dc * ∂c/∂a = 1.0 * 3.0 = 3.0" in text
    assert "leaf" in str(steps[-1])


# ---------------------------------------------------------------------------------------
# no_grad, enable_grad, detach
# ---------------------------------------------------------------------------------------


def test_no_grad_builds_no_graph() -> None:
    x = Value(2.0)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 3.0 + x.exp()
        assert y.is_leaf and y.inputs == () and y.op is None
        with enable_grad():
            assert is_grad_enabled()
            z = x * 2.0
            assert z.inputs == (x,)
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert math.isclose(y.data, 6.0 + math.exp(2.0), rel_tol=1e-15)


def test_no_grad_restores_the_mode_after_an_exception() -> None:
    with pytest.raises(ValueError), no_grad():
        Value(-1.0).log()
    assert is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators() -> None:
    @no_grad()
    def update(w: Value) -> Value:
        assert not is_grad_enabled()
        return w - 0.1 * w

    @enable_grad()
    def record(w: Value) -> Value:
        return w * 2.0

    w = Value(1.0)
    assert update(w).is_leaf
    assert is_grad_enabled()
    with no_grad():
        assert not record(w).is_leaf
        assert not is_grad_enabled()
    assert update.__name__ == "update"


def test_no_grad_in_one_thread_does_not_affect_another() -> None:
    inside = threading.Event()
    release = threading.Event()
    seen: dict[str, object] = {}

    def worker() -> None:
        with no_grad():
            seen["worker_enabled"] = is_grad_enabled()
            seen["worker_leaf"] = (Value(1.0) * 2.0).is_leaf
            inside.set()
            release.wait(timeout=10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert inside.wait(timeout=10)
        # The worker is inside no_grad right now; this thread still records.
        assert is_grad_enabled()
        x = Value(1.0)
        assert (x * 2.0).inputs == (x,)
    finally:
        release.set()
        t.join()
    assert seen == {"worker_enabled": False, "worker_leaf": True}


def test_no_grad_thread_started_inside_no_grad_records() -> None:
    # A new thread starts with the default (recording on), whatever its creator is doing.
    seen: list[bool] = []
    with no_grad():
        t = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_no_grad_does_not_leak_between_asyncio_tasks() -> None:
    async def main() -> list[bool]:
        gate = asyncio.Event()

        async def in_no_grad() -> bool:
            with no_grad():
                gate.set()
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                return is_grad_enabled()

        async def other() -> bool:
            await gate.wait()
            return is_grad_enabled()

        return list(await asyncio.gather(in_no_grad(), other()))

    assert asyncio.run(main()) == [False, True]


def test_detach() -> None:
    x = Value(2.0, label="x")
    y = x * 3.0
    d = y.detach()
    assert d is not y and d.is_leaf and d.data == 6.0 and d.inputs == ()
    z = d * x
    z.backward()
    assert x.grad == 6.0  # no gradient flows back through the detached copy
    assert d.grad == 2.0 and y.grad == 0.0
