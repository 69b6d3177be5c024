"""Every op of `autograd.OPS` against 50-digit mpmath: values, first and second derivatives.

The README's precision promise: values and derivatives (first and second) within about 1e-12
relative of a 50-digit reference over each op's whole domain, and the same at second order
under `create_graph=True`. Each op below has its public function, its mpmath twin, its first
and second derivatives written out analytically in mpmath (checked against `mpmath.diff` at
ordinary points, so the references are themselves tested), and points over its whole domain: 0
and near it, tiny (1e-20, 3e-9) and subnormal (5e-324, 1e-310) inputs, saturated regions and
huge inputs. At every point:

- the value;
- the first derivatives three ways: `autograd.grad` (floats), `autograd.grad(...,
  create_graph=True)` (Values, the rule evaluated on Values), and with a huge and a tiny
  upstream gradient (`grad_outputs=1e300` and `1e-300`: the result must be that multiple);
- the Hessian twice: `autograd.func.hessian` on floats and on Values (a graph, as a third
  derivative would need).

A point is used only where float64 can hold every reference (a derivative of 1e400, or an
infinite one at a domain edge, has no float to compare against; the edges are tested in
test_ops.py and test_cases_engine.py).

Tolerance: `close` below. Relative 1e-12; where the exact value or an intermediate is
subnormal (below 2.2e-308) float64 has no relative precision left, and an absolute error of
4.9e-320 (1e4 units of 2**-1074) is allowed. A NaN reference (a derivative that does not
exist) wants a NaN. Over the whole domains, a result that is a difference of larger terms
is measured against the terms' size (`SCALES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autograd
from autograd import OPS, Value
from autograd.func import hessian

mp = mpmath.mp
mp.dps = 50

REL = 1e-12
# Absolute slack for results at the bottom of float64: where a result or an intermediate is
# subnormal its relative precision is gone (phi(38) = 1.1e-314 keeps 30 bits, and
# gelu''(38) = (2 - 38**2) phi(38) inherits that). 1e4 units of the smallest subnormal is
# 4.9e-320: a result wrong by its own size is still caught down to 1e-319.
SUBNORMAL_ABS = 1e4 * 2.0**-1074
FLOAT_MAX = mpmath.mpf(np.finfo(np.float64).max)


def close(got: float, want: Any) -> bool:
    """got (a float) within REL of the mpmath reference want, or both NaN."""
    if mpmath.isnan(want):
        return math.isnan(got)
    if math.isnan(got) or math.isinf(got):
        return False
    return abs(mpmath.mpf(got) - want) <= REL * abs(want) + SUBNORMAL_ABS


# -- mpmath twins --------------------------------------------------------------------------


def sigmoid(x: Any) -> Any:
    return 1 / (1 + mp.exp(-x))


def sigmoid_prime(x: Any) -> Any:
    return sigmoid(x) * sigmoid(-x)


def pow_d1(a: Any, b: Any) -> list[Any]:
    da = 0 if b == 0 else b * a ** (b - 1)
    if a > 0:
        db = a**b * mp.log(a)
    elif a == 0 and b >= 0:
        db = mp.mpf(0)  # the limit from a > 0, PyTorch's convention
    else:
        db = mp.nan  # a**b is not defined near a < 0 for a real exponent
    return [da, db]


def pow_d2(a: Any, b: Any) -> list[list[Any]]:
    aa = 0 if b in (0, 1) else b * (b - 1) * a ** (b - 2)
    if a > 0:
        ab = a ** (b - 1) * (1 + b * mp.log(a))
        bb = a**b * mp.log(a) ** 2
    elif a == 0 and b > 1:
        ab = bb = mp.mpf(0)  # limits from a > 0: a**(b-1) (1 + b log a) -> 0
    else:
        ab = bb = mp.nan
    return [[aa, ab], [ab, bb]]


def ncdf(x: Any) -> Any:
    # mpmath's ncdf overflows past |x| ~ 1e150; there it is 0 or 1 to far beyond 50 digits.
    if abs(x) > 1e100:
        return mp.mpf(1 if x > 0 else 0)
    return mp.ncdf(x)


def sigmoid_d2(x: Any) -> Any:
    # s'(x) (1 - 2 s(x)), with 1 - 2 s(x) = -tanh(x / 2): the difference would cancel at
    # 50 digits for |x| < 1e-50.
    return -sigmoid_prime(x) * mp.tanh(x / 2)


def logsumexp(*xs: Any) -> Any:
    # m + log1p(the other terms): log(1 + 1e-40) at 50 digits would keep 10 digits of 1e-40.
    rest = sorted(xs, reverse=True)
    m = rest.pop(0)
    return m + mp.log1p(mp.fsum(mp.exp(x - m) for x in rest))


def softmax(*xs: Any) -> list[Any]:
    m = max(xs)
    total = mp.fsum(mp.exp(x - m) for x in xs)
    return [mp.exp(x - m) / total for x in xs]


def logsumexp_d2(*xs: Any) -> list[list[Any]]:
    # diag(p) - p p^T, with the diagonal as p_i * sum_{j != i} p_j (exact also for p_i ~ 1).
    p = softmax(*xs)
    n = len(xs)
    return [
        [
            p[i] * mp.fsum(p[k] for k in range(n) if k != i) if i == j else -p[i] * p[j]
            for j in range(n)
        ]
        for i in range(n)
    ]


def exact_sum(*xs: Any) -> Any:
    # Exact at 2200 bits (float64 spans 2**1024 to 2**-1074), then rounded to 50 digits:
    # 1 + 1e300 - 1e300 is exactly 1.
    with mp.workprec(2200):
        total = mp.fsum(xs)
    return +total


def zeros(n: int) -> list[list[Any]]:
    return [[mp.mpf(0)] * n for _ in range(n)]


def linear_d2(*args: Any) -> list[list[Any]]:
    # b + w1 x1 + w2 x2: d2/(dw_i dx_i) = 1, every other entry 0.
    h = zeros(5)
    for w, x in ((1, 3), (2, 4)):
        h[w][x] = h[x][w] = mp.mpf(1)
    return h


# -- the table -----------------------------------------------------------------------------

# Unary points: 0, subnormal, tiny, ordinary, saturated, huge; both signs.
MAGNITUDES = [5e-324, 1e-310, 1e-300, 1e-20, 3e-9, 1e-5, 0.5, 1.0, 2.0, 5.0, 20.0, 36.0,
              300.0, 700.0, 1e10, 1e300]  # fmt: skip
UNARY_POINTS = [(0.0,)] + [(s * m,) for m in MAGNITUDES for s in (1.0, -1.0)]


@dataclass
class Spec:
    """One op: the public function, its mpmath twin and derivatives, and points."""

    f: Callable[..., Any]
    ref: Callable[..., Any]
    d1: Callable[..., Sequence[Any]]
    d2: Callable[..., Sequence[Sequence[Any]]]
    points: Sequence[tuple[float, ...]]


def unary(
    f: Callable[[Any], Any],
    ref: Callable[[Any], Any],
    d1: Callable[[Any], Any],
    d2: Callable[[Any], Any],
    domain: Callable[[float], bool] = lambda x: True,
    extra: Sequence[float] = (),
) -> Spec:
    points = [p for p in UNARY_POINTS if domain(p[0])] + [(x,) for x in extra]
    return Spec(f, ref, lambda x: [d1(x)], lambda x: [[d2(x)]], points)


SPECS: dict[str, Spec] = {
    "add": Spec(
        lambda a, b: a + b,
        lambda a, b: a + b,
        lambda a, b: [1, 1],
        lambda a, b: zeros(2),
        [(1.0, 2.0), (1e300, -1e300), (1e-310, 5e-324), (0.1, 0.2), (0.0, -0.0)],
    ),
    "sub": Spec(
        lambda a, b: a - b,
        lambda a, b: a - b,
        lambda a, b: [1, -1],
        lambda a, b: zeros(2),
        [(5.0, 3.0), (1e300, 1e299), (5e-324, 1e-310), (1.0, 1.0 - 2**-52)],
    ),
    "mul": Spec(
        lambda a, b: a * b,
        lambda a, b: a * b,
        lambda a, b: [b, a],
        lambda a, b: [[0, 1], [1, 0]],
        [
            (3.0, -2.0),
            (1e150, 1e150),
            (1e-200, 1e-100),
            (5e-324, 3.0),
            (1e-160, 1e-160),
            (0.0, 5.0),
            (-1e300, 1e-300),
        ],
    ),
    "div": Spec(
        lambda a, b: a / b,
        lambda a, b: a / b,
        lambda a, b: [1 / b, -a / b**2],
        lambda a, b: [[0, -1 / b**2], [-1 / b**2, 2 * a / b**3]],
        [
            (1.0, 3.0),
            (-2.0, 7.0),
            (1.0, 1e-100),
            (1e300, 3.0),
            (1e-300, 1e10),
            (5e-324, 3.0),
            (3.0, 1e150),
            (0.0, 2.0),
        ],
    ),
    "neg": unary(lambda a: -a, lambda a: -a, lambda a: -1, lambda a: 0),
    "pow": Spec(
        lambda a, b: a**b,
        lambda a, b: a**b,
        pow_d1,
        pow_d2,
        [
            (2.0, 0.5),
            (2.0, 3.0),
            (10.0, -300.0),
            (0.5, 1000.0),
            (1e-300, 0.5),
            (1.5, 1e-10),
            (1e-10, 2.0),
            (5e-324, 0.5),
            (3.0, 0.0),
            (1.0 + 2**-40, 1e10),
            (0.0, 2.0),
            (0.0, 3.0),
            # A negative base with an integer exponent: d/db does not exist, nor its derivatives.
            (-2.0, 3.0),
            (-2.0, 2.0),
            (-1.5, -3.0),
            (-1e-100, 2.0),
        ],
    ),
    "abs": unary(abs, abs, lambda x: mpmath.sign(x), lambda x: 0),
    "maximum": Spec(
        autograd.maximum,
        max,
        lambda a, b: [1, 0] if a > b else [0, 1] if a < b else [0.5, 0.5],
        lambda a, b: zeros(2),
        [(1.0, 2.0), (3.0, -1.0), (1.0, 1.0), (5e-324, 0.0), (-1e300, 1e300), (-0.0, 0.0)],
    ),
    "minimum": Spec(
        autograd.minimum,
        min,
        lambda a, b: [1, 0] if a < b else [0, 1] if a > b else [0.5, 0.5],
        lambda a, b: zeros(2),
        [(1.0, 2.0), (3.0, -1.0), (-2.0, -2.0), (5e-324, 0.0), (-1e300, 1e300)],
    ),
    "exp": unary(autograd.exp, mp.exp, mp.exp, mp.exp, lambda x: x <= 709.0, extra=[709.0, -745.0]),
    "log": unary(
        autograd.log,
        mp.log,
        lambda x: 1 / x,
        lambda x: -1 / x**2,
        lambda x: x > 0,
        extra=[1.0 + 2**-40, 1.0 - 2**-53],
    ),
    "sqrt": unary(
        autograd.sqrt,
        mp.sqrt,
        lambda x: 1 / (2 * mp.sqrt(x)),
        lambda x: -1 / (4 * x * mp.sqrt(x)),
        lambda x: x > 0,
    ),
    "tanh": unary(
        autograd.tanh,
        mp.tanh,
        lambda x: mp.sech(x) ** 2,
        lambda x: -2 * mp.tanh(x) * mp.sech(x) ** 2,
        extra=[0.99, 1.01, -0.99, -1.01],  # both sides of the rule's change of form
    ),
    "sigmoid": unary(
        autograd.sigmoid,
        sigmoid,
        sigmoid_prime,
        sigmoid_d2,
        extra=[1.99, 2.01, -1.99, -2.01, -745.0],
    ),
    "relu": unary(
        autograd.relu,
        lambda x: max(x, 0),
        lambda x: 1 if x > 0 else 0,
        lambda x: 0,
    ),
    "leaky_relu": Spec(
        autograd.leaky_relu,
        lambda x, s: x if x > 0 else s * x,
        lambda x, s: [1, 0] if x > 0 else [s, x],
        lambda x, s: zeros(2) if x > 0 else [[0, 1], [1, 0]],
        [(2.0, 0.01), (-3.0, 0.01), (-1e-300, 0.2), (0.0, 0.1), (5e-324, 0.5), (-1e300, 0.5)],
    ),
    "elu": Spec(
        autograd.elu,
        lambda x, a: x if x > 0 else a * mp.expm1(x),
        lambda x, a: [1, 0] if x > 0 else [a * mp.exp(x), mp.expm1(x)],
        lambda x, a: zeros(2) if x > 0 else [[a * mp.exp(x), mp.exp(x)], [mp.exp(x), 0]],
        [
            (2.0, 1.0),
            (-1e-10, 1.0),
            (-700.0, 1.0),
            (-1.5, 0.5),
            (-3e-9, 2.0),
            (-1e-300, 1.0),
            (-5e-324, 1.0),
            (0.0, 0.5),
            (-1e300, 1.5),
            (1e300, 1.0),
        ],
    ),
    "ndtr": unary(autograd.ndtr, ncdf, mp.npdf, lambda x: -x * mp.npdf(x), extra=[-37.0]),
    "gelu": unary(
        autograd.gelu,
        lambda x: x * ncdf(x),
        lambda x: ncdf(x) + x * mp.npdf(x),
        lambda x: (2 - x * x) * mp.npdf(x),
        extra=[-37.0, -10.0, 3.0],
    ),
    "softplus": unary(
        autograd.softplus, lambda x: mp.log1p(mp.exp(x)), sigmoid, sigmoid_prime, extra=[-745.0]
    ),
    "sin": unary(
        autograd.sin, mp.sin, mp.cos, lambda x: -mp.sin(x), lambda x: abs(x) <= 1e10, [1e22]
    ),
    "cos": unary(
        autograd.cos, mp.cos, lambda x: -mp.sin(x), lambda x: -mp.cos(x), lambda x: abs(x) <= 1e10
    ),
    "sum": Spec(
        lambda *xs: autograd.sum(xs),
        exact_sum,
        lambda *xs: [1] * len(xs),
        lambda *xs: zeros(len(xs)),
        [
            (1.0, 2.0, 3.0),
            (1.0, 1e300, -1e300),
            (0.5, 0.25, -1e-300),
            (5e-324, 5e-324, 1e-310),
            (1e308, 1e308, -1e308),
            (0.1, 0.2, 0.3),
        ],
    ),
    "logsumexp": Spec(
        lambda *xs: autograd.logsumexp(xs),
        logsumexp,
        softmax,
        logsumexp_d2,
        [
            (1000.0, 1000.0, 0.0),
            (-1000.0, 0.0, 1e-10),
            (0.0, 0.0, 0.0),
            (1.0, 2.0, 3.0),
            (0.0, -10.0, -11.0),
            (-1e-10, -40.0, -745.0),
            (0.0, -40.0),
            (-40.0, 0.0),
            (1e16, 1e16),
            (1e16, 1e16 + 2.0),
            (1e300, 1e300, -1e300),
            (0.0, -800.0),
            (5e-324, 0.0),
            (-745.0, 0.0),
            (1e308, -1e308),
            (7.5,),
            (-36.0, 0.0, 1e-300),
        ],
    ),
    "linear": Spec(
        lambda b, w1, w2, x1, x2: autograd.linear([w1, w2], [x1, x2], b),
        lambda b, w1, w2, x1, x2: exact_sum(b, w1 * x1, w2 * x2),
        lambda b, w1, w2, x1, x2: [1, x1, x2, w1, w2],
        linear_d2,
        [
            (0.5, 1.0, -2.0, 3.0, 0.25),
            (1.0, 1e200, 1e200, 1e100, -1e100),
            (1e300, 1e150, -1e150, 1e150, 1e150),
            (5e-324, 1e-160, 1e-160, 1e-160, 1e-160),
            (0.0, 0.0, 0.0, 0.0, 0.0),
        ],
    ),
}


def test_every_op_has_a_spec() -> None:
    assert set(SPECS) == set(OPS)


def test_public_functions_reach_their_table_entries() -> None:
    for name, spec in SPECS.items():
        point = spec.points[0]
        assert spec.f(*map(Value, point)).op is OPS[name], name


def _references(spec: Spec, point: tuple[float, ...]) -> tuple[Any, list[Any], list[list[Any]]]:
    args = [mpmath.mpf(p) for p in point]
    return spec.ref(*args), list(spec.d1(*args)), [list(r) for r in spec.d2(*args)]


def _representable(spec: Spec, point: tuple[float, ...]) -> bool:
    value, d1, d2 = _references(spec, point)
    numbers = [value, *d1, *(h for row in d2 for h in row)]
    return all(mpmath.isnan(v) or abs(mpmath.mpf(v)) <= FLOAT_MAX for v in numbers)


CASES = [
    pytest.param(name, point, id=f"{name}{point}")
    for name, spec in SPECS.items()
    for point in spec.points
    if _representable(spec, point)
]


def test_most_points_are_representable() -> None:
    # The filter above must leave the table's points in place, bar the few whose
    # derivatives exceed float64 (e.g. log''(1e-300) = -1e600).
    total = sum(len(spec.points) for spec in SPECS.values())
    assert len(CASES) >= 0.85 * total, (len(CASES), total)


@pytest.mark.parametrize(("name", "point"), CASES)
def test_value(name: str, point: tuple[float, ...]) -> None:
    spec = SPECS[name]
    out = spec.f(*map(Value, point))
    want, _, _ = _references(spec, point)
    assert type(out.data) is float
    assert close(out.data, want), (out.data, want)


@pytest.mark.parametrize(("name", "point"), CASES)
def test_first_derivatives(name: str, point: tuple[float, ...]) -> None:
    spec = SPECS[name]
    _, want, _ = _references(spec, point)
    leaves = [Value(p) for p in point]
    out = spec.f(*leaves)
    plain = autograd.grad(out, leaves, allow_unused=True)
    as_values = autograd.grad(out, leaves, create_graph=True, allow_unused=True)
    for i, (g, v, w) in enumerate(zip(plain, as_values, want)):
        g = 0.0 if g is None else g
        v = 0.0 if v is None else v.data
        assert close(g, w), ("plain", i, g, w)
        assert close(v, w), ("create_graph", i, v, w)


@pytest.mark.parametrize("upstream", [1e300, 1e-300])
@pytest.mark.parametrize(("name", "point"), CASES)
def test_first_derivatives_scale_with_the_upstream_gradient(
    name: str, point: tuple[float, ...], upstream: float
) -> None:
    spec = SPECS[name]
    _, want, _ = _references(spec, point)
    leaves = [Value(p) for p in point]
    out = spec.f(*leaves)
    grads = autograd.grad(out, leaves, grad_outputs=upstream, allow_unused=True)
    for i, (g, w) in enumerate(zip(grads, want)):
        # A local derivative is stored as a float: where it is subnormal (exp'(-745) is
        # 5e-324, 1% off), that float is what the upstream gradient multiplies.
        scaled = mpmath.mpf(float(w)) * upstream
        if not mpmath.isnan(scaled) and abs(scaled) > FLOAT_MAX:
            continue  # the product itself exceeds float64
        g = 0.0 if g is None else g
        assert close(g, scaled), (i, g, scaled)


@pytest.mark.parametrize(("name", "point"), CASES)
def test_second_derivatives(name: str, point: tuple[float, ...]) -> None:
    spec = SPECS[name]
    _, _, want = _references(spec, point)
    on_floats = hessian(spec.f)(*point)
    on_values = hessian(spec.f)(*map(Value, point))
    assert on_floats.dtype == np.float64
    for (i, j), w in np.ndenumerate(np.array(want, dtype=object)):
        assert close(on_floats[i, j], w), ("floats", i, j, on_floats[i, j], w)
        h = on_values[i, j]
        h = h.data if isinstance(h, Value) else float(h)
        assert close(h, w), ("values", i, j, h, w)


# -- the same over each op's whole domain, at hypothesis-drawn points ----------------------


def signed_magnitudes(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats of either sign with log10 |x| uniform in [lo, hi]."""
    return st.builds(lambda s, e: s * 10.0**e, st.sampled_from([1.0, -1.0]), st.floats(lo, hi))


