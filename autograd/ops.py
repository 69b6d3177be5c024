"""The derivative table: every primitive operation, declared once.

An entry (`Op`) says, for one primitive:

- `name` (messages, `OPS`) and `symbol` (pictures: `"*"` for `mul`), and its `arity`;
- `forward(*floats) -> float`: the value on plain floats. From finite inputs it returns a
  finite float or raises (`ValueError` outside the domain, `ZeroDivisionError`,
  `OverflowError`) naming the op and the operand; NaN and inf inputs propagate as IEEE says;
- `local_grads`: one rule per argument, d(out)/d(that argument). A rule is a number when the
  derivative is a constant (`+` has `(1.0, 1.0)`), else a function `(out, *args)`. Because
  each argument has its own rule, a derivative nobody needs (with respect to a plain number,
  as in `x / 1e-250`) is never computed;
- `formula`: the same derivatives as text for learners (the stepper prints them).

A rule is written with arithmetic and this module's functions (`exp`, `sigmoid`, ...), which
take floats *and* Values. So one rule serves both passes: floats at forward time (the numbers
`backward` multiplies), Values under `create_graph=True` (a derivative that can be
differentiated again). No derivative is written twice.

The table (`OPS`) is at the end of the file: simple rules first, one line each, then the tricky
ones, whose functions are defined just above it with the reason for each. Kinks and singular
points follow PyTorch's float64 results. Read next: `value.py`, which turns entries into nodes.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def is_number(x: object) -> bool:
    """True for a real number a Value may stand beside: int, float, numpy integers and floats.

    bool is excluded on purpose (`True * x` is almost always a mistake), and so are str,
    complex, None, containers and Values. Used everywhere the project accepts a number.
    """
    if type(x) is float:  # the common case, first
        return True
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


@dataclass(frozen=True)
class Op:
    """One primitive: its forward on floats, its local derivatives, their formulas.

    Attributes:
        name: the op's name in messages and in `OPS` (e.g. "mul").
        symbol: how a picture of the graph shows it (e.g. "*").
        arity: the number of arguments; None for n-ary ops (sum, logsumexp, linear: >= 1).
        forward: floats -> float; raises on a domain error (see the module docstring).
        local_grads: one rule per argument (an n-ary op's last rule serves every later
            position). A rule is a number (a constant derivative) or a function: called
            `(out, *args)` for an op of fixed arity, `(i, out, args)` for an n-ary op (it must
            know which argument it differentiates). args and out are floats on the plain
            pass and Values under `create_graph=True`.
        formula: one template per argument (n-ary: the last repeats) for `local_formula`.
        array_forward, array_local_grads: the same on numpy arrays, for the tape; None
            where the float rule works on arrays as it is.
    """

    name: str
    symbol: str
    arity: int | None
    forward: Callable[..., float]
    local_grads: tuple[Any, ...]
    formula: tuple[str, ...]
    array_forward: Callable[..., Any] | None = None
    array_local_grads: tuple[Any, ...] | None = None

    def local_grad(self, i: int, out: Any, args: Sequence[Any]) -> Any:
        """d(out)/d(args[i]) by the rule for argument i (a float, or a Value under create_graph)."""
        rules = self.local_grads
        rule = rules[i] if i < len(rules) else rules[-1]
        if type(rule) is float:  # a constant derivative
            return rule
        return rule(out, *args) if self.arity is not None else rule(i, out, args)

    def local_formula(self, names: list[str], i: int, out: str) -> str:
        """The derivative d(out)/d(argument i) as text, e.g. "b" for mul's first argument.

        Args:
            names: how to write each argument (a Value's name, a number's digits).
            i: the argument's position; out: how to write the node itself.
        Placeholders: `{0}`, `{1}`... the arguments, `{out}` the node, `{i}` argument i,
        `{pair}` linear's partner of argument i (a weight's input, an input's weight).
        """
        template = self.formula[min(i, len(self.formula) - 1)]
        n = (len(names) - 1) // 2
        pair = names[i + n if i <= n else i - n] if self.name == "linear" and i > 0 else ""
        return template.format(*names, out=out, i=names[i], pair=pair)

    def __repr__(self) -> str:
        return f"Op({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by name: the rules are lambdas, which pickle cannot store, and an
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


# =========================================================================================
# IEEE helpers. Python's float arithmetic raises where IEEE 754 gives inf or NaN (1.0 / 0.0,
# 0.0 ** -1.0); a derivative may be infinite (sqrt'(0)), so the rules use these instead.
# =========================================================================================


def _data(x: Any) -> float:
    """The number x stands for: x itself, or a Value's data (rules branch on it)."""
    return x if isinstance(x, float) else x.data if hasattr(x, "data") else float(x)


