"""Second and third derivatives through `create_graph=True`, against 50-digit references.

Every primitive in the derivative table has a row in SECOND_ORDER_CASES: its mpmath twin
and points inside its domain and away from its kinks. The full Hessian over all of the op's
arguments (exponents, slopes and alphas included) is compared with mpmath's `diff` at 50
digits. An op without a row fails `test_every_op_has_a_second_order_case`.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import autograd
from autograd import OPS, Value, apply
from autograd.func import derivative, grad, hessian

mp.mp.dps = 50
REL = 1e-12
ABS = 1e-15


def _mp_relu(x):
    return x if x > 0 else mp.mpf(0)


# op name -> (mpmath function of the same args, points to check at)
SECOND_ORDER_CASES = {
    "add": (lambda a, b: a + b, [(0.3, -1.2)]),
    "sub": (lambda a, b: a - b, [(0.3, -1.2)]),
    "mul": (lambda a, b: a * b, [(0.3, -1.2), (2.0, 2.0)]),
    "div": (lambda a, b: a / b, [(0.3, -1.2), (-2.5, 0.7)]),
    "neg": (lambda a: -a, [(0.3,)]),
    "pow": (lambda a, b: a**b, [(1.7, 2.5), (0.4, -1.3), (2.0, 0.0), (3.0, 3.0)]),
    "abs": (mp.fabs, [(-0.7,), (2.0,)]),
    "maximum": (lambda a, b: max(a, b), [(0.3, -1.2), (-2.0, 1.0)]),
    "minimum": (lambda a, b: min(a, b), [(0.3, -1.2), (-2.0, 1.0)]),
    "exp": (mp.exp, [(0.3,), (-5.0,), (20.0,)]),
    "log": (mp.log, [(0.3,), (7.0,)]),
    "sqrt": (mp.sqrt, [(0.3,), (7.0,)]),
    "tanh": (mp.tanh, [(0.3,), (-1.5,), (0.0,), (20.0,), (-20.0,)]),
    "sigmoid": (lambda x: 1 / (1 + mp.exp(-x)), [(0.3,), (-30.0,), (30.0,)]),
    "relu": (_mp_relu, [(0.3,), (-1.2,)]),
    "leaky_relu": (lambda x, s: x if x > 0 else x * s, [(0.3, 0.01), (-1.2, 0.2)]),
    "elu": (lambda x, a: x if x > 0 else a * (mp.exp(x) - 1), [(0.3, 1.0), (-1.2, 0.5)]),
    "ndtr": (mp.ncdf, [(0.3,), (-4.0,), (4.0,)]),
    "gelu": (lambda x: x * mp.ncdf(x), [(0.3,), (-2.5,), (3.0,)]),
    "softplus": (lambda x: mp.log(1 + mp.exp(x)), [(0.3,), (-20.0,), (20.0,)]),
    "sin": (mp.sin, [(0.3,), (2.5,)]),
    "cos": (mp.cos, [(0.3,), (2.5,)]),
    "sum": (lambda *xs: mp.fsum(xs), [(0.3, -1.2, 2.0)]),
    "logsumexp": (
        lambda *xs: mp.log(mp.fsum(mp.exp(x) for x in xs)),
        [(0.3, -1.2, 2.0), (1000.0, 999.0), (0.5,)],
    ),
    "linear": (
        lambda b, w1, w2, x1, x2: b + w1 * x1 + w2 * x2,
        [(0.1, 0.3, -1.2, 2.0, 0.5)],
    ),
}


def _mp_hessian(fn, point):
    n = len(point)
    h = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            orders = [0] * n
            orders[i] += 1
            orders[j] += 1
            h[i, j] = float(mp.diff(fn, [mp.mpf(p) for p in point], orders))
    return h


def test_every_op_has_a_second_order_case():
    assert set(SECOND_ORDER_CASES) == set(OPS), set(OPS) ^ set(SECOND_ORDER_CASES)


@pytest.mark.parametrize(
    "name, point",
    [(name, p) for name, (_, points) in SECOND_ORDER_CASES.items() for p in points],
)
def test_second_derivatives_of_every_primitive(name, point):
    op = OPS[name]
    ours = hessian(lambda *xs: apply(op, *xs))(*point)
    reference = _mp_hessian(SECOND_ORDER_CASES[name][0], point)
    for (i, j), want in np.ndenumerate(reference):
        assert math.isclose(ours[i, j], want, rel_tol=REL, abs_tol=ABS), (i, j, ours, reference)


UNARY = [name for name, (_, points) in SECOND_ORDER_CASES.items() if len(points[0]) == 1]


@pytest.mark.parametrize(
    "name, x",
    [(name, p[0]) for name in UNARY for p in SECOND_ORDER_CASES[name][1] if name != "logsumexp"],
)
def test_third_derivatives_of_every_unary_primitive(name, x):
    op = OPS[name]
    ours = derivative(lambda v: apply(op, v), order=3)(x)
    want = float(mp.diff(SECOND_ORDER_CASES[name][0], mp.mpf(x), 3))
    assert math.isclose(ours, want, rel_tol=REL, abs_tol=ABS), (ours, want)


def test_grad_of_grad_of_tanh():
    t = math.tanh(0.3)
    assert math.isclose(grad(grad(autograd.tanh))(0.3), -2 * t * (1 - t**2), rel_tol=1e-12)


@pytest.mark.parametrize("x", [0.0, 0.3, -1.1, 4.0])
def test_third_derivative_of_tanh(x):
    # tanh''' = -2 sech^2 (sech^2 - 2 tanh^2); -2 at 0 (this was 0 when the rule used abs).
    t, s2 = math.tanh(x), 1 / math.cosh(x) ** 2
    want = -2 * s2 * (s2 - 2 * t * t)
    assert math.isclose(derivative(autograd.tanh, 3)(x), want, rel_tol=1e-12, abs_tol=1e-15)


def test_fourth_and_fifth_derivatives():
    assert math.isclose(derivative(autograd.sin, 4)(0.7), math.sin(0.7), rel_tol=1e-12)
    assert math.isclose(derivative(autograd.exp, 5)(1.3), math.exp(1.3), rel_tol=1e-12)
    x = 0.9
    want = float(mp.diff(lambda v: mp.log(v) * mp.sin(v), mp.mpf(x), 4))
    got = derivative(lambda v: autograd.log(v) * autograd.sin(v), 4)(x)
    assert math.isclose(got, want, rel_tol=1e-11)


def test_hessian_of_x2y_plus_sin_xy():
    x, y = 0.7, -1.3
    h = hessian(lambda x, y: x**2 * y + autograd.sin(x * y))(x, y)
    s, c = math.sin(x * y), math.cos(x * y)
    want = np.array(
        [
            [2 * y - y * y * s, 2 * x + c - x * y * s],
            [2 * x + c - x * y * s, -x * x * s],
        ]
    )
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-15)
    assert h.dtype == np.float64


def test_newton_root_finding_converges_quadratically():
    # Solve cos(x) = x: Newton's step x - g(x) / g'(x) with g' from grad.
    g = lambda x: autograd.cos(x) - x  # noqa: E731
    dg = grad(g)
    x, errors = 1.0, []
    for _ in range(6):
        x = x - g(x) / dg(x)
        errors.append(abs(x - 0.7390851332151607))
    assert errors[-1] < 1e-15
    # Quadratic convergence: each error is about the square of the one before.
    assert errors[2] < 10 * errors[1] ** 2


def test_newton_minimisation_with_the_hessian():
    # Rosenbrock's function from the classic start (-1.2, 1): pure Newton reaches (1, 1).
    f = lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2  # noqa: E731
    df, hf = grad(f, argnums=(0, 1)), hessian(f)
    p = np.array([-1.2, 1.0])
    for _ in range(10):
        p = p - np.linalg.solve(hf(*p), np.array(df(*p)))
    np.testing.assert_allclose(p, [1.0, 1.0], rtol=0, atol=1e-12)


def test_create_graph_at_singular_points_gives_ieee_inf():
    # sqrt and x**0.5 at 0: the first derivative is inf with create_graph=True as without.
    for f in (lambda v: v.sqrt(), lambda v: v**0.5):
        x = Value(0.0)
        (g,) = autograd.grad(f(x), x, create_graph=True)
        assert isinstance(g, Value) and g.data == math.inf


def test_mixed_derivative_of_pow_at_zero_exponent():
    # d2/(da db) a**b = a**(b-1) (1 + b log a) = 1/a at b = 0.
    h = hessian(lambda a, b: a**b)(2.0, 0.0)
    assert math.isclose(h[0, 1], 0.5, rel_tol=1e-12) and math.isclose(h[1, 0], 0.5, rel_tol=1e-12)
    # A plain-number exponent 0 keeps PyTorch's convention d/dx x**0 = 0, even at x = 0.
    assert grad(lambda a: a**0.0)(0.0) == 0.0 and grad(lambda a: a**0.0)(-2.0) == 0.0