def magnitudes(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi).map(lambda e: 10.0**e)


ANY = signed_magnitudes(-323.5, 308.0) | st.floats(-50.0, 50.0) | st.just(0.0)
MODERATE = signed_magnitudes(-150.0, 150.0) | st.floats(-50.0, 50.0) | st.just(0.0)
SMALL = signed_magnitudes(-75.0, 75.0) | st.floats(-50.0, 50.0) | st.just(0.0)
POSITIVE = magnitudes(-323.5, 308.0) | st.floats(1e-3, 50.0)

WIDE: dict[str, st.SearchStrategy[tuple[float, ...]]] = {
    "add": st.tuples(ANY, ANY),
    "sub": st.tuples(ANY, ANY),
    "mul": st.tuples(MODERATE, MODERATE),
    "div": st.tuples(MODERATE, MODERATE.filter(lambda b: b != 0.0)),
    "neg": st.tuples(ANY),
    "pow": st.tuples(magnitudes(-6.0, 6.0), st.floats(-50.0, 50.0))
    # A negative base needs an integer exponent; not 0, where the zero-factor rule (the
    # b of d/da = b a**(b-1)) stops the NaN of d/db in the mixed second derivative.
    | st.tuples(signed_magnitudes(-6.0, 6.0), st.integers(-20, 20).filter(bool).map(float)),
    "abs": st.tuples(ANY),
    "maximum": st.tuples(ANY, ANY),
    "minimum": st.tuples(ANY, ANY),
    "exp": st.tuples(ANY.filter(lambda x: x <= 709.0)),
    "log": st.tuples(POSITIVE),
    "sqrt": st.tuples(POSITIVE),
    "tanh": st.tuples(ANY),
    "sigmoid": st.tuples(ANY),
    "relu": st.tuples(ANY),
    "leaky_relu": st.tuples(ANY, st.floats(0.0, 1.0)),
    "elu": st.tuples(ANY, st.floats(0.1, 10.0)),
    "ndtr": st.tuples(ANY),
    "gelu": st.tuples(ANY),
    "softplus": st.tuples(ANY),
    "sin": st.tuples(ANY.filter(lambda x: abs(x) <= 1e10)),
    "cos": st.tuples(ANY.filter(lambda x: abs(x) <= 1e10)),
    "sum": st.tuples(ANY, ANY, ANY),
    "logsumexp": st.tuples(ANY, ANY, ANY) | st.tuples(*[st.floats(-800.0, 800.0)] * 3),
    "linear": st.tuples(SMALL, SMALL, SMALL, SMALL, SMALL),
}