def _ieee_div(a: Any, b: Any) -> Any:
    """a / b, with IEEE's signed inf or NaN where b == 0 (Python's float `/` raises)."""
    if is_number(b) and b == 0.0 and is_number(a):
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _ieee_power(a: Any, p: Any) -> Any:
    """a ** p: IEEE's inf where a float power is singular or overflows, a node for Values."""
    if not (is_number(a) and is_number(p)):
        if _data(a) == 0.0 and _data(p) < 0.0:
            return _ieee_power(_data(a), _data(p))  # singular under create_graph too: inf
        return a**p
    try:
        return a**p
    except ZeroDivisionError:
        odd_integer = float(p).is_integer() and int(p) % 2 == 1
        return math.copysign(math.inf, a) if odd_integer else math.inf
    except OverflowError:
        return math.inf


# =========================================================================================
# Forwards that need more than Python's operator: domain checks and stable forms.
# =========================================================================================


def _div_forward(a: float, b: float) -> float:
    if b == 0.0:
        if math.isfinite(a):
            raise ZeroDivisionError(f"div: division by zero, got {a!r} / {b!r}")
        return _ieee_div(a, b)  # inf / 0 and nan / 0 propagate as IEEE says, like nan * x
    return a / b


def _pow_forward(a: float, b: float) -> float:
    if a == 0.0 and b < 0.0 and math.isfinite(b):
        raise ZeroDivisionError(f"pow: zero to a negative power, got {a!r} ** {b!r}")
    if a < 0.0 and math.isfinite(a) and math.isfinite(b) and not b.is_integer():
        # Python would return a complex number here; a real engine must not.
        raise ValueError(f"pow: a negative base needs an integer exponent, got {a!r} ** {b!r}")
    try:
        return a**b
    except OverflowError:
        raise OverflowError(f"pow: result overflows float64, got {a!r} ** {b!r}") from None


def _nan_aware(pick: Callable[[float, float], float]) -> Callable[[float, float], float]:
    # max(nan, 1.0) is 1.0 in Python; torch.maximum propagates the NaN, and so do we.
    def forward(a: float, b: float) -> float:
        return a + b if math.isnan(a) or math.isnan(b) else pick(a, b)

    return forward


