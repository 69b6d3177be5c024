"""Tests for `autograd/value.py`: constructing Values, operators, comparisons, identity, and
numpy object arrays of Values."""

from __future__ import annotations

import gc
import math
from typing import Any

import numpy as np
import pytest

import autograd
from autograd import Value

# ---------------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (3, 3.0),
        (-2.5, -2.5),
        (np.float64(2.5), 2.5),
        (np.int64(7), 7.0),
        (np.float32(0.5), 0.5),
        (np.int8(-3), -3.0),
        (math.inf, math.inf),
        (0, 0.0),
    ],
)
def test_data_is_stored_as_python_float(data: Any, want: float) -> None:
    v = Value(data)
    assert type(v.data) is float
    assert v.data == want
    assert type(v.grad) is float and v.grad == 0.0
    assert v.is_leaf and v.op is None and v.inputs == () and v.args == ()


def test_nan_is_accepted_as_data() -> None:
    assert math.isnan(Value(math.nan).data)


@pytest.mark.parametrize(
    ("data", "type_name"),
    [
        ("1", "str"),
        (None, "NoneType"),
        (Value(1.0), "Value"),
        (True, "bool"),
        (False, "bool"),
        (np.bool_(True), "bool"),
        (1j, "complex"),
        (np.complex128(1.0), "complex"),
        ([1], "list"),
        ((1.0,), "tuple"),
        (np.array([1.0]), "ndarray"),
        ({1.0}, "set"),
    ],
)
def test_bad_data_raises_type_error_naming_the_type(data: Any, type_name: str) -> None:
    with pytest.raises(TypeError, match=type_name):
        Value(data)


def test_label_and_repr() -> None:
    assert repr(Value(3)) == "Value(data=3.0, grad=0.0)"
    x = Value(2.0, label="x")
    assert x.label == "x"
    assert repr(x) == "Value(data=2.0, grad=0.0, label='x')"
    y = x * 3
    y.backward()
    assert repr(x) == "Value(data=2.0, grad=3.0, label='x')"
    assert y.label == ""