def gelu_scales(x: Any) -> tuple[Any, list[Any], list[list[Any]]]:
    # gelu' = Phi + x phi is 0 near x = -0.75, gelu'' = (2 - x**2) phi at x = +-sqrt 2.
    phi = mp.npdf(x)
    return abs(x * ncdf(x)), [ncdf(x) + abs(x) * phi], [[(2 + x * x) * phi]]


def pow_scales(a: Any, b: Any) -> tuple[Any, list[Any], list[list[Any]]]:
    # d2/(da db) = a**(b-1) (1 + b log a), 0 where b log a = -1.
    value = abs(a**b)
    d1 = [abs(x) for x in pow_d1(a, b)]
    d2 = [[abs(x) for x in row] for row in pow_d2(a, b)]
    if a > 0:
        d2[0][1] = d2[1][0] = abs(a ** (b - 1)) * (1 + abs(b * mp.log(a)))
    return value, d1, d2


def logsumexp_scales(*xs: Any) -> tuple[Any, list[Any], list[list[Any]]]:
    # logsumexp = m + log sum exp(x - m) is 0 where the two terms cancel.
    m = max(xs)
    value = abs(m) + abs(logsumexp(*xs) - m)
    return value, softmax(*xs), [[abs(h) for h in row] for row in logsumexp_d2(*xs)]


