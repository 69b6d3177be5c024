"""Every case of `cases/engine.md` (E01-E32): inputs that broke other engines, with the
right answers. Tolerance as the cases README states: `math.isclose(got, want, rel_tol=1e-12,
abs_tol=1e-15)`; inf and nan compare exactly."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import autograd
from autograd import Value, logsumexp, maximum, minimum, softmax
from autograd import sum as vsum


def close(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)


# Accumulation and order ----


def test_e01_leaf_used_twice() -> None:
    a = Value(3.0)
    b = a + a
    b.backward()
    assert b.data == 6.0 and a.grad == 2.0
    a = Value(-2.0)
    c = Value(3.0)
    f = (a * c) * (a + c)
    f.backward()
    assert f.data == -6.0 and a.grad == -3.0 and c.grad == -8.0


def test_e02_same_node_as_both_operands() -> None:
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0
    b = Value(3.0)
    (b * b * b).backward()
    assert b.grad == 27.0


def test_e03_diamond_needs_reverse_topological_order() -> None:
    a = Value(2.0)
    b = Value(3.0)
    c = a + b
    d = a * b
    e = c + d
    f = c * d
    y = e + f
    y.backward()
    assert y.data == 41.0 and a.grad == 25.0 and b.grad == 19.0


def test_e04_reused_non_leaf() -> None:
    a = Value(1.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0
    x = Value(3.0)
    s = x * x
    t = s * s + s
    t.backward()
    assert t.data == 90.0 and x.grad == 114.0


def test_e05_subtraction_signs() -> None:
    a = Value(5.0)
    b = Value(3.0)
    (a - b).backward()
    assert a.grad == 1.0 and b.grad == -1.0
    p = Value(2.0)
    ((p - p) * 1.0).backward()
    assert p.grad == 0.0


# Repeated backward ----


def test_e06_leaves_accumulate_intermediates_hold_latest_pass() -> None:
    a = Value(3.0)
    b = Value(2.0)
    c = a + b
    d = Value(1.0)
    e = c * d
    e.backward()
    assert (a.grad, b.grad, d.grad) == (1.0, 1.0, 5.0)
    e.backward()
    assert (a.grad, b.grad, d.grad) == (2.0, 2.0, 10.0)
    assert c.grad == 1.0
    x = Value(3.0)
    y = x * x * x
    y.backward()
    g1 = x.grad
    x.zero_grad()
    y.backward()
    g2 = x.grad
    assert g1 == g2 == 27.0


# Depth ----


def test_e07_deep_chain_without_recursion_error() -> None:
    limit = sys.getrecursionlimit()
    x = Value(1.0)
    y = x
    for _ in range(100000):
        y = y + 1.0
    y.backward()
    assert sys.getrecursionlimit() == limit
    assert y.data == 100001.0 and x.grad == 1.0


# Identity and comparison ----


def test_e08_identity_hash_and_comparison() -> None:
    assert len({Value(1.0), Value(1.0)}) == 2
    hash(Value(1.0))
    result = Value(2.0) < Value(3.0)
    assert result is True
    u = Value(2.0)
    v = Value(3.0)
    assert (u < v) is True and u.inputs == () and v.inputs == ()
    (u * v).backward()
    assert u.grad == 3.0 and v.grad == 2.0


# Kinks and NaN ----


@pytest.mark.parametrize(
    ("x0", "want_data", "want_grad"),
    [
        (0.0, 0.0, 0.0),
        (-0.0, 0.0, 0.0),
        (1e-300, 1e-300, 1.0),
        (-1e-300, 0.0, 0.0),
        (2.0, 2.0, 1.0),
    ],
)
def test_e09_relu(x0: float, want_data: float, want_grad: float) -> None:
    x = Value(x0)
    y = x.relu()
    y.backward()
    assert type(y.data) is float
    assert y.data == want_data and x.grad == want_grad


def test_e10_relu_never_hides_nan() -> None:
    x = Value(float("nan"))
    y = x.relu()
    assert math.isnan(y.data)


def test_e11_maximum_tie_splits_evenly() -> None:
    x = Value(1.0)
    y = Value(1.0)
    m = maximum(x, y)
    m.backward()
    assert m.data == 1.0 and x.grad == 0.5 and y.grad == 0.5


@pytest.mark.parametrize(
    ("x0", "want_data", "want_grad"), [(0.0, 0.0, 0.0), (-3.0, 3.0, -1.0), (2.0, 2.0, 1.0)]
)
def test_e12_abs(x0: float, want_data: float, want_grad: float) -> None:
    x = Value(x0)
    y = abs(x)
    y.backward()
    assert y.data == want_data and x.grad == want_grad
    assert not math.isnan(x.grad)


# Powers ----


@pytest.mark.parametrize("f", [lambda x: x**0.5, lambda x: x.sqrt()])
def test_e13_sqrt_at_zero_has_infinite_derivative(f) -> None:  # type: ignore[no-untyped-def]
    x = Value(0.0)
    y = f(x)
    y.backward()
    assert y.data == 0.0 and x.grad == math.inf


def test_e14_zero_to_the_zero_and_first_power() -> None:
    x = Value(0.0)
    y = x**0
    y.backward()
    assert y.data == 1.0 and x.grad == 0.0
    u = Value(0.0)
    v = u**1
    v.backward()
    assert v.data == 0.0 and u.grad == 1.0


def test_e15_value_exponent() -> None:
    a = Value(2.0)
    b = Value(3.0)
    c = a**b
    c.backward()
    assert c.data == 8.0 and a.grad == 12.0
    assert close(b.grad, 5.545177444479562)


def test_e16_negative_base() -> None:
    x = Value(-2.0)
    y = x**3
    y.backward()
    assert y.data == -8.0 and x.grad == 12.0
    with pytest.raises(ValueError, match=r"pow.*negative base.*-8\.0"):
        Value(-8.0) ** (1 / 3)


# Domain errors and overflow ----


@pytest.mark.parametrize(
    "f", [lambda: Value(1.0) / Value(0.0), lambda: Value(1.0) / 0, lambda: 1 / Value(0.0)]
)
def test_e17_division_by_zero(f) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ZeroDivisionError, match="division") as info:
        f()
    assert "negative power" not in str(info.value)


def test_e18_log() -> None:
    x = Value(2.0)
    y = x.log()
    y.backward()
    assert close(y.data, 0.6931471805599453) and close(x.grad, 0.5)
    with pytest.raises(ValueError, match=r"log.*0\.0"):
        Value(0.0).log()
    with pytest.raises(ValueError, match=r"log.*-1\.0"):
        Value(-1.0).log()


def test_e19_exp_and_its_overflow() -> None:
    x = Value(2.0)
    y = x.exp()
    y.backward()
    assert close(y.data, 7.38905609893065) and close(x.grad, 7.38905609893065)
    x = Value(709.0)
    y = x.exp()
    y.backward()
    assert close(y.data, 8.218407461554972e307) and close(x.grad, 8.218407461554972e307)
    with pytest.raises(OverflowError, match=r"exp.*710\.0"):
        Value(710.0).exp()


# Numerics ----


@pytest.mark.parametrize(
    ("x0", "want_data", "want_grad"),
    [(0.5, 0.46211715726000974, 0.7864477329659274), (1000.0, 1.0, 0.0), (-1000.0, -1.0, 0.0)],
)
def test_e20_tanh(x0: float, want_data: float, want_grad: float) -> None:
    x = Value(x0)
    y = x.tanh()
    y.backward()
    assert close(y.data, want_data) and close(x.grad, want_grad)
    assert not math.isnan(x.grad)


def test_e21_tanh_near_saturation_keeps_precision() -> None:
    x = Value(20.0)
    x.tanh().backward()
    assert math.isclose(x.grad, 1.6993417021166355e-17, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("x0", "want_data", "want_grad"),
    [
        (-1000.0, 0.0, 0.0),
        (-30.0, 9.357622968839299e-14, 9.357622968838423e-14),
        (0.0, 0.5, 0.25),
        (2.0, 0.8807970779778824, 0.10499358540350652),
        (1000.0, 1.0, 0.0),
    ],
)
def test_e22_sigmoid(x0: float, want_data: float, want_grad: float) -> None:
    x = Value(x0)
    y = x.sigmoid()
    y.backward()
    assert close(y.data, want_data) and close(x.grad, want_grad)


def test_e23_logsumexp_of_large_inputs() -> None:
    z = [Value(1000.0), Value(1000.0)]
    loss = logsumexp(z)
    loss.backward()
    assert close(loss.data, 1000.6931471805599)
    assert [v.grad for v in z] == [0.5, 0.5]


def test_e23_cross_entropy_of_large_logits() -> None:
    try:
        from nn import cross_entropy
    except ImportError:
        pytest.skip("nn.cross_entropy is not available yet")
    w = [Value(0.0), Value(800.0), Value(-800.0)]
    loss = cross_entropy(w, target=0)
    loss.backward()
    assert close(loss.data, 800.0)
    for got, want in zip([v.grad for v in w], [-1.0, 1.0, 0.0]):
        assert close(got, want)


def test_e24_unused_branch_gets_no_backward() -> None:
    x = Value(0.0)
    dead = x**0.5
    loss = x * 2
    loss.backward()
    assert x.grad == 2.0 and dead.grad == 0.0


# Input types ----


@pytest.mark.parametrize(
    ("data", "name"),
    [(Value(2.0), "Value"), ("1", "str"), (None, "NoneType"), (1j, "complex"), (True, "bool")],
)
def test_e25_bad_data_types(data: object, name: str) -> None:
    with pytest.raises(TypeError, match=name):
        Value(data)  # type: ignore[arg-type]


def test_e25_good_data_types() -> None:
    v = Value(3)
    assert v.data == 3.0 and type(v.data) is float
    w = Value(np.float64(2.5))
    assert w.data == 2.5 and type(w.data) is float


def test_e26_sum_and_reflected_add() -> None:
    xs = [Value(1.0), Value(2.0), Value(3.0)]
    s = vsum(xs)
    s.backward()
    assert s.data == 6.0 and [x.grad for x in xs] == [1.0, 1.0, 1.0]
    r = 3 + Value(2.0)
    assert isinstance(r, Value) and r.data == 5.0


def test_e27_integer_data_divided() -> None:
    a = Value(3)
    b = a / 2
    b.backward()
    assert b.data == 1.5 and a.grad == 0.5
    assert all(type(t) is float for t in (a.data, a.grad, b.data, b.grad))


# Numerics at the edges (second round) ----


@pytest.mark.parametrize("x0", [1e12, 1e16, -1e16, 1e300, 0.0, -3.5])
def test_e28_softmax_exact_at_any_magnitude(x0: float) -> None:
    v = Value(x0)
    p = softmax([v] * 3)
    assert all(math.isclose(q.data, 0.3333333333333333, rel_tol=1e-12) for q in p)
    assert math.fsum(q.data for q in p) == 1.0
    assert [q.data for q in softmax([Value(x0), Value(x0)])] == [0.5, 0.5]


def test_e28_cross_entropy_exact_at_any_magnitude() -> None:
    from nn import cross_entropy

    logits = [Value(1e12), Value(1e12)]
    loss = cross_entropy(logits, target=1)
    assert math.isclose(loss.data, 0.6931471805599453, rel_tol=1e-12)
    loss.backward()
    assert [v.grad for v in logits] == [0.5, -0.5]


def test_e28_logsumexp_rounding_does_not_enter_a_difference() -> None:
    # softmax_1 of [1e16, 1e16 + 2]: the logits differ by exactly 2, so it is sigmoid(2),
    # whatever their size; exp(x - logsumexp(x)) gives 1.0 here (logsumexp rounds by 2).
    s = softmax([Value(1e16), Value(1e16 + 2.0)])
    want = 1.0 / (1.0 + math.exp(-2.0))
    assert math.isclose(s[1].data, want, rel_tol=1e-12)
    assert math.isclose(s[0].data, 1.0 - want, rel_tol=1e-12)


def test_e29_zero_local_derivative_stops_an_infinite_upstream_gradient() -> None:
    # sqrt'(0) is inf, but nothing near x changes the output: the gradient is 0, not NaN.
    for x0, make in (
        (-2.0, lambda x: maximum(x, 0.0)),
        (-2.0, lambda x: x.relu()),
        (2.0, lambda x: minimum(x, 0.0)),
    ):
        x = Value(x0)
        make(x).sqrt().backward()
        assert x.grad == 0.0
        x = Value(x0)
        assert autograd.grad(make(x).sqrt(), [x]) == (0.0,)
        (g,) = autograd.grad(make(x).sqrt(), [x], create_graph=True)
        assert g.data == 0.0


def test_e29_zero_local_derivative_stops_a_nan_upstream_gradient() -> None:
    # d/db (-1)**b does not exist (NaN); b = relu(x) + 2 is flat at x = -2.
    x = Value(-2.0)
    (Value(-1.0) ** (x.relu() + 2.0)).backward()
    assert x.grad == 0.0


def test_e30_binary_cross_entropy_with_logits_at_saturation() -> None:
    from nn.losses import binary_cross_entropy_with_logits

    loss = binary_cross_entropy_with_logits([Value(50.0)], [1.0])
    assert math.isclose(loss.data, 1.9287498479639178e-22, rel_tol=1e-12)
    loss = binary_cross_entropy_with_logits([Value(-50.0)], [0.0])
    assert math.isclose(loss.data, 1.9287498479639178e-22, rel_tol=1e-12)


def test_e31_second_derivative_of_tanh_near_zero() -> None:
    got = autograd.func.derivative(autograd.tanh, 2)(3e-9)
    assert math.isclose(got, -6e-09, rel_tol=1e-12)


def test_e32_create_graph_computes_no_derivative_nobody_asked_for() -> None:
    x = Value(1.0)
    (g,) = autograd.grad(x / 1e-250, [x], create_graph=True)
    assert isinstance(g, Value) and g.data == 1e250
    y = Value(1.0)
    (y / 1e-250).backward()
    assert y.grad == 1e250