def _exp_forward(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        raise OverflowError(f"exp: result overflows float64, got input {x!r}") from None


def _log_forward(x: float) -> float:
    if not x > 0.0:
        if math.isnan(x) or x == -math.inf:
            return math.nan  # non-finite inputs propagate: log(nan) = log(-inf) = nan
        raise ValueError(f"log: input must be > 0, got {x!r}")
    return math.log(x)


def _sqrt_forward(x: float) -> float:
    if x == -math.inf:
        return math.nan  # IEEE: sqrt(-inf) is nan, like any non-finite input's result
    if x < 0.0:
        raise ValueError(f"sqrt: input must be >= 0, got {x!r}")
    return math.sqrt(x)


def _sigmoid_forward(x: float) -> float:
    # Two branches so that exp never overflows (sigmoid(-1000) is 0.0, not an error).
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _relu_forward(x: float) -> float:
    return x if x > 0.0 or math.isnan(x) else 0.0


def _leaky_relu_forward(x: float, negative_slope: float) -> float:
    return x if x > 0.0 else x * negative_slope


def _elu_forward(x: float, alpha: float) -> float:
    return x if x > 0.0 else alpha * math.expm1(x)  # expm1: no cancellation near 0


_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _ndtr_forward(x: float) -> float:
    # Phi(x) = erfc(-x / sqrt 2) / 2: erfc keeps relative precision in the far left tail.
    return 0.5 * math.erfc(-x * _INV_SQRT2)


def _gelu_forward(x: float) -> float:
    return x * _ndtr_forward(x)


def _softplus_forward(x: float) -> float:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, no cancellation.
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sin_forward(x: float) -> float:
    # math.sin(inf) raises "math domain error"; IEEE (and numpy, PyTorch) give nan.
    return math.sin(x) if math.isfinite(x) else math.nan


def _cos_forward(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


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
    # The maximum's own term is exp(0) = 1 exactly; log1p of the rest keeps full precision
    # when the result is near m (log(1 + 1e-5) would lose five digits to rounding 1 + ...).
    return m + math.log1p(_fsum([*(math.exp(x - m) for x in xs), -1.0]))


def _linear_forward(*args: float) -> float:
    # args = (b, w_1..w_n, x_1..x_n): a neuron's pre-activation b + sum_i w_i x_i, each
    # product rounded once and the terms summed by _fsum (the same float on every Python).
    if len(args) % 2 == 0:
        raise ValueError(f"linear: needs a bias, n weights and n inputs, got {len(args)} args")
    n = (len(args) - 1) // 2
    return _fsum([args[0], *map(operator.mul, args[1 : n + 1], args[n + 1 :])])


# =========================================================================================
# Tricky rules, each with its reason. The simple ones are one line each in the table below.
# =========================================================================================


def _pow_base_local(out: Any, a: Any, b: Any) -> Any:
    # d/da a**b = b * a**(b-1). PyTorch's convention: d/dx x**0 = 0, even at x = 0. A Value
    # exponent at 0 is masked only where a == 0 too (0 * 0**-1 would be nan): elsewhere
    # b * a**(b-1) is already 0, and keeping it as a graph keeps d2/(da db) = 1/a.
    if _data(b) == 0.0 and (is_number(b) or _data(a) == 0.0):
        return 0.0
    return b * _ieee_power(a, b - 1.0)


def _pow_local(out: Any, a: Any, b: Any) -> Any:
    # d/db a**b = a**b * log(a), defined for a > 0. At a == 0 with b >= 0 PyTorch masks it
    # to 0 (the limit from a > 0 along the exponent). For a < 0 it does not exist: NaN.
    if _data(a) > 0.0:
        return out * log(a)
    if _data(a) == 0.0 and _data(b) >= 0.0:
        return 0.0
    # NaN times the node rather than a constant NaN: under create_graph the derivatives of
    # this NaN (d2/db2, d2/(da db)) must not exist either, and a constant's are 0.
    return math.nan * out


def _abs_local(out: Any, x: Any) -> float:
    # sign(x), with abs'(0) = 0 as in PyTorch (the subgradient of smallest norm).
    v = _data(x)
    return 1.0 if v > 0 else -1.0 if v < 0 else 0.0 if v == 0 else math.nan


def _max_local(out: Any, a: Any, b: Any) -> float:
    # d max(a, b) / da: 1 where a wins, 0 where b wins; a tie splits evenly (torch.maximum).
    return 1.0 if _data(a) > _data(b) else 0.0 if _data(a) < _data(b) else 0.5


def _sqrt_local(out: Any, x: Any) -> Any:
    # 1 / (2 sqrt(x)): infinite at 0, as in PyTorch (a float division by 0.0 would raise).
    return math.inf if _data(out) == 0.0 else 0.5 / out


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
    size = abs(_data(x))
    if size < 1.0:
        return 1.0 - tanh_x**2
    if size > 400.0:
        # 0.0 in float64 from |x| = 373 on, and its derivatives too; here -2 x could even
        # overflow a Value under create_graph (x = 1e308), although the float pass gives 0.
        return 0.0
    e = exp((-2.0 if _data(x) >= 0.0 else 2.0) * x)
    return 4.0 * e / (1.0 + e) ** 2


def _tanh_local(out: Any, x: Any) -> Any:
    # tanh'(x) = sech(x)**2, written so that it and its derivative keep full precision.
    return _sech2(x, out)


def _sigmoid_local(out: Any, x: Any) -> Any:
    # sigmoid'(x) = s(x) s(-x) = sech(x / 2)**2 / 4. The first form keeps full precision
    # where s(x) is near 1 (1 - s(x) would cancel), but its derivative, s'(x) (s(-x) - s(x)),
    # is a difference that cancels near 0 (sigmoid''(1e-9) would keep one digit); there the
    # sech form, as (1 - tanh(x / 2)**2) / 4, has a product for derivative (see _sech2).
    if abs(_data(x)) < 2.0:
        t = tanh(0.5 * x)
        return 0.25 * (1.0 - t**2)
    return out * sigmoid(-x)


def _relu_local(out: Any, x: Any) -> float:
    # relu'(0) = 0, as PyTorch and JAX define it: a valid subgradient that keeps dead units dead.
    return 1.0 if _data(x) > 0.0 else 0.0


def _leaky_relu_local(out: Any, x: Any, negative_slope: Any) -> Any:
    # At 0 the slope is negative_slope, as in PyTorch's leaky_relu_backward (x > 0 ? 1 : slope).
    return 1.0 if _data(x) > 0.0 else negative_slope


def _leaky_relu_slope_local(out: Any, x: Any, negative_slope: Any) -> Any:
    return 0.0 if _data(x) > 0.0 else x


def _elu_local(out: Any, x: Any, alpha: Any) -> Any:
    # d/dx alpha (exp(x) - 1) = alpha exp(x); at 0 PyTorch takes this branch too.
    return 1.0 if _data(x) > 0.0 else alpha * exp(x)


def _elu_alpha_local(out: Any, x: Any, alpha: Any) -> Any:
    if _data(x) > 0.0:
        return 0.0
    # d/d(alpha) = expm1(x). On a Value that is x.elu(1.0) (x <= 0 here), which keeps
    # expm1's precision near 0 where exp(x) - 1 would cancel, and has expm1's derivative.
    return math.expm1(x) if is_number(x) else x.elu(1.0)


def _normal_pdf(x: Any) -> Any:
    # phi(x) = exp(-x**2 / 2) / sqrt(2 pi). Past |x| = 40 it is 0.0 in float64 (below
    # 1e-347), and so are its derivatives; there x * x could overflow a Value (x = 1e300
    # under create_graph) although the float pass gives 0.0.
    if abs(_data(x)) > 40.0:
        return 0.0
    return exp(-0.5 * x * x) * _INV_SQRT2PI


def _ndtr_local(out: Any, x: Any) -> Any:
    # The standard normal density.
    return _normal_pdf(x)


def _gelu_local(out: Any, x: Any) -> Any:
    # gelu(x) = x * Phi(x) (Hendrycks & Gimpel 2016, exact form): gelu' = Phi(x) + x phi(x).
    return ndtr(x) + x * _normal_pdf(x)


def softmax(xs: Sequence[Any]) -> list[Any]:
    """softmax(xs) on floats or Values, precise at any magnitude, to first and second order.

    With x_k the largest: p_k = 1 / (1 + sum_{j != k} exp(x_j - x_k)) and, for the others,
    p_i = exp(x_i - x_k) * p_k. Every exp is <= 1, and no rounded logsumexp enters an
    exponent (exp(x_i - logsumexp) loses all digits at x = 1e16). Under create_graph the
    derivative of p_k comes out as p_k**2 * sum_j exp(x_j - x_k) = p_k (1 - p_k), a product,
    rather than the difference p_k - p_k**2, which is 0.0 when p_k rounds to 1.
    """
    data = [_data(x) for x in xs]
    k = max(range(len(xs)), key=data.__getitem__)  # a NaN anywhere makes every p_i NaN
    # exp(d) is 0.0 below d = -745.2; far below, d itself may overflow a Value under
    # create_graph (-1e308 - 1e308) although the float pass gives 0.0. NaN takes exp.
    others = [
        0.0 if data[j] - data[k] < -746.0 else exp(x - xs[k]) for j, x in enumerate(xs) if j != k
    ]
    p_k = 1.0 / (1.0 + _sum_of(others))
    scaled = iter(others)
    return [p_k if j == k else next(scaled) * p_k for j in range(len(xs))]


def _logsumexp_local(i: int, out: Any, xs: Sequence[Any]) -> Any:
    # d/dx_i log sum_j exp(x_j) = softmax_i(x), precise also to second order (see there).
    # Each argument's rule computes the whole softmax (n exps): fine for the few classes
    # of a classifier, and a derivative nobody needs is still never computed.
    return softmax(xs)[i]


def _linear_local(i: int, out: Any, args: tuple[Any, ...]) -> Any:
    # d/dw_i = x_i and d/dx_i = w_i: each argument's partner (position 0, the bias, has 1).
    n = (len(args) - 1) // 2
    return args[i + n] if i <= n else args[i - n]


# =========================================================================================
# Array forms, for the tape (tape.py): the rules above on numpy float64 arrays holding one
# number per sample (a parameter or a plain number comes as a scalar and broadcasts). Where a
# float rule branches on its input, or calls math, the array form computes every branch and
# picks per sample with np.where; the rest of the table works on arrays as it is. Each array
# form gives the float rule's numbers, to rounding (numpy's exp may differ from libm's by an
# ulp): tests/test_tape.py checks them on random batches and on the kinks. A domain error
# names the first sample that has one, with the float rule's message.
# =========================================================================================


def _raise_at(error: type[Exception], bad: Any, message: str, *shown: Any) -> None:
    """Raise `error(message.format(*values) + " at sample i")` for the first True of `bad`
    (samples along the first axis); `shown` are the arrays to quote that sample's values of."""
    if not np.any(bad):
        return
    bad = np.atleast_1d(bad)
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    values = [float(np.broadcast_to(v, bad.shape)[where]) for v in shown]
    raise error(message.format(*values) + f" at sample {where[0]}")


def _sum_array(terms: Sequence[Any]) -> Any:
    """The sum of arrays, compensated (Neumaier 1974): the correctly rounded sum _fsum gives,
    to an ulp, where a plain sum of n terms may be n ulps off. inf - inf gives NaN, as _fsum."""
    total = np.asarray(terms[0], dtype=np.float64)
    carry = np.zeros_like(total)
    for t in terms[1:]:
        new = total + t
        carry = carry + np.where(np.abs(total) >= np.abs(t), (total - new) + t, (t - new) + total)
        total = new
    out = total + carry
    return np.where(np.isfinite(total), out, total)  # no carry of inf - inf into an inf sum


def _div_array(a: Any, b: Any) -> Any:
    bad = (b == 0.0) & np.isfinite(a)
    _raise_at(ZeroDivisionError, bad, "div: division by zero, got {!r} / {!r}", a, b)
    return np.divide(a, b)


def _pow_array(a: Any, b: Any) -> Any:
    finite = np.isfinite(a) & np.isfinite(b)
    zero_neg = (a == 0.0) & (b < 0.0) & np.isfinite(b)
    _raise_at(ZeroDivisionError, zero_neg, "pow: zero to a negative power, got {!r} ** {!r}", a, b)
    bad = (a < 0.0) & finite & (np.floor(b) != b)
    _raise_at(
        ValueError, bad, "pow: a negative base needs an integer exponent, got {!r} ** {!r}", a, b
    )
    out = np.power(a, b)
    big = finite & ~np.isfinite(out)
    _raise_at(OverflowError, big, "pow: result overflows float64, got {!r} ** {!r}", a, b)
    return out


def _pow_base_local_array(out: Any, a: Any, b: Any) -> Any:
    # _pow_base_local on the plain pass (b a number): 0 where b == 0, else b a**(b-1), with
    # IEEE's inf where that is singular (np.power gives it, as _ieee_power does).
    return np.where(b == 0.0, 0.0, b * np.power(a, b - 1.0))


def _pow_local_array(out: Any, a: Any, b: Any) -> Any:
    positive = a > 0.0
    at_zero = np.where((a == 0.0) & (b >= 0.0), 0.0, math.nan * out)
    return np.where(positive, out * np.log(np.where(positive, a, 1.0)), at_zero)


def _max_local_array(out: Any, a: Any, b: Any) -> Any:
    return np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))