def linear_scales(b: Any, w1: Any, w2: Any, x1: Any, x2: Any) -> tuple[Any, Any, Any]:
    # Each product w_i x_i is rounded once before the exact sum (as in every float dot
    # product), so the value is as precise as the terms' size allows.
    return abs(b) + abs(w1 * x1) + abs(w2 * x2), [1, x1, x2, w1, w2], linear_d2()


# Where an exact result is a difference of larger terms, no float formula keeps relative
# precision near its zeros; there the error is measured against the size of the terms.
SCALES: dict[str, Callable[..., tuple[Any, Any, Any]]] = {
    "gelu": gelu_scales,
    "pow": pow_scales,
    "logsumexp": logsumexp_scales,
    "linear": linear_scales,
}


def near(got: float, want: Any, scale: Any) -> bool:
    if mpmath.isnan(want):
        return math.isnan(got)
    if not math.isfinite(got):
        return False
    bound = REL * max(abs(want), abs(mpmath.mpf(scale)))
    return abs(mpmath.mpf(got) - want) <= bound + SUBNORMAL_ABS


def test_wide_domains_cover_every_op() -> None:
    assert set(WIDE) == set(OPS)


@pytest.mark.parametrize("name", sorted(WIDE))
def test_whole_domain_values_first_and_second_derivatives(name: str) -> None:
    spec = SPECS[name]
    scales = SCALES.get(name)

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(WIDE[name])
    def check(point: tuple[float, ...]) -> None:
        assume(_representable(spec, point))
        want, want_d1, want_d2 = _references(spec, point)
        if scales is None:
            s_value, s_d1, s_d2 = want, want_d1, want_d2
        else:
            s_value, s_d1, s_d2 = scales(*(mpmath.mpf(p) for p in point))
        leaves = [Value(p) for p in point]
        try:
            out = spec.f(*leaves)
        except OverflowError:
            # A result beyond float64 although the references are not (a rounded product
            # in linear): raising is the promise. Nothing else may raise.
            assert name == "linear"
            return
        assert near(out.data, want, s_value), (out.data, want)
        plain = autograd.grad(out, leaves, allow_unused=True)
        as_values = autograd.grad(out, leaves, create_graph=True, allow_unused=True)
        for i in range(len(point)):
            g = plain[i] or 0.0
            v = 0.0 if as_values[i] is None else as_values[i].data
            assert near(g, want_d1[i], s_d1[i]), ("plain", i, g, want_d1[i])
            assert near(v, want_d1[i], s_d1[i]), ("create_graph", i, v, want_d1[i])
        h = hessian(spec.f)(*point)
        for (i, j), w in np.ndenumerate(np.array(want_d2, dtype=object)):
            assert near(h[i, j], w, s_d2[i][j]), ("hessian", i, j, h[i, j], w)

    check()


