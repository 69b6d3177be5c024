"""The engine's own promises (issue 10): one apply and one proven speed path, no markers,
numbers everywhere by one rule, derivatives of plain numbers never computed, threads, deep
graphs through pickle and deepcopy, no silent graph loss through math.*."""

from __future__ import annotations

import asyncio
import copy
import math
import pickle
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd
import nn
from autograd import OPS, Op, Value, apply, grad, no_grad
from autograd.engine import topological_order

# -- the speed path is apply -----------------------------------------------------------------

OPERATORS = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__",
             "pow": "__pow__"}  # fmt: skip
finite = st.floats(-1e6, 1e6, allow_nan=False)
operand = st.one_of(
    finite.map(Value),
    finite,
    st.integers(-1000, 1000),
    finite.map(np.float64),
    st.integers(-1000, 1000).map(np.int64),
)


def _outcome(call):
    try:
        return call()
    except (ValueError, ZeroDivisionError, OverflowError) as error:
        return type(error)


def _same(x, y) -> bool:
    return x is y or x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(sorted(OPERATORS)), operand, operand, st.booleans())
def test_the_operator_speed_path_makes_the_same_node_as_apply(name, a, b, recording):
    if not (isinstance(a, Value) or isinstance(b, Value)):
        a = Value(float(a))
    op = OPS[name]
    if isinstance(a, Value):
        fast = lambda: getattr(a, OPERATORS[name])(b)  # noqa: E731
    else:  # a number on the left: Python calls the reflected operator of b
        fast = lambda: getattr(b, "__r" + OPERATORS[name][2:])(a)  # noqa: E731
    with autograd.enable_grad() if recording else no_grad():
        by_operator, by_apply = _outcome(fast), _outcome(lambda: apply(op, a, b))
    if isinstance(by_apply, type):  # the same error from both
        assert by_operator is by_apply
        return
    assert _same(by_operator.data, by_apply.data) and type(by_operator.data) is float
    assert by_operator.op is by_apply.op and by_operator.grad == by_apply.grad == 0.0
    assert len(by_operator.args) == len(by_apply.args)
    for x, y in zip(by_operator.args, by_apply.args, strict=True):
        assert x is y if isinstance(x, Value) else type(x) is type(y) is float and x == y
    for x, y in zip(by_operator.local_grads, by_apply.local_grads, strict=True):
        assert _same(x, y)
    assert by_operator.serial > by_apply.serial or by_operator.serial < by_apply.serial


# -- one is_number ---------------------------------------------------------------------------


def test_apply_refuses_what_the_operators_refuse_and_makes_nothing_when_it_fails() -> None:
    x = Value(1.0)
    for bad in ("3", True, None, 1j, [1.0]):
        with pytest.raises(TypeError):
            x + bad
        with pytest.raises(
            TypeError, match=f"add: expected a Value or a real number, got {type(bad).__name__}"
        ):
            apply(OPS["add"], x, bad)
    with pytest.raises(TypeError, match="add: takes 2 arguments, got 3"):
        apply(OPS["add"], x, x, x)
    with pytest.raises(TypeError, match="sum: takes at least 1 arguments, got 0"):
        apply(OPS["sum"])
    before = Value(0.0).serial
    with pytest.raises(ValueError, match="log: input must be > 0"):
        apply(OPS["log"], Value(-1.0))  # the Value(-1.0) takes one creation number
    assert Value(0.0).serial == before + 2  # the failing op made no node