def _exp_array(x: Any) -> Any:
    out = np.exp(x)
    big = np.isfinite(x) & ~np.isfinite(out)
    _raise_at(OverflowError, big, "exp: result overflows float64, got input {!r}", x)
    return out


def _log_array(x: Any) -> Any:
    bad = ~(x > 0.0) & ~np.isnan(x) & (x != -math.inf)
    _raise_at(ValueError, bad, "log: input must be > 0, got {!r}", x)
    return np.log(x)


def _sqrt_array(x: Any) -> Any:
    _raise_at(ValueError, (x < 0.0) & (x != -math.inf), "sqrt: input must be >= 0, got {!r}", x)
    return np.sqrt(x)


def _sech2_array(x: Any, tanh_x: Any) -> Any:
    # _sech2's forms, picked per sample; exp(-2|x|) is the float rule's exp(-+2x).
    size = np.abs(x)
    e = np.exp(-2.0 * size)
    far = np.where(size > 400.0, 0.0, 4.0 * e / (1.0 + e) ** 2)
    return np.where(size < 1.0, 1.0 - tanh_x**2, far)


def _sigmoid_array(x: Any) -> Any:
    # Both branches of _sigmoid_forward: with e = exp(-|x|) <= 1, 1 / (1 + e) for x >= 0
    # and e / (1 + e) below (where exp(x) is e). Never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_local_array(out: Any, x: Any) -> Any:
    # _sigmoid_local's two forms: (1 - tanh(x / 2)**2) / 4 below |x| = 2, s(x) s(-x) above.
    t = np.tanh(0.5 * x)
    return np.where(np.abs(x) < 2.0, 0.25 * (1.0 - t**2), out * _sigmoid_array(-x))