# -- the references themselves, against mpmath's numerical differentiation --------------

ORDINARY = {
    "add": (0.3, -1.2), "sub": (0.3, -1.2), "mul": (0.3, -1.2), "div": (0.3, -1.2),
    "neg": (0.3,), "pow": (1.7, 2.5), "abs": (-0.7,), "maximum": (0.3, -1.2),
    "minimum": (0.3, -1.2), "exp": (0.3,), "log": (0.3,), "sqrt": (0.3,), "tanh": (0.3,),
    "sigmoid": (-1.3,), "relu": (0.3,), "leaky_relu": (-1.2, 0.2), "elu": (-1.2, 0.5),
    "ndtr": (0.3,), "gelu": (-0.8,), "softplus": (0.3,), "sin": (0.3,), "cos": (2.5,),
    "sum": (0.3, -1.2, 2.0), "logsumexp": (0.3, -1.2, 2.0), "linear": (0.1, 0.3, -1.2, 2.0, 0.5),
}  # fmt: skip


def test_ordinary_points_cover_every_op() -> None:
    assert set(ORDINARY) == set(OPS)


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_analytic_references_match_mpmath_diff(name: str) -> None:
    spec = SPECS[name]
    args = [mpmath.mpf(p) for p in ORDINARY[name]]
    n = len(args)
    d1 = spec.d1(*args)
    d2 = spec.d2(*args)
    for i in range(n):
        orders = [0] * n
        orders[i] = 1
        assert mpmath.almosteq(mpmath.diff(spec.ref, args, orders), d1[i], 1e-30)
        for j in range(n):
            orders = [0] * n
            orders[i] += 1
            orders[j] += 1
            assert mpmath.almosteq(mpmath.diff(spec.ref, args, orders), d2[i][j], 1e-30, 1e-30)