def test_numpy_numbers_are_numbers_everywhere_and_bool_nowhere() -> None:
    x = Value(np.int64(3))
    assert x.data == 3.0 and type(x.data) is float
    y = x * np.float32(0.5) + np.int32(1)
    y.backward(np.float64(2.0))
    assert (y.data, x.grad) == (2.5, 1.0)
    (g,) = grad(y, [x], grad_outputs=np.int64(3))
    assert g == 1.5 and type(g) is float
    opt = nn.SGD([x], lr=np.float64(0.1), momentum=np.int64(0), weight_decay=np.float32(0.0))
    opt.step()
    assert x.data == pytest.approx(3.0 - 0.1 * 1.0, rel=1e-15)
    assert nn.mse_loss([Value(1.0)], [np.float64(3.0)]).data == 4.0
    for bad in (True, np.bool_(True)):
        with pytest.raises(TypeError):
            Value(bad)
        with pytest.raises(TypeError):
            y.backward(bad)
        with pytest.raises(TypeError, match="grad_outputs must be numbers or Values, got bool"):
            grad(y, [x], grad_outputs=bad)
        with pytest.raises(ValueError, match="lr must be a number"):
            nn.SGD([x], lr=bad)
        with pytest.raises(ValueError, match="momentum must be a number"):
            nn.SGD([x], lr=0.1, momentum=bad)


# -- derivatives of plain numbers are never computed ----------------------------------------


def _refusing(message: str):
    def rule(out, x, c):
        raise AssertionError(message)

    return rule


# A two-argument op whose rule for its second argument must never run on a plain number.
SCALE = Op(
    "scale",
    "scale",
    2,
    lambda x, c: x * c,
    (lambda out, x, c: c, _refusing("d/dc")),
    ("{1}", "{0}"),
)


def test_no_derivative_with_respect_to_a_plain_number_is_computed_on_either_pass() -> None:
    x = Value(3.0)
    out = apply(SCALE, x, 2.0)
    assert out.local_grads == (2.0, None)
    out.backward()
    assert x.grad == 2.0
    (g,) = grad(out * out, [x], create_graph=True)  # re-derives the rules on Values
    assert isinstance(g, Value) and g.data == 2 * 6.0 * 2.0


@pytest.mark.parametrize(
    ("f", "want"),
    [
        (lambda x: x / 1e-250, 1e250),  # E32
        (lambda x: 1e-300**x * 1.0, 1e-300**1.0 * math.log(1e-300)),  # d/dbase would be huge
        (lambda x: x**1e-300, 1e-300),  # d/dexponent = out * log(x) is not needed
        (lambda x: x.elu(1e300) * 1.0, 1.0),  # d/dalpha = expm1(x) is not needed
    ],
)
def test_create_graph_works_where_the_plain_pass_works(f, want) -> None:
    x = Value(1.0)
    f(x).backward()
    (g,) = grad(f(Value(1.0)), [Value(1.0)], allow_unused=True)
    assert g is None
    x2 = Value(1.0)
    (g,) = grad(f(x2), [x2], create_graph=True)
    assert isinstance(g, Value) and math.isclose(g.data, x.grad, rel_tol=1e-15)
    assert math.isclose(x.grad, want, rel_tol=1e-12)


# -- a zero factor contributes exactly zero ------------------------------------------------


@pytest.mark.parametrize(
    "f",
    [
        lambda x: autograd.maximum(x, 0.0).sqrt(),
        lambda x: autograd.minimum(x, 0.0).__neg__().sqrt(),
        lambda x: x.relu().sqrt(),
        lambda x: (x * 0.0).sqrt(),  # the local derivative of x * 0.0 is exactly 0
        lambda x: abs(x - 2.0).sqrt(),  # abs'(0) = 0
    ],
)
@pytest.mark.parametrize("x0", [-2.0, 2.0])
def test_a_zero_local_derivative_stops_an_infinite_upstream_gradient(f, x0) -> None:
    if f(Value(x0)).data != 0.0:  # only where sqrt sees 0 (its derivative inf)
        return
    x = Value(x0)
    f(x).backward()
    assert x.grad == 0.0
    (g,) = grad(f(x), [x])
    assert g == 0.0
    (g,) = grad(f(x), [x], create_graph=True)
    assert g.data == 0.0


# -- no markers in grad, threads -------------------------------------------------------------


def _graph(seed: float) -> tuple[Value, list[Value], list[float]]:
    xs = [Value(seed + 0.1 * i) for i in range(4)]
    shared = xs[0] * xs[1]
    terms = [shared.tanh(), shared * xs[2], (xs[3] - shared).exp(), autograd.sum(xs)]
    return autograd.sum(terms), xs, []