def _relu_array(x: Any) -> Any:
    # np.maximum propagates NaN and, on a tie, returns its first argument: 0.0 first, so
    # relu(-0.0) is 0.0, as the float rule gives. One pass over the array.
    return np.maximum(0.0, x)


def _elu_array(x: Any, alpha: Any) -> Any:
    # expm1 of min(x, 0): the branch not taken must not overflow.
    return np.where(x > 0.0, x, alpha * np.expm1(np.minimum(x, 0.0)))


# numpy has no erfc: math.erfc sample by sample keeps the float rule's exact numbers.
_erfc_array = np.frompyfunc(math.erfc, 1, 1)


def _ndtr_array(x: Any) -> Any:
    return 0.5 * np.asarray(_erfc_array(-x * _INV_SQRT2), dtype=np.float64)


def _normal_pdf_array(x: Any) -> Any:
    return np.where(np.abs(x) > 40.0, 0.0, np.exp(-0.5 * x * x) * _INV_SQRT2PI)


def _softplus_array(x: Any) -> Any:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _softmax_array(xs: Sequence[Any]) -> list[Any]:
    # softmax's form on columns: with x_k the largest, p_k = 1 / (1 + sum_{j != k} e_j) and
    # p_i = e_i p_k, e_j = exp(x_j - x_k) (0 below -746, and 0 for k itself in the sum).
    X = np.stack(np.broadcast_arrays(*xs)).astype(np.float64)
    k = np.argmax(X, axis=0)[None]
    d = X - np.take_along_axis(X, k, axis=0)
    e = np.where(d < -746.0, 0.0, np.exp(d))
    np.put_along_axis(e, k, 0.0, axis=0)
    p_k = 1.0 / (1.0 + _sum_array(list(e)))
    p = e * p_k
    np.put_along_axis(p, k, p_k[None], axis=0)
    return list(p)


