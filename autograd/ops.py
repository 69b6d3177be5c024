"""The derivative table: every primitive operation, declared once.

Each entry (an `Op`) gives three things:

- `name`, used in error messages, and `symbol`, used in pictures (`"*"` for `mul`);
- `forward(*floats) -> float`: the value, on plain Python floats. From finite inputs it
  returns a finite float or raises (`ValueError` outside the domain, `ZeroDivisionError`,
  `OverflowError`), with a message naming the op and the operand; NaN and inf inputs
  propagate as IEEE says (sin(inf) is nan, inf / 0 is inf), never raising;
- `local_grads(out, *args) -> tuple`: the local derivative d(out)/d(arg) for each argument.

A rule is written with arithmetic and with this module's own functions (`exp`, `log`,
`sigmoid`, ...), which accept plain floats *and* Values. So one rule serves both passes:
the plain backward pass calls it with floats at forward time and stores the numbers; the
`create_graph=True` pass calls it with Values, and the derivative becomes a graph that can be
differentiated again. No derivative is written twice.

Conventions at kinks and singular points follow PyTorch's float64 results, with the reason
written next to each rule. Read next: `value.py`, which turns these entries into graph nodes.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A plain number that may stand beside a Value. bool is excluded on purpose: True * x is
# almost always a mistake, and DESIGN.md rejects bool as data.
NUMBER_TYPES = (int, float, np.integer, np.floating)


def is_number(x: object) -> bool:
    """True for int, float and numpy real scalars (not bool)."""
    return isinstance(x, NUMBER_TYPES) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class Op:
    """One primitive: its forward on floats and its local-derivative rule.

    Attributes:
        name: the op's name in messages and in `OPS` (e.g. "mul").
        symbol: how a picture of the graph shows it (e.g. "*").
        forward: floats -> float; raises on a domain error (see module docstring).
        local_grads: (out, *args) -> one local derivative per argument; args and out are
            floats on the plain pass and Values under `create_graph=True`.
    """

    name: str
    symbol: str
    forward: Callable[..., float]
    local_grads: Callable[..., tuple[Any, ...]]

    def __repr__(self) -> str:
        return f"Op({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by name: the rules are lambdas, which pickle cannot store, and the
        # unpickled node should point at the one entry of the table anyway.
        return (op_named, (self.name,))


def op_named(name: str) -> Op:
    """The primitive called `name` in `OPS` (how a pickled `Op` is restored).

    Raises:
        KeyError: no primitive has that name (the known ones are listed).
    """
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(
            f"op_named: no primitive {name!r}; the known ones are {sorted(OPS)}"
        ) from None


# ---------------------------------------------------------------------------------------
# Helpers for rules: the same code works on floats and on Values.
# ---------------------------------------------------------------------------------------


def _call(name: str, x: Any, float_forward: Callable[[float], float]) -> Any:
    """Apply a unary op to a number (float result) or to a Value (graph node)."""
    if is_number(x):
        return float_forward(float(x))
    method = getattr(x, name, None)
    if method is None:
        raise TypeError(f"{name}: expected a number or a Value, got {type(x).__name__}")
    return method()


def _ieee_power(a: Any, p: float) -> Any:
    """a ** p for a rule: IEEE inf where a float power is singular, a graph node for Values.

    Python's float `**` raises on 0.0 ** -0.5, but a derivative there is infinite, and
    DESIGN.md says an infinite derivative is `inf` (PyTorch gives inf too).
    """
    if not is_number(a):
        if float(a) == 0.0 and float(p) < 0.0:
            # Singular under create_graph too: the derivative is the IEEE inf, a constant
            # (the Value forward would raise ZeroDivisionError on 0.0 ** negative).
            return _ieee_power(float(a), float(p))
        return a**p
    a = float(a)
    try:
        return a**p
    except ZeroDivisionError:
        odd_integer = float(p).is_integer() and int(float(p)) % 2 == 1
        return math.copysign(math.inf, a) if odd_integer else math.inf
    except OverflowError:
        return math.inf


def _check_unary_finite(name: str, x: float, out: float) -> float:
    if math.isfinite(x) and not math.isfinite(out):
        raise OverflowError(f"{name}: result overflows float64, got input {x!r}")
    return out


# ---------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------


def _ieee_div(a: Any, b: Any) -> Any:
    """a / b for a rule: IEEE's signed inf or NaN where b == 0 (Python's float `/` raises)."""
    if is_number(b) and b == 0.0 and is_number(a):
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _div_forward(a: float, b: float) -> float:
    if b == 0.0:
        if math.isfinite(a):
            raise ZeroDivisionError(f"div: division by zero, got {a!r} / {b!r}")
        # inf / 0 and nan / 0: a non-finite input propagates as IEEE says, like nan * x.
        return _ieee_div(a, b)
    return a / b


def _pow_forward(a: float, b: float) -> float:
    if a == 0.0 and b < 0.0 and math.isfinite(b):
        # 0 ** -inf is IEEE's +inf (a non-finite input), Python returns it without raising.
        raise ZeroDivisionError(f"pow: zero to a negative power, got {a!r} ** {b!r}")
    if a < 0.0 and math.isfinite(a) and math.isfinite(b) and not b.is_integer():
        # Python would return a complex number here; a real engine must not.
        raise ValueError(f"pow: a negative base needs an integer exponent, got {a!r} ** {b!r}")
    try:
        return a**b
    except OverflowError:
        raise OverflowError(f"pow: result overflows float64, got {a!r} ** {b!r}") from None


def _pow_local(out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    # d/da a**b = b * a**(b-1). PyTorch's convention: d/dx x**0 = 0, even at x = 0.
    # A Value exponent at 0 is masked only where a == 0 too (0 * 0**-1 would be nan):
    # elsewhere b * a**(b-1) is already 0, and keeping it as a graph keeps d2/(da db) = 1/a.
    masked = float(b) == 0.0 and (is_number(b) or float(a) == 0.0)
    da = 0.0 if masked else b * _ieee_power(a, b - 1)
    # d/db a**b = a**b * log(a), defined for a > 0. At a == 0 with b >= 0 PyTorch masks it
    # to 0 (the limit from a > 0 along the exponent is 0). For a < 0 it does not exist.
    if float(a) > 0.0:
        db = out * log(a)
    elif float(a) == 0.0 and float(b) >= 0.0:
        db = 0.0
    else:
        # NaN times the node rather than a constant NaN: under create_graph the derivatives
        # of this NaN (d2/db2, d2/(da db)) must not exist either, and a constant's are 0.
        db = math.nan * out
    return da, db


# The forward of + - * is Python's own operator (a C function: cheaper to call than a lambda).
ADD = Op("add", "+", operator.add, lambda out, a, b: (1.0, 1.0))
SUB = Op("sub", "-", operator.sub, lambda out, a, b: (1.0, -1.0))
MUL = Op("mul", "*", operator.mul, lambda out, a, b: (b, a))
# d(a/b)/da = 1/b, d(a/b)/db = -a/b**2 = -out/b. The forward allows b == 0 only for a
# non-finite a (inf / 0 is inf), where the derivatives are IEEE's inf or NaN.
DIV = Op("div", "/", _div_forward, lambda out, a, b: (_ieee_div(1.0, b), _ieee_div(-out, b)))
NEG = Op("neg", "-", lambda a: -a, lambda out, a: (-1.0,))
POW = Op("pow", "**", _pow_forward, _pow_local)


def _abs_local(out: Any, x: Any) -> tuple[float]:
    # sign(x), with abs'(0) = 0 as in PyTorch (the subgradient of smallest norm).
    v = float(x)
    return (1.0 if v > 0 else -1.0 if v < 0 else 0.0 if v == 0 else math.nan,)


ABS = Op("abs", "abs", abs, _abs_local)


def _max_local(out: Any, a: Any, b: Any) -> tuple[float, float]:
    # A tie splits the gradient evenly, as torch.maximum does.
    if float(a) > float(b):
        return 1.0, 0.0
    if float(a) < float(b):
        return 0.0, 1.0
    return 0.5, 0.5


def _nan_aware(pick: Callable[[float, float], float]) -> Callable[[float, float], float]:
    # max(nan, 1.0) is 1.0 in Python; torch.maximum propagates the NaN, and so do we.
    def forward(a: float, b: float) -> float:
        return a + b if math.isnan(a) or math.isnan(b) else pick(a, b)

    return forward


MAXIMUM = Op("maximum", "max", _nan_aware(max), _max_local)
MINIMUM = Op("minimum", "min", _nan_aware(min), lambda out, a, b: _max_local(out, b, a))

# ---------------------------------------------------------------------------------------
# Exponentials and logarithms
# ---------------------------------------------------------------------------------------


def _exp_forward(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        raise OverflowError(f"exp: result overflows float64, got input {x!r}") from None


def _log_forward(x: float) -> float:
    if not x > 0.0:
        if math.isnan(x) or x == -math.inf:
            # Non-finite inputs propagate as IEEE says: log(nan) = log(-inf) = nan.
            return math.nan
        raise ValueError(f"log: input must be > 0, got {x!r}")
    return math.log(x)


def _sqrt_forward(x: float) -> float:
    if x == -math.inf:
        return math.nan  # IEEE: sqrt(-inf) is nan, like any non-finite input's result
    if x < 0.0:
        raise ValueError(f"sqrt: input must be >= 0, got {x!r}")
    return math.sqrt(x)


def _sqrt_local(out: Any, x: Any) -> tuple[Any]:
    # 1 / (2 sqrt(x)); infinite at 0, as in PyTorch (a float division by 0.0 would raise).
    if float(out) == 0.0:
        # float() also for a Value under create_graph, where 0.5 / out would raise.
        return (math.inf,)
    return (0.5 / out,)


EXP = Op("exp", "exp", _exp_forward, lambda out, x: (out,))
LOG = Op("log", "log", _log_forward, lambda out, x: (1.0 / x,))
SQRT = Op("sqrt", "sqrt", _sqrt_forward, _sqrt_local)

# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------


def _sech2(x: Any, tanh_x: Any) -> Any:
    """sech(x)**2 = tanh'(x), given tanh(x); floats or Values, precise for every x.

    Two forms, each used where neither it nor its own derivative (which create_graph takes
    from this very expression) cancels:
    - |x| < 1: 1 - tanh(x)**2. Its derivative -2 tanh(x) tanh'(x) is a product, exact near
      0 (tanh''(3e-9) = -6e-9); the exp form's derivative would be a difference of two
      terms near -2 and +2 there, keeping only 8 digits.
    - |x| >= 1: 4 e / (1 + e)**2 with e = exp(-2|x|). Here 1 - tanh**2 cancels (to 0.0 for
      |x| > 19, while tanh'(20) is 1.7e-17). The sign in the exponent is a constant chosen
      from x, not abs(x), so that the rule has no kink for create_graph to differentiate.
    """
    size = abs(float(x))
    if size < 1.0:
        return 1.0 - tanh_x**2
    if size > 400.0:
        # 0.0 in float64 from |x| = 373 on, and its derivatives too; here -2 x could even
        # overflow a Value under create_graph (x = 1e308), although the float pass gives 0.
        return 0.0
    e = exp((-2.0 if float(x) >= 0.0 else 2.0) * x)
    return 4.0 * e / (1.0 + e) ** 2


def _tanh_local(out: Any, x: Any) -> tuple[Any]:
    # tanh'(x) = sech(x)**2, written so that it and its derivative keep full precision.
    return (_sech2(x, out),)


def _sigmoid_forward(x: float) -> float:
    # Two branches so that exp never overflows (sigmoid(-1000) is 0.0, not an error).
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _sigmoid_local(out: Any, x: Any) -> tuple[Any]:
    # sigmoid'(x) = s(x) s(-x) = sech(x / 2)**2 / 4. The first form keeps full precision
    # where s(x) is near 1 (1 - s(x) would cancel), but its derivative, s'(x) (s(-x) - s(x)),
    # is a difference that cancels near 0 (sigmoid''(1e-9) would keep one digit); there the
    # sech form, as (1 - tanh(x / 2)**2) / 4, has a product for derivative (see _sech2).
    if abs(float(x)) < 2.0:
        t = tanh(0.5 * x)
        return (0.25 * (1.0 - t**2),)
    return (out * sigmoid(-x),)


def _relu_forward(x: float) -> float:
    return x if x > 0.0 or math.isnan(x) else 0.0


def _relu_local(out: Any, x: Any) -> tuple[float]:
    # relu'(0) = 0, as PyTorch and JAX define it: 0 is a valid subgradient there, and it
    # keeps dead units dead instead of waking them at exactly zero.
    return (1.0 if float(x) > 0.0 else 0.0,)


def _leaky_relu_forward(x: float, negative_slope: float) -> float:
    return x if x > 0.0 else x * negative_slope


def _leaky_relu_local(out: Any, x: Any, negative_slope: Any) -> tuple[Any, Any]:
    # At 0 the slope is negative_slope, as in PyTorch's leaky_relu_backward (x > 0 ? 1 : slope).
    if float(x) > 0.0:
        return 1.0, 0.0
    return negative_slope, x


def _elu_forward(x: float, alpha: float) -> float:
    # expm1 keeps precision for x near 0, where exp(x) - 1 would cancel.
    return x if x > 0.0 else alpha * math.expm1(x)


def _elu_local(out: Any, x: Any, alpha: Any) -> tuple[Any, Any]:
    # d/dx alpha (exp(x) - 1) = alpha exp(x); at 0 PyTorch takes this branch too.
    if float(x) > 0.0:
        return 1.0, 0.0
    # d/d(alpha) = expm1(x). On a Value that is x.elu(1.0) (x <= 0 here), which keeps
    # expm1's precision near 0 where exp(x) - 1 would cancel, and has expm1's derivative.
    expm1_x = math.expm1(x) if is_number(x) else x.elu(1.0)
    return alpha * exp(x), expm1_x


_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _ndtr_forward(x: float) -> float:
    # Phi(x) = erfc(-x / sqrt 2) / 2: erfc keeps relative precision in the far left tail.
    return 0.5 * math.erfc(-x * _INV_SQRT2)


def _normal_pdf(x: Any) -> Any:
    # phi(x) = exp(-x**2 / 2) / sqrt(2 pi). Past |x| = 40 it is 0.0 in float64 (below
    # 1e-347), and so are its derivatives; there x * x could overflow a Value (x = 1e300
    # under create_graph) although the float pass gives 0.0.
    if abs(float(x)) > 40.0:
        return 0.0
    return exp(-0.5 * x * x) * _INV_SQRT2PI


def _ndtr_local(out: Any, x: Any) -> tuple[Any]:
    # The standard normal density.
    return (_normal_pdf(x),)


NDTR = Op("ndtr", "ndtr", _ndtr_forward, _ndtr_local)


def _gelu_forward(x: float) -> float:
    return x * _ndtr_forward(x)


def _gelu_local(out: Any, x: Any) -> tuple[Any]:
    # gelu(x) = x * Phi(x) (Hendrycks & Gimpel 2016, exact form), so gelu' = Phi(x) + x phi(x).
    return (ndtr(x) + x * _normal_pdf(x),)


def _softplus_forward(x: float) -> float:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, no cancellation.
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


TANH = Op("tanh", "tanh", math.tanh, _tanh_local)
SIGMOID = Op("sigmoid", "sigmoid", _sigmoid_forward, _sigmoid_local)
RELU = Op("relu", "relu", _relu_forward, _relu_local)
# The slope and alpha are a second argument, usually a plain number, so one table entry serves
# every setting (and a Value slope would even get its own gradient).
LEAKY_RELU = Op("leaky_relu", "leaky_relu", _leaky_relu_forward, _leaky_relu_local)
ELU = Op("elu", "elu", _elu_forward, _elu_local)
GELU = Op("gelu", "gelu", _gelu_forward, _gelu_local)
SOFTPLUS = Op("softplus", "softplus", _softplus_forward, lambda out, x: (sigmoid(x),))

# ---------------------------------------------------------------------------------------
# Trigonometry
# ---------------------------------------------------------------------------------------


def _sin_forward(x: float) -> float:
    # math.sin(inf) raises "math domain error"; IEEE (and numpy, PyTorch) give nan.
    return math.sin(x) if math.isfinite(x) else math.nan


def _cos_forward(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


SIN = Op("sin", "sin", _sin_forward, lambda out, x: (cos(x),))
COS = Op("cos", "cos", _cos_forward, lambda out, x: (-sin(x),))

# ---------------------------------------------------------------------------------------
# N-ary primitives: one node for many inputs
# ---------------------------------------------------------------------------------------


def _fsum(terms: Sequence[float]) -> float:
    """The correctly rounded sum of floats: one summation for every n-ary op and Python.

    math.fsum (Shewchuk's exact partials) gives the float nearest the exact sum, so the
    result does not depend on the terms' order nor on the Python version: the built-in
    `sum` of floats is compensated (Neumaier) from Python 3.12 on and plain before, so the
    same model would train to different floats. A partial sum that overflows although the
    result may not is retried on the terms scaled by a power of two (exact, bar subnormal
    bits); IEEE's inf - inf is NaN, where fsum raises.
    """
    try:
        return math.fsum(terms)
    except OverflowError:
        scale = 2.0 ** len(terms).bit_length()  # n terms of at most 1.8e308 / scale: no overflow
        return math.fsum([t / scale for t in terms]) * scale
    except ValueError:  # inf + -inf
        return math.nan


def _sum_forward(*xs: float) -> float:
    return _fsum(xs)


def _sum_of(terms: Sequence[Any]) -> Any:
    """Sum of floats (_fsum) or of Values (a chain of +), for rules that add up terms."""
    if all(type(t) is float for t in terms):
        return _fsum(terms)
    if not terms:
        return 0.0
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _logsumexp_forward(*xs: float) -> float:
    # Shift by the maximum so that no exp overflows: logsumexp([1000, 1000]) = 1000 + log 2.
    if any(math.isnan(x) for x in xs):
        return math.nan
    m = max(xs)
    if math.isinf(m):
        return m
    # The term of the maximum is exp(0) = 1 exactly; log1p of the rest keeps full precision
    # when the result is near m (log(1 + 1e-5) would lose five digits to the rounding of 1 + ...).
    return m + math.log1p(_fsum([*(math.exp(x - m) for x in xs), -1.0]))


def softmax(xs: Sequence[Any]) -> list[Any]:
    """softmax(xs) on floats or Values, precise at any magnitude, to first and second order.

    With x_k the largest: p_k = 1 / (1 + sum_{j != k} exp(x_j - x_k)) and, for the others,
    p_i = exp(x_i - x_k) * p_k. Every exp is <= 1, and no rounded logsumexp enters an
    exponent (exp(x_i - logsumexp) loses all digits at x = 1e16). Under create_graph the
    derivative of p_k comes out as p_k**2 * sum_j exp(x_j - x_k) = p_k (1 - p_k), a product,
    rather than the difference p_k - p_k**2, which is 0.0 when p_k rounds to 1.
    """
    data = [float(x) for x in xs]
    k = max(range(len(xs)), key=data.__getitem__)  # a NaN anywhere makes every p_i NaN
    # exp(d) is 0.0 below d = -745.2; far below, d itself may overflow a Value under
    # create_graph (-1e308 - 1e308) although the float pass gives 0.0. NaN takes exp.
    others = [
        0.0 if data[j] - data[k] < -746.0 else exp(x - xs[k]) for j, x in enumerate(xs) if j != k
    ]
    p_k = 1.0 / (1.0 + _sum_of(others))
    scaled = iter(others)
    return [p_k if j == k else next(scaled) * p_k for j in range(len(xs))]


def _logsumexp_local(out: Any, *xs: Any) -> tuple[Any, ...]:
    # d/dx_i log sum_j exp(x_j) = softmax_i(x), precise also to second order (see there).
    return tuple(softmax(xs))


def _linear_forward(*args: float) -> float:
    # args = (b, w_1..w_n, x_1..x_n): a neuron's pre-activation b + sum_i w_i x_i, each
    # product rounded once and the terms summed by _fsum (the same float on every Python).
    n = (len(args) - 1) // 2
    return _fsum([args[0], *map(operator.mul, args[1 : n + 1], args[n + 1 :])])


def _linear_local(out: Any, *args: Any) -> tuple[Any, ...]:
    # d/db = 1, d/dw_i = x_i, d/dx_i = w_i.
    n = (len(args) - 1) // 2
    return (1.0, *args[n + 1 :], *args[1 : n + 1])


SUM = Op("sum", "sum", _sum_forward, lambda out, *xs: (1.0,) * len(xs))
LOGSUMEXP = Op("logsumexp", "logsumexp", _logsumexp_forward, _logsumexp_local)
LINEAR = Op("linear", "w·x+b", _linear_forward, _linear_local)

#: Every primitive by name. Tests and the hypothesis strategies read ops from here.
OPS: dict[str, Op] = {
    op.name: op
    for op in (
        ADD, SUB, MUL, DIV, NEG, POW, ABS, MAXIMUM, MINIMUM,
        EXP, LOG, SQRT, TANH, SIGMOID, RELU, LEAKY_RELU, ELU, NDTR, GELU, SOFTPLUS,
        SIN, COS, SUM, LOGSUMEXP, LINEAR,
    )
}  # fmt: skip

# ---------------------------------------------------------------------------------------
# Functions that accept plain numbers (float result) or Values (graph node). The rules above
# call these; `autograd` re-exports them, and numpy's np.tanh etc. on object arrays of Values
# call the Value methods of the same names.
# ---------------------------------------------------------------------------------------


def exp(x: Any) -> Any:
    """e**x. Number -> float, Value -> Value. Raises OverflowError past x ~ 709.78."""
    return _call("exp", x, lambda v: _check_unary_finite("exp", v, _exp_forward(v)))


def log(x: Any) -> Any:
    """Natural logarithm. Number -> float, Value -> Value. Raises ValueError for x <= 0."""
    return _call("log", x, _log_forward)


def sqrt(x: Any) -> Any:
    """Square root. Number -> float, Value -> Value. Raises ValueError for x < 0."""
    return _call("sqrt", x, _sqrt_forward)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent. Number -> float, Value -> Value."""
    return _call("tanh", x, math.tanh)


def sigmoid(x: Any) -> Any:
    """Logistic sigmoid 1 / (1 + exp(-x)), stable for any x. Number -> float, Value -> Value."""
    return _call("sigmoid", x, _sigmoid_forward)


def relu(x: Any) -> Any:
    """max(x, 0), with relu'(0) = 0 (PyTorch). NaN stays NaN. Number -> float, Value -> Value."""
    return _call("relu", x, _relu_forward)


def gelu(x: Any) -> Any:
    """GELU, exact form x * Phi(x) (Hendrycks & Gimpel 2016; PyTorch's default)."""
    return _call("gelu", x, _gelu_forward)


def ndtr(x: Any) -> Any:
    """Standard normal CDF Phi(x) (scipy/torch name `ndtr`). Number -> float, Value -> Value."""
    return _call("ndtr", x, _ndtr_forward)


def softplus(x: Any) -> Any:
    """log(1 + exp(x)), computed without overflow. Number -> float, Value -> Value."""
    return _call("softplus", x, _softplus_forward)


def sin(x: Any) -> Any:
    """Sine (radians). Number -> float, Value -> Value."""
    return _call("sin", x, _sin_forward)


def cos(x: Any) -> Any:
    """Cosine (radians). Number -> float, Value -> Value."""
    return _call("cos", x, _cos_forward)