# -- softmax, cross-entropy and binary cross-entropy at any logit magnitude --------------

LOGITS = [
    (1e12, 1e12, 1e12),
    (1e16, 1e16),
    (1e16, 1e16 + 2.0),
    (-1e16, -1e16 + 4.0, -1e16 - 4.0),
    (1e300, 1e300 * (1 - 2**-52), -1e300),
    (0.0, -40.0),
    (0.0, 40.0, 40.0),
    (0.0, -800.0, 800.0),
    (3.0, -1.0, 0.5, 2.0),
    (-745.0, 0.0),
    (1e-300, 5e-324, 0.0),
    (7.5,),
]


@pytest.mark.parametrize("logits", LOGITS)
def test_softmax_values_and_jacobian(logits: tuple[float, ...]) -> None:
    xs = [Value(x) for x in logits]
    p = autograd.softmax(xs)
    mp_xs = [mpmath.mpf(x) for x in logits]
    want = softmax(*mp_xs)
    jacobian = logsumexp_d2(*mp_xs)  # d softmax_i / dx_j
    assert all(close(q.data, w) for q, w in zip(p, want)), ([q.data for q in p], want)
    assert math.isclose(math.fsum(q.data for q in p), 1.0, rel_tol=4e-16)
    for i, p_i in enumerate(p):
        plain = autograd.grad(p_i, xs, allow_unused=True)
        as_values = autograd.grad(p_i, xs, create_graph=True, allow_unused=True)
        huge = autograd.grad(p_i, xs, grad_outputs=1e300, allow_unused=True)
        for j in range(len(xs)):
            g = plain[j] or 0.0
            v = 0.0 if as_values[j] is None else as_values[j].data
            assert close(g, jacobian[i][j]), (i, j, g, jacobian[i][j])
            assert close(v, jacobian[i][j]), (i, j, v, jacobian[i][j])
            # The local derivatives are floats (see the upstream test above).
            scaled = mpmath.mpf(float(jacobian[i][j])) * 1e300
            assert close(huge[j] or 0.0, scaled), (i, j, huge[j], scaled)


def mp_cross_entropy(logits: Sequence[Any], target: int) -> Any:
    # logsumexp - x_t as (m - x_t) + (logsumexp - m): at 1e300, 50 digits cannot hold
    # 1e300 + log 2, and the difference of the two would be 0.
    m = max(logits)
    return (m - logits[target]) + (logsumexp(*(x - m for x in logits)))


@pytest.mark.parametrize("logits", LOGITS)
def test_cross_entropy_values_gradients_and_hessian(logits: tuple[float, ...]) -> None:
    from nn import cross_entropy

    mp_xs = [mpmath.mpf(x) for x in logits]
    p = softmax(*mp_xs)
    for target in range(len(logits)):
        xs = [Value(x) for x in logits]
        loss = cross_entropy(xs, target)
        assert close(loss.data, mp_cross_entropy(mp_xs, target)), (target, loss.data)
        # d/dx_j = p_j - [j == target]; for the target -sum_{k != target} p_k (no cancelling).
        want = [
            -mpmath.fsum(p[k] for k in range(len(p)) if k != target) if j == target else p[j]
            for j in range(len(p))
        ]
        for upstream in (1.0, 1e300, 1e-300):
            # Every logit is used (one class included), so allow_unused is not needed.
            grads = autograd.grad(loss, xs, grad_outputs=upstream)
            for j, (g, w) in enumerate(zip(grads, want)):
                scaled = mpmath.mpf(float(w)) * upstream  # floats multiply (see above)
                assert close(g, scaled), (target, upstream, j, g, w)
        # The Hessian is logsumexp's: diag(p) - p p^T (the target logit enters linearly).
        h = hessian(lambda *v, t=target: cross_entropy(list(v), t))(*logits)
        for (i, j), w in np.ndenumerate(np.array(logsumexp_d2(*mp_xs), dtype=object)):
            assert close(h[i, j], w), (target, i, j, h[i, j], w)


BCE_POINTS = [50.0, -50.0, 745.0, -745.0, 1e10, -1e10, 1e300, -1e300, 40.0, 3e-9, 0.0, -2.0]