def test_backward_on_separate_graphs_from_many_threads_is_exact() -> None:
    expected = {}
    for seed in range(8):
        out, xs, _ = _graph(seed / 10)
        out.backward()
        expected[seed] = [x.grad for x in xs]
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        barrier.wait()
        for _ in range(40):
            out, xs, _ = _graph(seed / 10)
            out.backward()
            if [x.grad for x in xs] != expected[seed]:
                errors.append(f"seed {seed}: {[x.grad for x in xs]}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


def test_grad_from_many_threads_on_one_shared_graph_writes_nothing_and_is_exact() -> None:
    out, xs, _ = _graph(0.3)
    first = grad(out, xs)
    second = [g.data for g in grad(out, xs, create_graph=True)]
    assert [x.grad for x in topological_order(out)] == [0.0] * len(topological_order(out))
    results: list[tuple] = []
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        for _ in range(30):
            results.append((grad(out, xs), [g.data for g in grad(out, xs, create_graph=True)]))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 180 and all(r == (first, second) for r in results)
    assert all(node.grad == 0.0 for node in topological_order(out))  # nothing written
    assert first == pytest.approx([float(g) for g in second], rel=1e-15)


def test_one_no_grad_object_shared_by_threads_and_nested() -> None:
    shared = no_grad()
    seen: list[tuple[bool, bool, bool]] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(50):
            with shared:
                inside = autograd.is_grad_enabled()
                with shared:
                    nested = autograd.is_grad_enabled()
                again = autograd.is_grad_enabled()
            seen.append((inside, nested, again))
        seen.append((autograd.is_grad_enabled(),) * 3)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen.count((False, False, False)) == 200 and seen.count((True, True, True)) == 4


def test_no_grad_on_a_generator_is_refused_and_on_a_coroutine_covers_its_awaits() -> None:
    with pytest.raises(TypeError, match=r"no_grad\(\) cannot decorate the generator .*gen"):

        @no_grad()
        def gen():
            yield Value(1.0) * 2.0

    @no_grad()
    async def quiet() -> bool:
        await asyncio.sleep(0)
        return (Value(1.0) * 2.0).is_leaf

    async def loud() -> bool:
        await asyncio.sleep(0)
        return (Value(1.0) * 2.0).is_leaf

    async def both() -> list[bool]:
        return list(await asyncio.gather(quiet(), loud(), quiet(), loud()))

    assert asyncio.run(both()) == [True, False, True, False]


# -- deep graphs through pickle and deepcopy ------------------------------------------------


def test_a_100000_op_chain_pickles_and_deep_copies_at_the_default_recursion_limit() -> None:
    x = Value(0.5, label="x")
    y = x
    for i in range(50_000):
        y = (y * 0.99999 + 0.001) if i % 2 else (y + 1e-6) * 1.0
    y.label = "y"
    y.backward()
    for restored in (pickle.loads(pickle.dumps(y)), copy.deepcopy(y)):
        assert restored.data == y.data and restored.label == "y"
        order = topological_order(restored)
        assert len(order) == 100_001 and order[0].label == "x" and order[0] is not x
        assert order[0].grad == x.grad and order[-2].grad == y.args[0].grad  # grads copied
        restored.backward()  # leaves accumulate, as on the original
        assert order[0].grad == 2 * x.grad and order[-2].grad == y.args[0].grad
    assert sys.getrecursionlimit() <= 10_000


# -- no silent graph loss --------------------------------------------------------------------


def test_math_functions_name_the_autograd_function_and_numpy_object_arrays_still_work() -> None:
    x = Value(0.5)
    for f in (math.tanh, math.exp, math.log, math.sqrt, math.sin, math.cos):
        with pytest.raises(TypeError, match=f"autograd.{f.__name__}\\(v\\)"):
            f(x)
    arr = np.array([Value(0.5), Value(-1.0)], dtype=object)
    out = np.tanh(arr)  # numpy calls the method of the same name
    assert [v.data for v in out] == [math.tanh(0.5), math.tanh(-1.0)]
    assert f"{Value(1 / 3):.4f}" == "0.3333" and f"{Value(2.0):>5}" == "  2.0"