# The tape asks a row's n-ary rule for every argument in turn, with the same `out`; the
# softmax of all arguments is computed once for them and kept here until the next row.
_SOFTMAX_MEMO: list[Any] = [None, None]


def _logsumexp_local_array(i: int, out: Any, xs: Sequence[Any]) -> Any:
    if _SOFTMAX_MEMO[0] is not out:
        _SOFTMAX_MEMO[:] = [out, _softmax_array(xs)]
    return _SOFTMAX_MEMO[1][i]


def _logsumexp_array(*xs: Any) -> Any:
    # _logsumexp_forward on columns: m + log1p(sum of the other terms exp(x_j - m)).
    X = np.stack(np.broadcast_arrays(*xs)).astype(np.float64)
    m = X.max(axis=0)
    finite_m = np.where(np.isinf(m), 0.0, m)
    e = np.exp(X - finite_m)
    np.put_along_axis(e, np.argmax(X, axis=0)[None], 0.0, axis=0)
    out = np.where(np.isinf(m), m, finite_m + np.log1p(_sum_array(list(e))))
    return np.where(np.isnan(X).any(axis=0), math.nan, out)


def _linear_array(*args: Any) -> Any:
    n = (len(args) - 1) // 2
    return _sum_array([args[0], *map(operator.mul, args[1 : n + 1], args[n + 1 :])])