def test_label_is_a_str_set_when_made_or_later() -> None:
    x = Value(1.0)
    assert x.label == ""
    x.label = "x"
    assert x.label == "x" and repr(x) == "Value(data=1.0, grad=0.0, label='x')"
    assert x.detach().label == "x"
    with pytest.raises(TypeError, match="label must be a str, got int: 3"):
        Value(1.0, label=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got int: 0"):
        Value(1.0, label=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got NoneType"):
        x.label = None  # type: ignore[assignment]
    assert x.label == "x"  # a rejected label changes nothing


def test_item_gives_the_float_and_implicit_conversion_raises_with_the_function_to_use() -> None:
    v = Value(2.5)
    assert v.item() == 2.5 and type(v.item()) is float
    # math.* would return a float with no graph behind it (a gradient silently 0): the error
    # names the autograd function instead. float(v) is the same conversion, so it raises too.
    for call, hint in (
        (math.tanh, "tanh"),
        (math.exp, "exp"),
        (math.sqrt, "sqrt"),
        (float, "item"),
    ):
        with pytest.raises(TypeError, match=rf"{hint}\(") as info:
            call(v)
        assert "item()" in str(info.value), call
    assert f"{v:.3f}" == "2.500" and f"{v:>6}" == "   2.5" and f"{v}" == repr(v)


# ---------------------------------------------------------------------------------------
# Comparisons, hashing, identity
# ---------------------------------------------------------------------------------------


def test_comparisons_return_plain_bool_on_data() -> None:
    a, b = Value(2.0), Value(3.0)
    results = [a < b, a <= b, a > b, a >= b, a < 3, 3 > a, a >= 2, 2.0 <= a, b > np.float64(1)]
    assert results == [True, True, False, False, True, True, True, True, True]
    assert all(type(r) is bool for r in results)
    assert sorted([b, a]) == [a, b]
    assert max(a, b) is b


def test_comparisons_record_nothing() -> None:
    a, b = Value(2.0), Value(3.0)
    _ = a < b, a > 1.0
    assert a.inputs == () and b.inputs == () and a.grad == 0.0
    c = a * b
    c.backward()
    assert autograd.topological_order(c) == [a, b, c]
    assert (a.grad, b.grad) == (3.0, 2.0)


def test_comparison_with_a_non_number_raises() -> None:
    with pytest.raises(TypeError):
        _ = Value(1.0) < "a"
    with pytest.raises(TypeError):
        _ = Value(1.0) < None


def test_identity_equality_and_hashing() -> None:
    a, b = Value(1.0), Value(1.0)
    assert a == a and a != b and not (a == b)
    assert len({a, b}) == 2
    assert hash(a) == hash(a)
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    assert (Value(1.0) == 1.0) is False  # == is identity, never elementwise on data


# ---------------------------------------------------------------------------------------
# Operators with numbers on either side
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "x0", "want_data", "want_grad"),
    [
        (lambda x: x + 2, 3.0, 5.0, 1.0),
        (lambda x: 2 + x, 3.0, 5.0, 1.0),
        (lambda x: x - 2, 3.0, 1.0, 1.0),
        (lambda x: 2 - x, 3.0, -1.0, -1.0),
        (lambda x: x * 2, 3.0, 6.0, 2.0),
        (lambda x: 2 * x, 3.0, 6.0, 2.0),
        (lambda x: x / 2, 3.0, 1.5, 0.5),
        (lambda x: 3 / x, 2.0, 1.5, -0.75),
        (lambda x: x**2, 3.0, 9.0, 6.0),
        (lambda x: x**2.0, 3.0, 9.0, 6.0),
        (lambda x: x ** np.float64(2.0), 3.0, 9.0, 6.0),
        (lambda x: x ** Value(2.0), 3.0, 9.0, 6.0),
        (lambda x: 2**x, 3.0, 8.0, 8.0 * math.log(2.0)),
        (lambda x: Value(2.0) ** x, 3.0, 8.0, 8.0 * math.log(2.0)),
        (lambda x: -x, 3.0, -3.0, -1.0),
        (lambda x: +x, 3.0, 3.0, 1.0),
        (lambda x: abs(x), -3.0, 3.0, -1.0),
        (lambda x: np.float64(2.0) * x, 3.0, 6.0, 2.0),
        (lambda x: x * np.int64(2), 3.0, 6.0, 2.0),
    ],
)
def test_operators_with_numbers_on_either_side(
    f: Any, x0: float, want_data: float, want_grad: float
) -> None:
    x = Value(x0)
    y = f(x)
    assert isinstance(y, Value)
    y.backward()
    assert type(y.data) is float and type(x.grad) is float
    assert math.isclose(y.data, want_data, rel_tol=1e-15)
    assert math.isclose(x.grad, want_grad, rel_tol=1e-15)


def test_plain_numbers_are_arguments_not_nodes() -> None:
    x = Value(3.0)
    y = x * 2.0
    assert y.inputs == (x,) and y.args == (x, 2.0)
    assert y.local_grads == (2.0, None)  # one per argument; a number's is never computed
    z = 2.0 - x
    assert z.args == (2.0, x) and z.local_grads == (None, -1.0)


def test_value_exponent_on_both_sides() -> None:
    a, b = Value(2.0), Value(3.0)
    c = a**b
    c.backward()
    assert c.data == 8.0 and a.grad == 12.0
    assert math.isclose(b.grad, 5.545177444479562, rel_tol=1e-12)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x * "a",
        lambda x: "a" * x,
        lambda x: x + "1",
        lambda x: x + None,
        lambda x: x * True,
        lambda x: True + x,
        lambda x: x ** "2",
        lambda x: x * [1.0],
        lambda x: x / 1j,
        lambda x: x.maximum("a"),  # a method used to return NotImplemented here
        lambda x: x.minimum(None),
        lambda x: x.leaky_relu(None),
    ],
)
def test_operator_with_a_non_number_raises_type_error(f: Any) -> None:
    x = Value(2.0)
    with pytest.raises(TypeError):
        f(x)
    assert x.inputs == () and x.grad == 0.0


