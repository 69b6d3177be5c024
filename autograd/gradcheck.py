"""`gradcheck` and `gradgradcheck`: derivatives checked against central finite differences.

For each input x_i the engine's derivative (the "analytic" value) is compared with

    numeric = (f(..., x_i + h, ...) - f(..., x_i - h, ...)) / (2 h)

with the step h = eps_machine**(1/3) * max(1, |x_i|). That step balances the two errors of
a central difference: truncation, about h**2 |f'''| / 6, and rounding, about
eps_machine |f| / h; their sum is smallest near h = eps_machine**(1/3) (Nocedal & Wright,
"Numerical Optimization", 2nd ed., section 8.1). Scaling by |x_i| keeps the step
meaningful for large inputs.

On a mismatch a `GradcheckError` shows one row per input, the two values side by side (as
PyTorch's gradcheck does), with the absolute and relative error.

Kinks. Where f has a kink within the step of x_i (relu or abs near 0, a maximum near a
tie), the central difference averages two slopes and says nothing about the derivative at
x_i. The check recognises this: the jump between the one-sided differences
(f(x+h) - f(x)) / h and (f(x) - f(x-h)) / h does not shrink when h is halved, as it would for
a smooth f. The row is then marked "kink", and the analytic value passes if it lies between
the two one-sided differences (any value there is a valid one-sided derivative or
subgradient); a passing kink is reported by a `KinkWarning`.

Read next: `testing.py`, which draws random expressions and checks them with this module.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import engine, ops
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .value import Value

__all__ = ["GradcheckError", "KinkWarning", "gradcheck", "gradgradcheck"]

#: eps_machine**(1/3), about 6.06e-6: the central-difference step for |x| <= 1.
DEFAULT_STEP = sys.float_info.epsilon ** (1.0 / 3.0)


class GradcheckError(AssertionError):
    """Analytic and numeric derivatives differ; the message is the side-by-side table.

    A subclass of AssertionError, so a failing check reads as a failed assertion in pytest.
    The table's rows are in `.rows`.
    """

    def __init__(self, message: str, rows: Sequence[Row] = ()) -> None:
        super().__init__(message)
        self.rows = tuple(rows)


class KinkWarning(UserWarning):
    """A derivative was checked at a kink and passed only as a one-sided derivative."""


@dataclass(frozen=True)
class Row:
    """One compared derivative.

    Attributes:
        name: what is differentiated, e.g. "x" or "input 1", or "d/d(x) d/d(y)" for gradgradcheck.
        point: the input's value.
        analytic: the engine's derivative.
        numeric: the central difference.
        abs_error: |analytic - numeric|.
        rel_error: abs_error / |numeric| (inf when numeric is 0 and analytic is not).
        status: "ok", "MISMATCH", "kink" (passed as a one-sided derivative) or "KINK" (the
            analytic value lies outside the one-sided differences).
        one_sided: (backward, forward) one-sided differences.
    """

    name: str
    point: float
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    status: str
    one_sided: tuple[float, float]

    @property
    def passed(self) -> bool:
        return self.status in ("ok", "kink")


def gradcheck(
    f: Callable[..., Any],
    inputs: float | Value | Sequence[float | Value],
    *,
    eps: float | None = None,
    atol: float = 1e-8,
    rtol: float = 1e-5,
    raise_exception: bool = True,
) -> bool:
    """Check f's gradient against central finite differences, input by input.

    Args:
        f: a function of len(inputs) scalars returning one scalar Value. It is called with
            leaf Values, so it may use Value methods (`x.tanh()`) and `autograd` functions.
        inputs: the point, as numbers (or Values, whose `.data` is used).
        eps: the step. None (the default) means eps_machine**(1/3) * max(1, |x_i|) per input,
            about 6e-6 near 1 (see the module docstring). PyTorch's gradcheck uses a fixed
            eps=1e-6; JAX's check_grads a fixed eps=1e-4, along one random direction.
        atol, rtol: the check is |analytic - numeric| <= atol + rtol * |numeric|, elementwise
            like numpy.allclose and torch.allclose. The defaults (1e-8, 1e-5) are numpy's
            allclose defaults and are much tighter than PyTorch's gradcheck (atol=1e-5,
            rtol=1e-3) and JAX's check_grads (atol = rtol = 1e-5 for float64): in float64,
            with the step above, smooth functions agree to about 1e-10 relative, so a looser
            check would let small rule errors through.
        raise_exception: raise GradcheckError on a mismatch (default), or return False.

    Returns:
        True when every derivative matches (kinks passing as one-sided derivatives issue a
        KinkWarning); False on a mismatch if raise_exception is False.

    Raises:
        GradcheckError: on a mismatch, with the table of every input.
        TypeError: f returns something other than one scalar Value (the message says what).
        ValueError: an input is not finite (inf or nan), or there are no inputs.
    """
    point = _as_point(inputs, "gradcheck")
    names = _names(inputs, len(point))
    rows = _check_first_order(f, point, names, eps, atol, rtol, "gradcheck")
    return _report(rows, "gradcheck", atol, rtol, raise_exception)


def gradgradcheck(
    f: Callable[..., Any],
    inputs: float | Value | Sequence[float | Value],
    *,
    eps: float | None = None,
    atol: float = 1e-8,
    rtol: float = 1e-5,
    raise_exception: bool = True,
) -> bool:
    """Check f's second derivatives: the Hessian from `create_graph=True` against differences.

    Entry (i, j) of the analytic Hessian (the gradient of the graph of df/dx_i) is compared
    with the central difference of the engine's first derivative df/dx_i in x_j. PyTorch's
    gradgradcheck checks the same thing for tensors (through vector-Jacobian products).

    Args and defaults as for `gradcheck`; the table has one row per pair (i, j), named
    "d/d(x_j) d/d(x_i)".

    Returns:
        True when every second derivative matches; False on a mismatch if raise_exception
        is False.

    Raises:
        GradcheckError, TypeError, ValueError: as for `gradcheck`.
    """
    point = _as_point(inputs, "gradgradcheck")
    names = _names(inputs, len(point))
    rows: list[Row] = []
    for i, name in enumerate(names):

        def df_dxi(*xs: Value, i: int = i) -> Value:
            # With recording on (the analytic pass) the derivative is a graph; with it off
            # (the finite differences) it is the plain float backward pass.
            create_graph = is_grad_enabled()
            with enable_grad():
                out = _call_scalar(f, xs, "gradgradcheck")
                (g,) = engine.grad(out, xs[i], create_graph=create_graph, allow_unused=True)
            return g if isinstance(g, Value) else Value(0.0 if g is None else g)

        row_names = [f"d/d({n}) d/d({name})" for n in names]
        rows += _check_first_order(df_dxi, point, row_names, eps, atol, rtol, "gradgradcheck")
    return _report(rows, "gradgradcheck", atol, rtol, raise_exception)


# ---------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------


def _check_first_order(
    f: Callable[..., Any],
    point: list[float],
    names: Sequence[str],
    eps: float | None,
    atol: float,
    rtol: float,
    where: str,
) -> list[Row]:
    xs = [Value(x) for x in point]
    out = _call_scalar(f, xs, where)
    analytic = [0.0 if g is None else float(g) for g in engine.grad(out, xs, allow_unused=True)]

    def value_at(i: int, x_i: float) -> float:
        shifted = list(point)
        shifted[i] = x_i
        # Only values are needed here, so no graph is recorded.
        with no_grad():
            return _call_scalar(f, [Value(x) for x in shifted], where).data

    rows = []
    for i, x in enumerate(point):
        h = eps if eps is not None else DEFAULT_STEP * max(1.0, abs(x))
        # Step to representable neighbours and divide by the step actually taken.
        up, down = x + h, x - h
        f_up, f_mid, f_down = value_at(i, up), out.data, value_at(i, down)
        numeric = (f_up - f_down) / (up - down)
        forward, backward = (f_up - f_mid) / (up - x), (f_mid - f_down) / (x - down)
        a = analytic[i]
        abs_error = abs(a - numeric)
        rel_error = abs_error / abs(numeric) if numeric != 0 else (0.0 if a == 0 else math.inf)
        close = abs_error <= atol + rtol * abs(numeric)
        status = "ok" if close else "MISMATCH"
        if not close and _is_kink(value_at, i, x, h, f_mid, forward, backward, atol, rtol):
            low, high = min(forward, backward), max(forward, backward)
            slack = atol + rtol * max(abs(low), abs(high))
            status = "kink" if low - slack <= a <= high + slack else "KINK"
        rows.append(Row(names[i], x, a, numeric, abs_error, rel_error, status, (backward, forward)))
    return rows


def _is_kink(
    value_at: Callable[[int, float], float],
    i: int,
    x: float,
    h: float,
    f_mid: float,
    forward: float,
    backward: float,
    atol: float,
    rtol: float,
) -> bool:
    """Whether the one-sided differences jump like a kink rather than curve like a smooth f.

    For a smooth f, forward - backward = h f''(x) + O(h**2): it halves with the step. At a
    kink within the step it stays (or grows, if the kink lies between h/2 and h).
    """
    jump = forward - backward
    if abs(jump) <= atol + rtol * max(abs(forward), abs(backward)):
        return False
    half = h / 2
    up, down = x + half, x - half
    half_jump = (value_at(i, up) - f_mid) / (up - x) - (f_mid - value_at(i, down)) / (x - down)
    return abs(jump - 2 * half_jump) > 0.25 * abs(jump)


def _report(rows: list[Row], where: str, atol: float, rtol: float, raise_exception: bool) -> bool:
    failed = [r for r in rows if not r.passed]
    if failed:
        message = (
            f"{where}: analytic and numeric derivatives differ for {len(failed)} of "
            f"{len(rows)} (atol={atol:g}, rtol={rtol:g})\n" + format_table(rows)
        )
        if raise_exception:
            raise GradcheckError(message, rows)
        return False
    if any(r.status == "kink" for r in rows):
        warnings.warn(
            KinkWarning(
                f"{where}: a kink lies within the finite-difference step; the analytic value "
                "passed as a one-sided derivative\n" + format_table(rows)
            ),
            stacklevel=3,
        )
    return True


def format_table(rows: Sequence[Row]) -> str:
    """The side-by-side table: one row per derivative, columns aligned."""
    header = ("input", "value", "analytic", "numeric", "abs error", "rel error", "status")
    lines = [header]
    for r in rows:
        status = r.status
        if status in ("kink", "KINK"):
            status += f" (one-sided {r.one_sided[0]:.6g} .. {r.one_sided[1]:.6g})"
        lines.append(
            (
                r.name,
                f"{r.point:.6g}",
                f"{r.analytic:.12g}",
                f"{r.numeric:.12g}",
                f"{r.abs_error:.3g}",
                f"{r.rel_error:.3g}",
                status,
            )
        )
    widths = [max(len(line[k]) for line in lines) for k in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1]
        for line in lines
    )


# ---------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------


def _as_point(inputs: Any, where: str) -> list[float]:
    items = [inputs] if isinstance(inputs, Value) or ops.is_number(inputs) else list(inputs)
    if not items:
        raise ValueError(f"{where}: inputs is empty; give the point to check at")
    point = []
    for i, x in enumerate(items):
        if isinstance(x, Value):
            x = x.data
        if not ops.is_number(x):
            raise TypeError(f"{where}: input {i} must be a number, got {type(x).__name__}")
        x = float(x)
        if not math.isfinite(x):
            raise ValueError(f"{where}: input {i} must be finite, got {x!r}")
        point.append(x)
    return point


def _names(inputs: Any, n: int) -> list[str]:
    items = [inputs] if isinstance(inputs, Value) or ops.is_number(inputs) else list(inputs)
    return [
        x.label if isinstance(x, Value) and x.label else f"input {i}"
        for i, x in enumerate(items[:n])
    ]


def _call_scalar(f: Callable[..., Any], xs: Sequence[Value], where: str) -> Value:
    out = f(*xs)
    if isinstance(out, Value):
        return out
    if ops.is_number(out):
        raise TypeError(
            f"{where}: f must return a scalar Value, got {type(out).__name__} {out!r}: a plain "
            "number has no graph (did f compute with math.* instead of autograd.*?)"
        )
    if isinstance(out, (list, tuple)):
        what = f"a {type(out).__name__} of length {len(out)}"
    elif isinstance(out, np.ndarray):
        what = f"a numpy array of shape {out.shape}"
    else:
        what = f"{type(out).__name__} {out!r}"
    raise TypeError(f"{where}: f must return one scalar Value, got {what}")