# =========================================================================================
# THE TABLE.   name, symbol, arity, forward, local derivative per argument, formula per argument
# =========================================================================================

# fmt: off
_TABLE = (
    # -- simple rules, one line each ------------------------------------------------------
    Op("add", "+", 2, operator.add, (1.0, 1.0), ("1", "1")),
    Op("sub", "-", 2, operator.sub, (1.0, -1.0), ("1", "-1")),
    Op("mul", "*", 2, operator.mul, (lambda out, a, b: b, lambda out, a, b: a), ("{1}", "{0}")),
    Op("div", "/", 2, _div_forward, (lambda out, a, b: _ieee_div(1.0, b), lambda out, a, b: _ieee_div(-out, b)), ("1 / {1}", "-{0} / {1}**2"), array_forward=_div_array),  # noqa: E501
    Op("neg", "-", 1, operator.neg, (-1.0,), ("-1",)),
    Op("exp", "exp", 1, _exp_forward, (lambda out, x: out,), ("exp({0}), the output itself",), array_forward=_exp_array),  # noqa: E501
    Op("log", "log", 1, _log_forward, (lambda out, x: 1.0 / x,), ("1 / {0}",), array_forward=_log_array),  # noqa: E501
    Op("sin", "sin", 1, _sin_forward, (lambda out, x: cos(x),), ("cos({0})",), array_forward=np.sin, array_local_grads=(lambda out, x: np.cos(x),)),  # noqa: E501
    Op("cos", "cos", 1, _cos_forward, (lambda out, x: -sin(x),), ("-sin({0})",), array_forward=np.cos, array_local_grads=(lambda out, x: -np.sin(x),)),  # noqa: E501
    Op("softplus", "softplus", 1, _softplus_forward, (lambda out, x: sigmoid(x),), ("sigmoid({0})",), array_forward=_softplus_array, array_local_grads=(lambda out, x: _sigmoid_array(x),)),  # noqa: E501
    Op("sum", "sum", None, _sum_forward, (1.0,), ("1",), array_forward=lambda *xs: _sum_array(xs)),
    # -- tricky rules, defined above with their reasons -----------------------------------
    Op("pow", "**", 2, _pow_forward, (_pow_base_local, _pow_local), ("{1} * {0}**({1} - 1)", "{0}**{1} * log({0})"), array_forward=_pow_array, array_local_grads=(_pow_base_local_array, _pow_local_array)),  # noqa: E501
    Op("abs", "abs", 1, abs, (_abs_local,), ("sign({0})",), array_local_grads=(lambda out, x: np.sign(x) + 0.0,)),  # noqa: E501
    Op("maximum", "max", 2, _nan_aware(max), (_max_local, lambda out, a, b: _max_local(out, b, a)), ("1 if {0} > {1} else 0", "1 if {1} > {0} else 0"), array_forward=np.maximum, array_local_grads=(_max_local_array, lambda out, a, b: _max_local_array(out, b, a))),  # noqa: E501
    Op("minimum", "min", 2, _nan_aware(min), (lambda out, a, b: _max_local(out, b, a), _max_local), ("1 if {0} < {1} else 0", "1 if {1} < {0} else 0"), array_forward=np.minimum, array_local_grads=(lambda out, a, b: _max_local_array(out, b, a), _max_local_array)),  # noqa: E501
    Op("sqrt", "sqrt", 1, _sqrt_forward, (_sqrt_local,), ("1 / (2 * sqrt({0}))",), array_forward=_sqrt_array, array_local_grads=(lambda out, x: np.where(out == 0.0, math.inf, 0.5 / out),)),  # noqa: E501
    Op("tanh", "tanh", 1, math.tanh, (_tanh_local,), ("1 - tanh({0})**2",), array_forward=np.tanh, array_local_grads=(lambda out, x: _sech2_array(x, out),)),  # noqa: E501
    Op("sigmoid", "sigmoid", 1, _sigmoid_forward, (_sigmoid_local,), ("{out} * (1 - {out})",), array_forward=_sigmoid_array, array_local_grads=(_sigmoid_local_array,)),  # noqa: E501
    Op("relu", "relu", 1, _relu_forward, (_relu_local,), ("1 if {0} > 0 else 0",), array_forward=_relu_array, array_local_grads=(lambda out, x: np.where(x > 0.0, 1.0, 0.0),)),  # noqa: E501
    Op("leaky_relu", "leaky_relu", 2, _leaky_relu_forward, (_leaky_relu_local, _leaky_relu_slope_local), ("1 if {0} > 0 else {1}", "0 if {0} > 0 else {0}"), array_forward=lambda x, s: np.where(x > 0.0, x, x * s), array_local_grads=(lambda out, x, s: np.where(x > 0.0, 1.0, s), lambda out, x, s: np.where(x > 0.0, 0.0, x))),  # noqa: E501
    Op("elu", "elu", 2, _elu_forward, (_elu_local, _elu_alpha_local), ("1 if {0} > 0 else {1} * exp({0})", "0 if {0} > 0 else exp({0}) - 1"), array_forward=_elu_array, array_local_grads=(lambda out, x, a: np.where(x > 0.0, 1.0, a * np.exp(np.minimum(x, 0.0))), lambda out, x, a: np.where(x > 0.0, 0.0, np.expm1(np.minimum(x, 0.0))))),  # noqa: E501
    Op("ndtr", "ndtr", 1, _ndtr_forward, (_ndtr_local,), ("exp(-{0}**2 / 2) / sqrt(2 pi)",), array_forward=_ndtr_array, array_local_grads=(lambda out, x: _normal_pdf_array(x),)),  # noqa: E501
    Op("gelu", "gelu", 1, _gelu_forward, (_gelu_local,), ("Phi({0}) + {0} * phi({0})",), array_forward=lambda x: x * _ndtr_array(x), array_local_grads=(lambda out, x: _ndtr_array(x) + x * _normal_pdf_array(x),)),  # noqa: E501
    Op("logsumexp", "logsumexp", None, _logsumexp_forward, (_logsumexp_local,), ("exp({i} - {out})",), array_forward=_logsumexp_array, array_local_grads=(_logsumexp_local_array,)),  # noqa: E501
    Op("linear", "w·x+b", None, _linear_forward, (1.0, _linear_local), ("1", "{pair}"), array_forward=_linear_array),  # noqa: E501
)
# fmt: on

#: Every primitive by name. The engine, the stepper, the expression parser, draw_dot and the
#: hypothesis strategies all read ops from here.
OPS: dict[str, Op] = {op.name: op for op in _TABLE}

# =========================================================================================
# Functions that take plain numbers (float result) or Values (graph node). The rules above
# call these; `autograd` re-exports them; numpy's np.tanh on object arrays of Values calls
# the Value methods of the same names.
# =========================================================================================


def _call(name: str, x: Any, float_forward: Callable[[float], float]) -> Any:
    """Apply a unary op to a number (float result) or to a Value (graph node)."""
    if type(x) is float:
        return float_forward(x)
    if is_number(x):
        return float_forward(float(x))
    method = getattr(x, name, None)
    if method is None:
        raise TypeError(f"{name}: expected a number or a Value, got {type(x).__name__}")
    return method()


def exp(x: Any) -> Any:
    """e**x. Number -> float, Value -> Value. Raises OverflowError past x ~ 709.78."""
    return _call("exp", x, _exp_forward)


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
