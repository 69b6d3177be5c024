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
from collections.abc import Callable
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
        array_forward, array_local_grads: the same on numpy float64 arrays (one element per
            sample, plain floats broadcast), for the tape; None when `forward` and
            `local_grads` work on arrays unchanged. Domain errors name the sample.
    """

    name: str
    symbol: str
    forward: Callable[..., float]
    local_grads: Callable[..., tuple[Any, ...]]
    # The tape's forms (tape.py), on float64 arrays with one element per sample; None where
    # the float rule above already works on arrays as it is (add, mul, linear, ...).
    array_forward: Callable[..., Any] | None = None
    array_local_grads: Callable[..., tuple[Any, ...]] | None = None

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


# Array forms (the tape's) raise the float rule's error for the first sample that has one.
# `bad` is a boolean array over the batch (samples along the first axis); `shown` the values
# to quote from that sample.


def _raise_at(error: type[Exception], bad: Any, message: str, *shown: Any) -> None:
    """Raise `error(message.format(*values) + " at sample i")` for the first True of `bad`."""
    if not np.any(bad):
        return
    bad = np.atleast_1d(bad)
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    values = [float(np.broadcast_to(v, bad.shape)[where]) for v in shown]
    raise error(message.format(*values) + f" at sample {where[0]}")


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


def _div_array(a: Any, b: Any) -> Any:
    _raise_at(
        ZeroDivisionError,
        (b == 0.0) & np.isfinite(a),
        "div: division by zero, got {!r} / {!r}",
        a,
        b,
    )
    return np.divide(a, b)


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


def _pow_array(a: Any, b: Any) -> Any:
    finite = np.isfinite(a) & np.isfinite(b)
    _raise_at(
        ZeroDivisionError,
        (a == 0.0) & (b < 0.0) & np.isfinite(b),
        "pow: zero to a negative power, got {!r} ** {!r}",
        a,
        b,
    )
    _raise_at(
        ValueError,
        (a < 0.0) & finite & (np.floor(b) != b),
        "pow: a negative base needs an integer exponent, got {!r} ** {!r}",
        a,
        b,
    )
    out = np.power(a, b)
    _raise_at(
        OverflowError,
        finite & ~np.isfinite(out),
        "pow: result overflows float64, got {!r} ** {!r}",
        a,
        b,
    )
    return out


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
        db = math.nan
    return da, db


def _pow_local_array(out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    # _pow_local on arrays. On the plain pass b is a number, so the mask is just b == 0;
    # np.power gives IEEE's inf where a ** (b - 1) is singular, as _ieee_power does.
    da = np.where(b == 0.0, 0.0, b * np.power(a, b - 1.0))
    positive = a > 0.0
    db = np.where(
        positive,
        out * np.log(np.where(positive, a, 1.0)),
        np.where((a == 0.0) & (b >= 0.0), 0.0, math.nan),
    )
    return da, db


# The forward of + - * is Python's own operator (a C function: cheaper to call than a lambda).
ADD = Op("add", "+", operator.add, lambda out, a, b: (1.0, 1.0))
SUB = Op("sub", "-", operator.sub, lambda out, a, b: (1.0, -1.0))
MUL = Op("mul", "*", operator.mul, lambda out, a, b: (b, a))
# d(a/b)/da = 1/b, d(a/b)/db = -a/b**2 = -out/b. The forward allows b == 0 only for a
# non-finite a (inf / 0 is inf), where the derivatives are IEEE's inf or NaN.
DIV = Op(
    "div",
    "/",
    _div_forward,
    lambda out, a, b: (_ieee_div(1.0, b), _ieee_div(-out, b)),
    array_forward=_div_array,
)
NEG = Op("neg", "-", lambda a: -a, lambda out, a: (-1.0,))
POW = Op("pow", "**", _pow_forward, _pow_local, _pow_array, _pow_local_array)


def _abs_local(out: Any, x: Any) -> tuple[float]:
    # sign(x), with abs'(0) = 0 as in PyTorch (the subgradient of smallest norm).
    v = float(x)
    return (1.0 if v > 0 else -1.0 if v < 0 else 0.0 if v == 0 else math.nan,)


def _abs_local_array(out: Any, x: Any) -> tuple[Any]:
    # np.sign is 0 at 0 and NaN at NaN, like the float rule; + 0.0 turns sign(-0.0) into 0.0.
    return (np.sign(x) + 0.0,)


ABS = Op("abs", "abs", abs, _abs_local, np.abs, _abs_local_array)


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


def _max_local_array(out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    # As _max_local: 1 / 0 where one is larger, 0.5 / 0.5 on a tie (and where a NaN is).
    da = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
    return da, 1.0 - da


# np.maximum and np.minimum propagate NaN and, on a tie, return the first argument, as
# Python's max and min do (so maximum(-0.0, 0.0) is -0.0 both ways).
MAXIMUM = Op("maximum", "max", _nan_aware(max), _max_local, np.maximum, _max_local_array)
MINIMUM = Op(
    "minimum",
    "min",
    _nan_aware(min),
    lambda out, a, b: _max_local(out, b, a),
    np.minimum,
    lambda out, a, b: _max_local_array(out, b, a),
)

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


def _exp_array(x: Any) -> Any:
    out = np.exp(x)
    _raise_at(
        OverflowError,
        np.isfinite(x) & ~np.isfinite(out),
        "exp: result overflows float64, got input {!r}",
        x,
    )
    return out


def _log_array(x: Any) -> Any:
    _raise_at(
        ValueError,
        ~(x > 0.0) & ~np.isnan(x) & (x != -math.inf),
        "log: input must be > 0, got {!r}",
        x,
    )
    return np.log(x)


def _sqrt_array(x: Any) -> Any:
    _raise_at(ValueError, (x < 0.0) & (x != -math.inf), "sqrt: input must be >= 0, got {!r}", x)
    return np.sqrt(x)


def _sqrt_local(out: Any, x: Any) -> tuple[Any]:
    # 1 / (2 sqrt(x)); infinite at 0, as in PyTorch (a float division by 0.0 would raise).
    if float(out) == 0.0:
        # float() also for a Value under create_graph, where 0.5 / out would raise.
        return (math.inf,)
    return (0.5 / out,)


def _sqrt_local_array(out: Any, x: Any) -> tuple[Any]:
    return (np.where(out == 0.0, math.inf, 0.5 / out),)


EXP = Op("exp", "exp", _exp_forward, lambda out, x: (out,), _exp_array)
LOG = Op("log", "log", _log_forward, lambda out, x: (1.0 / x,), _log_array)
SQRT = Op("sqrt", "sqrt", _sqrt_forward, _sqrt_local, _sqrt_array, _sqrt_local_array)

# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------


def _tanh_local(out: Any, x: Any) -> tuple[Any]:
    # tanh'(x) = sech(x)**2 = 4 e / (1 + e)**2 with e = exp(-2|x|). The textbook 1 - tanh**2
    # cancels to 0.0 for |x| > 19, but tanh'(20) is 1.7e-17. This form never cancels.
    # The identity holds with either sign of the exponent, so the sign is a constant chosen
    # from x (e <= 1, never overflowing) rather than abs(x): abs would put a kink into the
    # rule, and a create_graph pass would then give 0 for the third derivative at 0, not -2.
    e = exp((-2.0 if float(x) >= 0.0 else 2.0) * x)
    return (4.0 * e / (1.0 + e) ** 2,)


def _tanh_local_array(out: Any, x: Any) -> tuple[Any]:
    # The same form; exp(-2|x|) equals the float rule's exp(-+2x) for either sign of x.
    e = np.exp(-2.0 * np.abs(x))
    return (4.0 * e / (1.0 + e) ** 2,)


def _sigmoid_forward(x: float) -> float:
    # Two branches so that exp never overflows (sigmoid(-1000) is 0.0, not an error).
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _sigmoid_local(out: Any, x: Any) -> tuple[Any]:
    # sigmoid' = s(x) * (1 - s(x)) = s(x) * s(-x). The second form keeps full precision
    # where s(x) is near 1 and 1 - s(x) would cancel.
    return (out * sigmoid(-x),)


def _sigmoid_array(x: Any) -> Any:
    # Both branches of _sigmoid_forward at once: with e = exp(-|x|) <= 1, 1 / (1 + e) for
    # x >= 0 and e / (1 + e) below (exp(x) there is e). Never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_local_array(out: Any, x: Any) -> tuple[Any]:
    return (out * _sigmoid_array(-x),)


def _relu_forward(x: float) -> float:
    return x if x > 0.0 or math.isnan(x) else 0.0


def _relu_local(out: Any, x: Any) -> tuple[float]:
    # relu'(0) = 0, as PyTorch and JAX define it: 0 is a valid subgradient there, and it
    # keeps dead units dead instead of waking them at exactly zero.
    return (1.0 if float(x) > 0.0 else 0.0,)


def _relu_array(x: Any) -> Any:
    return np.where((x > 0.0) | np.isnan(x), x, 0.0)


def _relu_local_array(out: Any, x: Any) -> tuple[Any]:
    return (np.asarray(x > 0.0, dtype=np.float64),)


def _leaky_relu_forward(x: float, negative_slope: float) -> float:
    return x if x > 0.0 else x * negative_slope


def _leaky_relu_local(out: Any, x: Any, negative_slope: Any) -> tuple[Any, Any]:
    # At 0 the slope is negative_slope, as in PyTorch's leaky_relu_backward (x > 0 ? 1 : slope).
    if float(x) > 0.0:
        return 1.0, 0.0
    return negative_slope, x


def _leaky_relu_array(x: Any, negative_slope: Any) -> Any:
    return np.where(x > 0.0, x, x * negative_slope)


def _leaky_relu_local_array(out: Any, x: Any, negative_slope: Any) -> tuple[Any, Any]:
    positive = x > 0.0
    return np.where(positive, 1.0, negative_slope), np.where(positive, 0.0, x)


def _elu_forward(x: float, alpha: float) -> float:
    # expm1 keeps precision for x near 0, where exp(x) - 1 would cancel.
    return x if x > 0.0 else alpha * math.expm1(x)


def _elu_local(out: Any, x: Any, alpha: Any) -> tuple[Any, Any]:
    # d/dx alpha (exp(x) - 1) = alpha exp(x); at 0 PyTorch takes this branch too.
    if float(x) > 0.0:
        return 1.0, 0.0
    expm1_x = math.expm1(x) if is_number(x) else exp(x) - 1.0
    return alpha * exp(x), expm1_x


def _elu_array(x: Any, alpha: Any) -> Any:
    # expm1 of min(x, 0): the branch not taken must not overflow.
    return np.where(x > 0.0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _elu_local_array(out: Any, x: Any, alpha: Any) -> tuple[Any, Any]:
    positive = x > 0.0
    below = np.minimum(x, 0.0)
    return np.where(positive, 1.0, alpha * np.exp(below)), np.where(positive, 0.0, np.expm1(below))


_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _ndtr_forward(x: float) -> float:
    # Phi(x) = erfc(-x / sqrt 2) / 2: erfc keeps relative precision in the far left tail.
    return 0.5 * math.erfc(-x * _INV_SQRT2)


def _ndtr_local(out: Any, x: Any) -> tuple[Any]:
    # The standard normal density phi(x) = exp(-x**2 / 2) / sqrt(2 pi).
    return (exp(-0.5 * x * x) * _INV_SQRT2PI,)


# numpy has no erfc; math.erfc element by element keeps the float rule's exact numbers.
_erfc_array = np.frompyfunc(math.erfc, 1, 1)


def _ndtr_array(x: Any) -> Any:
    return 0.5 * np.asarray(_erfc_array(-x * _INV_SQRT2), dtype=np.float64)


def _ndtr_local_array(out: Any, x: Any) -> tuple[Any]:
    return (np.exp(-0.5 * x * x) * _INV_SQRT2PI,)


NDTR = Op("ndtr", "ndtr", _ndtr_forward, _ndtr_local, _ndtr_array, _ndtr_local_array)


def _gelu_forward(x: float) -> float:
    return x * _ndtr_forward(x)


def _gelu_local(out: Any, x: Any) -> tuple[Any]:
    # gelu(x) = x * Phi(x) (Hendrycks & Gimpel 2016, exact form), so gelu' = Phi(x) + x phi(x).
    return (ndtr(x) + x * exp(-0.5 * x * x) * _INV_SQRT2PI,)


def _gelu_array(x: Any) -> Any:
    return x * _ndtr_array(x)


def _gelu_local_array(out: Any, x: Any) -> tuple[Any]:
    return (_ndtr_array(x) + x * np.exp(-0.5 * x * x) * _INV_SQRT2PI,)


def _softplus_forward(x: float) -> float:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, no cancellation.
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _softplus_array(x: Any) -> Any:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


TANH = Op("tanh", "tanh", math.tanh, _tanh_local, np.tanh, _tanh_local_array)
SIGMOID = Op(
    "sigmoid", "sigmoid", _sigmoid_forward, _sigmoid_local, _sigmoid_array, _sigmoid_local_array
)
RELU = Op("relu", "relu", _relu_forward, _relu_local, _relu_array, _relu_local_array)
# The slope and alpha are a second argument, usually a plain number, so one table entry serves
# every setting (and a Value slope would even get its own gradient).
LEAKY_RELU = Op(
    "leaky_relu",
    "leaky_relu",
    _leaky_relu_forward,
    _leaky_relu_local,
    _leaky_relu_array,
    _leaky_relu_local_array,
)
ELU = Op("elu", "elu", _elu_forward, _elu_local, _elu_array, _elu_local_array)
GELU = Op("gelu", "gelu", _gelu_forward, _gelu_local, _gelu_array, _gelu_local_array)
SOFTPLUS = Op(
    "softplus",
    "softplus",
    _softplus_forward,
    lambda out, x: (sigmoid(x),),
    _softplus_array,
    lambda out, x: (_sigmoid_array(x),),
)

# ---------------------------------------------------------------------------------------
# Trigonometry
# ---------------------------------------------------------------------------------------


def _sin_forward(x: float) -> float:
    # math.sin(inf) raises "math domain error"; IEEE (and numpy, PyTorch) give nan.
    return math.sin(x) if math.isfinite(x) else math.nan


def _cos_forward(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


# np.sin and np.cos give NaN at +-inf, as the float forms do.
SIN = Op("sin", "sin", _sin_forward, lambda out, x: (cos(x),), np.sin, lambda out, x: (np.cos(x),))
COS = Op(
    "cos", "cos", _cos_forward, lambda out, x: (-sin(x),), np.cos, lambda out, x: (-np.sin(x),)
)

# ---------------------------------------------------------------------------------------
# N-ary primitives: one node for many inputs
# ---------------------------------------------------------------------------------------


def _sum_forward(*xs: float) -> float:
    return sum(xs, 0.0)


def _logsumexp_forward(*xs: float) -> float:
    # Shift by the maximum so that no exp overflows: logsumexp([1000, 1000]) = 1000 + log 2.
    if any(math.isnan(x) for x in xs):
        return math.nan
    m = max(xs)
    if math.isinf(m):
        return m
    # The term of the maximum is exp(0) = 1 exactly; log1p of the rest keeps full precision
    # when the result is near m (log(1 + 1e-5) would lose five digits to the rounding of 1 + ...).
    return m + math.log1p(math.fsum([*(math.exp(x - m) for x in xs), -1.0]))


def _logsumexp_local(out: Any, *xs: Any) -> tuple[Any, ...]:
    # d/dx_i log sum_j exp(x_j) = softmax_i = exp(x_i - m) / sum_j exp(x_j - m) for any
    # constant m; m = max(x) keeps every exp <= 1, and the division keeps full precision
    # (exp(x_i - out) would carry out's rounding error, about 1e-13 at x = 1000).
    m = max(float(x) for x in xs)
    shifted = [exp(x - m) for x in xs]
    total = sum(shifted)
    return tuple(e / total for e in shifted)


def _logsumexp_array(*xs: Any) -> Any:
    # _logsumexp_forward on columns: the maximum's own term exp(0) = 1 is left out of the
    # sum (the float form's fsum adds it and takes it away again) and log1p adds it back.
    X = np.stack(np.broadcast_arrays(*xs))
    m = X.max(axis=0)
    finite_m = np.where(np.isinf(m), 0.0, m)
    e = np.exp(X - finite_m)
    np.put_along_axis(e, np.argmax(X, axis=0)[None], 0.0, axis=0)
    out = finite_m + np.log1p(e.sum(axis=0))
    out = np.where(np.isinf(m), m, out)
    return np.where(np.isnan(X).any(axis=0), math.nan, out)


def _logsumexp_local_array(out: Any, *xs: Any) -> tuple[Any, ...]:
    X = np.stack(np.broadcast_arrays(*xs))
    shifted = [np.exp(x - X.max(axis=0)) for x in X]
    total = sum(shifted)  # left to right, as the float rule adds them
    return tuple(e / total for e in shifted)


def _linear_forward(*args: float) -> float:
    # args = (b, w_1..w_n, x_1..x_n): a neuron's pre-activation b + sum_i w_i x_i.
    n = (len(args) - 1) // 2
    return args[0] + sum(map(operator.mul, args[1 : n + 1], args[n + 1 :]))


def _linear_local(out: Any, *args: Any) -> tuple[Any, ...]:
    # d/db = 1, d/dw_i = x_i, d/dx_i = w_i.
    n = (len(args) - 1) // 2
    return (1.0, *args[n + 1 :], *args[1 : n + 1])


SUM = Op("sum", "sum", _sum_forward, lambda out, *xs: (1.0,) * len(xs))
LOGSUMEXP = Op(
    "logsumexp",
    "logsumexp",
    _logsumexp_forward,
    _logsumexp_local,
    _logsumexp_array,
    _logsumexp_local_array,
)
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