def mp_bce(x: Any, y: Any) -> Any:
    # -[y log s(x) + (1 - y) log(1 - s(x))] = y log1p(e^-x) + (1 - y) log1p(e^x).
    return y * mp.log1p(mp.exp(-x)) + (1 - y) * mp.log1p(mp.exp(x))


@pytest.mark.parametrize("target", [0.0, 1.0, 0.25])
@pytest.mark.parametrize("x0", BCE_POINTS)
def test_binary_cross_entropy_with_logits_at_any_magnitude(x0: float, target: float) -> None:
    from nn.losses import binary_cross_entropy_with_logits as bce

    x = Value(x0)
    loss = bce([x], [target])
    mx, my = mpmath.mpf(x0), mpmath.mpf(target)
    assert close(loss.data, mp_bce(mx, my)), loss.data
    (g,) = autograd.grad(loss, [x])
    # d/dx = s(x) - y, written without cancellation for the two hard targets.
    want = -sigmoid(-mx) if target == 1.0 else sigmoid(mx) if target == 0.0 else sigmoid(mx) - my
    assert close(g, want), (g, want)
    h = autograd.func.derivative(lambda v: bce([v], [target]), 2)(x0)
    assert close(h, sigmoid_prime(mx)), (h, sigmoid_prime(mx))


def test_binary_cross_entropy_named_cases() -> None:
    from nn.losses import binary_cross_entropy_with_logits as bce

    # E30 and its mirror image; and the sum reduction of both keeps both digits.
    assert math.isclose(bce([Value(50.0)], [1.0]).data, 1.9287498479639178e-22, rel_tol=1e-12)
    assert math.isclose(bce([Value(-50.0)], [0.0]).data, 1.9287498479639178e-22, rel_tol=1e-12)
    both = bce([Value(50.0), Value(-50.0)], [1.0, 0.0], reduction="sum")
    assert math.isclose(both.data, 2 * 1.9287498479639178e-22, rel_tol=1e-12)


# -- second and third derivatives near 0 and at saturation, through `derivative` --------


def tanh_d3(x: Any) -> Any:
    return -2 * mp.sech(x) ** 2 * (mp.sech(x) ** 2 - 2 * mp.tanh(x) ** 2)


def sigmoid_d3(x: Any) -> Any:
    return sigmoid_prime(x) * (1 - 6 * sigmoid_prime(x))


TRANSFORM_CASES = {
    # name: (function, second derivative, third derivative), all analytic
    "tanh": (autograd.tanh, lambda x: -2 * mp.tanh(x) * mp.sech(x) ** 2, tanh_d3),
    "sigmoid": (autograd.sigmoid, sigmoid_d2, sigmoid_d3),
    "softplus": (autograd.softplus, sigmoid_prime, sigmoid_d2),
    "gelu": (
        autograd.gelu,
        lambda x: (2 - x * x) * mp.npdf(x),
        lambda x: x * mp.npdf(x) * (x * x - 4),
    ),
    "sin": (autograd.sin, lambda x: -mp.sin(x), lambda x: -mp.cos(x)),
    "ndtr": (autograd.ndtr, lambda x: -x * mp.npdf(x), lambda x: (x * x - 1) * mp.npdf(x)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORM_CASES))
@pytest.mark.parametrize(
    "x0", [3e-9, -3e-9, 1e-20, 5e-324, -1e-310, -1e-5, 0.7, -20.0, 30.0, -300.0]
)
def test_second_and_third_derivatives_via_derivative(name: str, x0: float) -> None:
    f, d2, d3 = TRANSFORM_CASES[name]
    x = mpmath.mpf(x0)
    got2 = autograd.func.derivative(f, 2)(x0)
    got3 = autograd.func.derivative(f, 3)(x0)
    assert close(got2, d2(x)), (got2, d2(x))
    assert close(got3, d3(x)), (got3, d3(x))


def test_e31_second_derivative_of_tanh_at_3e_9() -> None:
    assert math.isclose(autograd.func.derivative(autograd.tanh, 2)(3e-9), -6e-09, rel_tol=1e-12)


def test_elu_alpha_derivative_under_create_graph_near_zero() -> None:
    # d elu(x, alpha) / d alpha = expm1(x): as a Value too (exp(x) - 1 keeps 8 digits at 3e-9).
    x, alpha = Value(-3e-9), Value(1.0)
    (_, g) = autograd.grad(autograd.elu(x, alpha), [x, alpha], create_graph=True)
    assert close(g.data, mp.expm1(mpmath.mpf(-3e-9)))


def test_negative_base_second_derivatives_do_not_exist() -> None:
    # d/db a**b at a < 0 is NaN, and so are d2/db2 and d2/(da db); d2/da2 exists.
    h = hessian(lambda a, b: a**b)(-2.0, 3.0)
    assert h[0, 0] == -12.0
    assert math.isnan(h[0, 1]) and math.isnan(h[1, 0]) and math.isnan(h[1, 1])
    a, b = Value(-2.0), Value(3.0)
    (ga, gb) = autograd.grad(a**b, [a, b], create_graph=True)
    assert ga.data == 12.0 and math.isnan(gb.data)
    assert all(math.isnan(g) for g in autograd.grad(gb, [a, b]))
    # A plain-number base: the same.
    assert math.isnan(autograd.func.derivative(lambda e: (-2.0) ** e, 1)(3.0))
    assert math.isnan(autograd.func.derivative(lambda e: (-2.0) ** e, 2)(3.0))


# -- summation: one float on every Python version -----------------------------------------
# sum, mean and linear add up their terms with math.fsum (correctly rounded), not the built-in
# sum, which is compensated from Python 3.12 on and plain before. The expected floats below
# come from exact rational arithmetic, never from `sum`.