def test_type_error_message_names_the_operand_type() -> None:
    with pytest.raises(TypeError, match="str"):
        Value(2.0).maximum("a")
    with pytest.raises(TypeError, match="NoneType"):
        autograd.minimum(Value(2.0), None)
    with pytest.raises(TypeError, match="str"):
        autograd.sum([Value(1.0), "a"])


def _count_values() -> int:
    gc.collect()
    # type() rather than isinstance(): no __class__ lookups on foreign proxy objects.
    return sum(type(o) is Value for o in gc.get_objects())


@pytest.mark.parametrize(
    "fail",
    [
        lambda y: y.log(),
        lambda y: y.sqrt(),
        lambda y: y / 0,
        lambda y: 1.0 / (y - y.data),
        lambda y: y**0.5,
        lambda y: (y * 1e300) * 1e300,
        lambda y: (-y * 800).exp(),
        lambda y: y * "a",
    ],
)
def test_failing_op_leaves_no_half_built_node(fail: Any) -> None:
    x = Value(-2.0)
    y = x * 3.0  # -6.0: outside the domain of log, sqrt and a fractional power
    w = y * 0.5  # a live node, so a partial failure of `fail` could not hide
    before = (y.op, y.args, y.inputs, y.local_grads, y.grad, x.grad)
    # The failing expression may build valid intermediate nodes first (e.g. `-y`); those
    # become garbage once it raises, and nothing else may be left behind.
    n_before = _count_values()
    with pytest.raises((ValueError, ZeroDivisionError, OverflowError, TypeError)):
        fail(y)
    assert _count_values() == n_before
    assert (y.op, y.args, y.inputs, y.local_grads, y.grad, x.grad) == before
    # ... and the graph still works.
    w.backward()
    assert x.grad == 1.5


# ---------------------------------------------------------------------------------------
# numpy object arrays of Values
# ---------------------------------------------------------------------------------------


def _values(a: np.ndarray) -> np.ndarray:
    return np.vectorize(Value, otypes=[object])(a)


def _data(a: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: v.data, otypes=[float])(a)


def _grads(a: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: v.grad, otypes=[float])(a)