def correctly_rounded_sum(xs: Sequence[float]) -> float:
    return float(sum((Fraction(x) for x in xs), Fraction(0)))


SUMMATION_CASES = [
    [0.1] * 10,  # 1.0; plain left-to-right summation gives 0.9999999999999999
    [1.0, 1e100, 1.0, -1e100],  # 2.0; plain summation gives 0.0
    [1e16, 1.0, -1e16, 1.0, 1.0],  # 3.0
    [0.1, 0.2, 0.3, -0.6],  # 1/18 of an ulp of 0.6 survives: 2.7755575615628914e-17
    [5e-324] * 7 + [1e-310],
    [1e308, 1e308, -1e308, -1e308, 1.0],  # partial sums overflow; the sum is 1.0
    [2.0**-60, 1.0, -1.0],
]


@pytest.mark.parametrize("xs", SUMMATION_CASES)
def test_sum_and_mean_are_correctly_rounded(xs: list[float]) -> None:
    want = correctly_rounded_sum(xs)
    assert autograd.sum([Value(x) for x in xs]).data == want
    assert autograd.sum(xs).data == want  # plain numbers: the same op, a leaf
    assert autograd.mean([Value(x) for x in xs]).data == want / len(xs)


def test_named_sums() -> None:
    assert autograd.sum([Value(0.1)] * 10).data == 1.0
    assert autograd.sum([Value(1.0), Value(1e100), Value(1.0), Value(-1e100)]).data == 2.0
    assert autograd.mean([Value(0.1)] * 10).data == 0.1


@pytest.mark.parametrize("xs", SUMMATION_CASES)
def test_linear_sums_its_rounded_products_exactly(xs: list[float]) -> None:
    # bias + sum_i w_i x_i: each product rounded once (as in every float dot product),
    # then their exact sum correctly rounded.
    ws = [(1.0, -0.75, 0.5)[i % 3] for i in range(len(xs))]
    products = [w * x for w, x in zip(ws, xs)]
    out = autograd.linear([Value(w) for w in ws], [Value(x) for x in xs], Value(0.25))
    assert out.data == correctly_rounded_sum([0.25, *products])


def test_sum_overflow_still_raises_naming_the_op() -> None:
    with pytest.raises(OverflowError, match=r"sum: .*1e\+308"):
        autograd.sum([Value(1e308), Value(1e308)])
    assert math.isnan(autograd.sum([Value(math.inf), Value(-math.inf)]).data)
    assert autograd.sum([Value(math.inf), Value(1.0)]).data == math.inf


@pytest.mark.parametrize("bad", ["1", None, True])
def test_cross_entropy_names_a_logit_that_is_not_a_number(bad: object) -> None:
    from nn import cross_entropy

    with pytest.raises(TypeError, match=rf"cross_entropy: logits .*{type(bad).__name__}"):
        cross_entropy([bad, Value(1.0)], 1)


# -- softmax, cross-entropy and binary cross-entropy at hypothesis-drawn logits ---------------

LOGIT = signed_magnitudes(-320.0, 300.0) | st.floats(-800.0, 800.0) | st.just(0.0)
# Logit vectors of 1 to 4 entries, some spread over every magnitude and some huge but close
# together (offsets of a few units on 1e16, where a rounded logsumexp loses everything).
LOGIT_VECTORS = st.lists(LOGIT, min_size=1, max_size=4) | st.builds(
    lambda base, offsets: [base + o for o in offsets],
    st.sampled_from([1e12, 1e16, -1e16, 1e300]),
    st.lists(st.integers(-8, 8).map(float), min_size=2, max_size=4),
)
LOSS_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@LOSS_SETTINGS
@given(LOGIT_VECTORS, st.integers(0, 3))
def test_softmax_and_cross_entropy_at_drawn_logits(logits: list[float], target: int) -> None:
    from nn import cross_entropy

    target %= len(logits)
    mp_xs = [mpmath.mpf(x) for x in logits]
    p = softmax(*mp_xs)
    xs = [Value(x) for x in logits]
    got = autograd.softmax(xs)
    assert all(close(q.data, w) for q, w in zip(got, p)), ([q.data for q in got], p)
    loss = cross_entropy(xs, target)
    assert close(loss.data, mp_cross_entropy(mp_xs, target)), loss.data
    want = [
        -mpmath.fsum(p[k] for k in range(len(p)) if k != target) if j == target else p[j]
        for j in range(len(p))
    ]
    for j, g in enumerate(autograd.grad(loss, xs)):
        assert close(g, want[j]), (j, g, want[j])


@LOSS_SETTINGS
@given(LOGIT, st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
def test_binary_cross_entropy_with_logits_at_drawn_logits(x0: float, target: float) -> None:
    from nn.losses import binary_cross_entropy_with_logits as bce

    x = Value(x0)
    loss = bce([x], [target])
    mx, my = mpmath.mpf(x0), mpmath.mpf(target)
    # The loss is a sum of two terms >= 0: relative precision everywhere.
    assert close(loss.data, mp_bce(mx, my)), loss.data
    (g,) = autograd.grad(loss, [x])
    # s(x) - y = (1 - y) s(x) - y s(-x), the difference of the two terms' slopes: measured
    # against their size, since near s(x) = y no float formula keeps relative precision.
    want = (1 - my) * sigmoid(mx) - my * sigmoid(-mx)
    size = (1 - my) * sigmoid(mx) + my * sigmoid(-mx)
    assert near(g, want, size), (g, want)