def test_weight_matrix_times_vector_and_its_gradients() -> None:
    w0 = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])
    x0 = np.array([2.0, -1.0])
    b0 = np.array([0.1, 0.2, 0.3])
    W, x, b = _values(w0), _values(x0), _values(b0)
    y = W @ x + b  # shape (3,), object array of Values
    assert y.shape == (3,) and all(isinstance(v, Value) for v in y)
    np.testing.assert_allclose(_data(y), w0 @ x0 + b0, rtol=1e-15)
    h = np.tanh(y)
    loss = (h * h).sum()
    assert isinstance(loss, Value)
    loss.backward()
    # Reference by hand: dL/dy = 2 tanh(y) (1 - tanh(y)^2); dW = dy x^T, dx = W^T dy, db = dy.
    t = np.tanh(w0 @ x0 + b0)
    dy = 2 * t * (1 - t**2)
    np.testing.assert_allclose(_grads(W), np.outer(dy, x0), rtol=1e-12)
    np.testing.assert_allclose(_grads(x), w0.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(_grads(b), dy, rtol=1e-12)


def test_numpy_elementwise_functions_and_arithmetic_with_floats() -> None:
    a0 = np.array([0.5, -1.0, 2.0])
    a = _values(a0)
    np.testing.assert_allclose(_data(np.exp(a)), np.exp(a0), rtol=1e-15)
    np.testing.assert_allclose(_data(np.tanh(a)), np.tanh(a0), rtol=1e-15)
    np.testing.assert_allclose(_data(a * 2.0 + 1.0), a0 * 2.0 + 1.0)
    np.testing.assert_allclose(_data(1.0 - a), 1.0 - a0)
    np.testing.assert_allclose(_data(a / 4.0), a0 / 4.0)
    np.testing.assert_allclose(_data(3.0 / a), 3.0 / a0)
    np.testing.assert_allclose(_data(a * np.array([1.0, 2.0, 3.0])), a0 * [1.0, 2.0, 3.0])
    s = a.sum()
    assert isinstance(s, Value) and s.data == 1.5
    s.backward()
    np.testing.assert_array_equal(_grads(a), [1.0, 1.0, 1.0])


def test_value_times_array_broadcasts() -> None:
    x = Value(2.0)
    arr = np.array([1.0, 2.0, 3.0])
    out = x * arr
    assert out.dtype == object and out.shape == (3,)
    np.testing.assert_array_equal(_data(out), [2.0, 4.0, 6.0])
    out.sum().backward()
    assert x.grad == 6.0


# ---------------------------------------------------------------------------------------
# Functions on sequences and composites
# ---------------------------------------------------------------------------------------


def test_sum_and_mean_are_one_node() -> None:
    xs = [Value(1.0), Value(2.0), 3.0, Value(6.0)]
    s = autograd.sum(xs)
    assert s.op is autograd.OPS["sum"] and s.data == 12.0 and len(s.inputs) == 3
    m = autograd.mean(xs)
    assert m.data == 3.0
    m.backward()
    assert [x.grad for x in xs if isinstance(x, Value)] == [0.25, 0.25, 0.25]


@pytest.mark.parametrize("f", [autograd.sum, autograd.mean, autograd.logsumexp, autograd.softmax])
def test_empty_sequence_raises_value_error(f: Any) -> None:
    with pytest.raises(ValueError, match="empty"):
        f([])


def test_softmax_values_and_gradients() -> None:
    x0 = [1.0, -2.0, 0.5]
    xs = [Value(v) for v in x0]
    p = autograd.softmax(xs)
    e = [math.exp(v) for v in x0]
    want = [v / math.fsum(e) for v in e]
    for got, w in zip(p, want):
        assert math.isclose(got.data, w, rel_tol=1e-14)
    assert math.isclose(math.fsum(q.data for q in p), 1.0, rel_tol=1e-15)
    p[0].backward()
    # d p_0 / d x_j = p_0 (delta_0j - p_j)
    for j, x in enumerate(xs):
        assert math.isclose(x.grad, want[0] * ((j == 0) - want[j]), rel_tol=1e-12)


def test_softmax_of_large_inputs_does_not_overflow() -> None:
    xs = [Value(1000.0), Value(0.0), Value(-1000.0)]
    p = autograd.softmax(xs)
    assert [q.data for q in p] == [1.0, math.exp(-1000.0), 0.0]
    p[0].backward()
    assert [x.grad for x in xs] == [0.0, 0.0, 0.0]


def test_linear_equals_the_chain_it_replaces() -> None:
    w0, x0, b0 = [0.5, -1.5, 2.0], [3.0, 0.25, -1.0], 0.75
    ws, xs, b = [Value(v) for v in w0], [Value(v) for v in x0], Value(b0)
    out = autograd.linear(ws, xs, b)
    assert len(autograd.topological_order(out)) == 8  # one node over seven leaves
    out.backward()
    ws2, xs2, b2 = [Value(v) for v in w0], [Value(v) for v in x0], Value(b0)
    chain = b2 + ws2[0] * xs2[0] + ws2[1] * xs2[1] + ws2[2] * xs2[2]
    chain.backward()
    assert out.data == chain.data
    assert [v.grad for v in [*ws, *xs, b]] == [v.grad for v in [*ws2, *xs2, b2]]
    with pytest.raises(ValueError, match="3 weights but 2 inputs"):
        autograd.linear(ws, xs[:2])


def test_two_argument_functions_on_numbers_and_values() -> None:
    assert autograd.maximum(2.0, 3) == 3.0 and type(autograd.maximum(2, 3)) is float
    m = autograd.maximum(2.0, Value(1.0))
    assert isinstance(m, Value) and m.data == 2.0
    assert autograd.leaky_relu(-2.0) == -0.02
    assert math.isclose(autograd.elu(-1.0, 2.0), 2.0 * math.expm1(-1.0))
    x = Value(-1.0)
    y = autograd.leaky_relu(x, 0.2)
    y.backward()
    assert y.data == -0.2 and x.grad == 0.2


def test_huge_integer_raises_overflow_naming_the_op():
    with pytest.raises(OverflowError, match=r"^Value: an integer of 401 digits is too large"):
        Value(10**400)
    with pytest.raises(OverflowError, match=r"^mul: an integer of 401 digits is too large"):
        Value(1.0) * 10**400


def test_overflow_message_of_an_n_ary_op_stays_short():
    """An n-ary op (here a 40-input weighted sum) names a few inputs, not all of them."""
    from autograd import linear

    weights = [Value(1e300)] * 20
    with pytest.raises(OverflowError) as info:
        linear(weights, [1e10] * 20)
    message = str(info.value)
    assert message.startswith("linear: result inf is not finite for finite input(s) 0.0, 1e+300")
    assert "(41 inputs)" in message
    assert len(message) < 200


# -- pickling -------------------------------------------------------------------------------


def _graph() -> tuple[Value, Value, Value]:
    a = Value(0.7, label="a")
    b = Value(-1.3, label="b")
    # Every kind of node: unary, binary Value-Value, number first / second, n-ary.
    out = (
        autograd.linear([a, b], [b, 2.0], 0.5).tanh() * a
        - 1.0 / b
        + autograd.logsumexp([a, b, a * b])
        + (2.0 - a) ** 2
        + autograd.sum([a, b, 3.0])
    )
    return out, a, b


def test_a_value_graph_pickles_and_backward_works_after_unpickling():
    import pickle

    out, a, b = _graph()
    out.backward()
    expected = (out.data, a.grad, b.grad)
    restored = pickle.loads(pickle.dumps((out, a, b)))
    out2, a2, b2 = restored
    assert out2.data == expected[0]
    assert (a2.label, b2.label, out2.label) == ("a", "b", "")
    assert (out2.op.name, out2.op is out.op) == (out.op.name, True)  # the table's own Op
    assert [x.data if isinstance(x, Value) else x for x in out2.args] == [
        x.data if isinstance(x, Value) else x for x in out.args
    ]
    # Reset and differentiate the copy: the same gradients, and the original is untouched.
    for node in autograd.topological_order(out2):
        node.grad = 0.0
    out2.backward()
    assert (a2.grad, b2.grad) == expected[1:]
    assert (a.grad, b.grad) == expected[1:]
    # Nodes built from the copies after unpickling come after them in the order.
    more = out2 * a2
    a2.grad = b2.grad = 0.0
    more.backward()
    assert a2.grad == pytest.approx(out2.data + a2.data * expected[1], rel=1e-12)
    assert autograd.topological_order(more)[-1] is more


def test_every_op_pickles_by_name():
    import pickle

    for name, op in autograd.OPS.items():
        assert pickle.loads(pickle.dumps(op)) is op, name


def test_unpickled_nodes_with_a_number_keep_their_args():
    import pickle

    a = Value(3.0)
    for node, args in ((2.0 - a, (2.0, 3.0)), (a * 4.0, (3.0, 4.0)), (a**2.0, (3.0, 2.0))):
        copy = pickle.loads(pickle.dumps(node))
        assert tuple(x.data if isinstance(x, Value) else x for x in copy.args) == args
