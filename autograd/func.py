"""Function transforms: `grad(f)`, `value_and_grad(f)`, `hessian(f)`, `derivative(f, order=n)`.

`engine.grad` differentiates a graph that already exists. The transforms here differentiate a
*Python function*: they call it on fresh leaf Values, build its graph, and return the
derivative as a new function (the names and argument conventions of `torch.func` and JAX):

    >>> from autograd import tanh
    >>> from autograd.func import grad
    >>> d2 = grad(grad(tanh))      # tanh''
    >>> round(d2(0.3), 12)
    -0.533181878201

How composition works. A transform called with plain floats returns floats. Called with
Values (which is what an outer transform passes in), it differentiates with
`create_graph=True` and returns Values whose graph reaches back to those Values, so the outer
transform can differentiate the result again. Each Value argument first gets its own identity
node (`x + 0.0`), so an inner transform differentiates with respect to *its* argument only;
without it `grad(lambda x: grad(lambda y: x * y)(x))` would mix up x and y (the "perturbation
confusion" of nested forward-mode AD) and give 2 instead of 1.

Read next: `gradcheck.py`, which checks these derivatives against finite differences.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import engine, ops
from .grad_mode import enable_grad, is_grad_enabled
from .value import Value, apply

__all__ = ["derivative", "grad", "hessian", "value_and_grad"]


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The gradient of a scalar function, as a function (`jax.grad`, `torch.func.grad`).

    Args:
        f: a function of scalars (floats or Values) returning one scalar (a Value, or a plain
            number when it does not depend on its arguments).
        argnums: which positional argument to differentiate: an int gives one gradient, a
            tuple of ints gives a tuple of gradients, as in JAX.

    Returns:
        A function with f's signature returning d f / d args[argnums]. Floats when called with
        floats; Values with a graph when called with any Value, or when f's result depends on
        Values other than its arguments (so `grad(grad(f))` and closures over an outer
        transform's variable work). Inside `no_grad()` the derivative is still computed (a
        transform ignores an enclosing no_grad, as in torch.func) but returned as floats.

    Raises:
        TypeError: f returns something other than a scalar; argnums is not an int or tuple.
        ValueError: argnums is out of range for the call.
    """
    vg = value_and_grad(f, argnums)

    def grad_f(*args: Any) -> Any:
        return vg(*args)[1]

    _name_like(grad_f, f, "grad")
    return grad_f


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """f and its gradient in one pass, as a function (`jax.value_and_grad`).

    Args:
        f: as for `grad`; with `has_aux=True` it returns a pair `(output, aux)` and only the
            output is differentiated.
        argnums: an int or a tuple of ints (see `grad`).
        has_aux: whether f returns `(output, aux)`.

    Returns:
        A function returning `(value, gradient)`, or `((value, aux), gradient)` with has_aux
        (JAX's order; torch.func.grad_and_value puts the gradient first). The value is a float
        or a Value by the same rule as the gradient (see `grad`); aux is passed through as is.

    Raises:
        TypeError, ValueError: as for `grad`; TypeError also when has_aux=True and f does not
        return a pair.
    """
    single, positions = _check_argnums(argnums)

    def value_and_grad_f(*args: Any) -> Any:
        recording = is_grad_enabled()
        with enable_grad(), _transform_level() as level:
            call_args, wrt = _prepare(args, positions, level)
            result = f(*call_args)
            if has_aux:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise TypeError(
                        f"value_and_grad: with has_aux=True, f must return (output, aux), "
                        f"got {_describe(result)}"
                    )
                out, aux = result
            else:
                out, aux = result, None
            out = _as_scalar_output(out, "value_and_grad", level)
            keep_graph = recording and _needs_graph(args, out, level)
            grads = _gradients(out, wrt, keep_graph, level)
        value: Any = out if keep_graph else _to_float(out)
        g = grads[0] if single else tuple(grads)
        return ((value, aux), g) if has_aux else (value, g)

    _name_like(value_and_grad_f, f, "value_and_grad")
    return value_and_grad_f


def hessian(f: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """The matrix of second derivatives of a scalar function of n scalars.

    Differentiates with respect to every positional argument (JAX's `hessian(f, argnums=(0,
    ..., n-1))`, laid out as one matrix instead of nested tuples).

    Args:
        f: a function of n scalars returning one scalar (as for `grad`).

    Returns:
        A function returning an (n, n) numpy array H with H[i, j] = d2f / dx_i dx_j: dtype
        float64 when called with floats, dtype object (Values with a graph, so third
        derivatives work) when called with Values. Each entry is computed by reverse mode and
        is not symmetrised, so H - H.T shows any asymmetry in the derivative rules.

    Raises:
        TypeError: f returns something other than a scalar.
        ValueError: f is called with no arguments.
    """

    def hessian_f(*args: Any) -> np.ndarray:
        if not args:
            raise ValueError("hessian: f needs at least one argument to differentiate")
        recording = is_grad_enabled()
        with enable_grad(), _transform_level() as level:
            call_args, wrt = _prepare(args, tuple(range(len(args))), level)
            out = _as_scalar_output(f(*call_args), "hessian", level)
            first = _gradients(out, wrt, True, level)
            keep_graph = recording and _needs_graph(args, out, level)
            rows = [_gradients(g, wrt, keep_graph, level) for g in first]
        if keep_graph:
            h = np.empty((len(args), len(args)), dtype=object)
            for i, row in enumerate(rows):
                for j, entry in enumerate(row):
                    h[i, j] = entry
            return h
        return np.array([[_to_float(e) for e in row] for row in rows], dtype=np.float64)

    _name_like(hessian_f, f, "hessian")
    return hessian_f


def derivative(f: Callable[[Any], Any], order: int = 1) -> Callable[[Any], Any]:
    """The n-th derivative of a scalar function of one scalar: `grad` applied `order` times.

    Args:
        f: a function of one scalar returning one scalar.
        order: how many times to differentiate, an int >= 0 (0 returns f's value).

    Returns:
        A function x -> f^(order)(x); floats or Values by the rule of `grad`. The cost grows
        with the order, since each derivative is a graph built from the one before.

    Raises:
        ValueError: order is negative; TypeError: order is not an int.
    """
    if not isinstance(order, int) or isinstance(order, bool):
        raise TypeError(f"derivative: order must be an int, got {type(order).__name__}")
    if order < 0:
        raise ValueError(f"derivative: order must be >= 0, got {order}")
    d = f
    for _ in range(order):
        d = grad(d)
    if order == 0:

        def value_f(x: Any) -> Any:
            out = f(x)
            return out if isinstance(out, Value) and isinstance(x, Value) else _to_float(out)

        return value_f
    return d


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _check_argnums(argnums: int | Sequence[int]) -> tuple[bool, tuple[int, ...]]:
    """(True, (i,)) for an int, (False, positions) for a tuple or list of ints."""
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        return True, (argnums,)
    if (
        isinstance(argnums, (tuple, list))
        and argnums
        and all(isinstance(i, int) and not isinstance(i, bool) for i in argnums)
    ):
        return False, tuple(argnums)
    raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")


class _Internal(Value):
    """A Value a transform made for itself: a variable for a float argument, or a constant.

    `level` is the nesting depth of the transform call that made it (1 for the outermost).
    A transform at level L treats Internal leaves of level >= L as its own (they come from
    this call or from inner calls that have finished), and any other leaf as "outside".
    """

    __slots__ = ("level",)

    def __init__(self, data: float, level: int) -> None:
        super().__init__(data)
        self.level = level


_level: contextvars.ContextVar[int] = contextvars.ContextVar("chainrule_func_level", default=0)


@contextlib.contextmanager
def _transform_level() -> Iterator[int]:
    """Enter one more level of transform nesting; yields this call's level."""
    level = _level.get() + 1
    token = _level.set(level)
    try:
        yield level
    finally:
        _level.reset(token)


def _prepare(
    args: tuple[Any, ...], positions: tuple[int, ...], level: int
) -> tuple[list[Any], list[Value]]:
    """Replace each differentiated argument by a fresh Value; return (call args, those Values).

    A float becomes a new leaf. A Value becomes a new identity node `x + 0.0` on top of it:
    the gradient is taken with respect to that node (this call's own variable), while the
    graph still reaches x, so an outer transform can differentiate through it.
    """
    call_args = list(args)
    wrt: list[Value] = []
    for i in positions:
        if not -len(args) <= i < len(args):
            raise ValueError(f"argnums {i} is out of range for a call with {len(args)} argument(s)")
        if i < 0:
            i += len(args)
        x = args[i]
        if isinstance(x, Value):
            fresh = apply(ops.OPS["add"], x, 0.0)
        elif ops.is_number(x):
            fresh = _Internal(float(x), level)
        else:
            raise TypeError(
                f"argument {i} must be a number or a Value to be differentiated, got {_describe(x)}"
            )
        call_args[i] = fresh
        wrt.append(fresh)
    return call_args, wrt


def _as_scalar_output(out: Any, where: str, level: int) -> Value:
    """f's result as a Value: a plain number is a constant; anything else is a TypeError."""
    if isinstance(out, Value):
        return out
    if ops.is_number(out):
        return _Internal(float(out), level)
    raise TypeError(f"{where}: f must return a scalar (a Value or a number), got {_describe(out)}")


def _needs_graph(args: tuple[Any, ...], out: Value, level: int) -> bool:
    """Whether results must stay Values: a Value argument, or an outside Value in f's graph.

    "Outside" is any leaf of out's graph that this call (or a finished inner call) did not
    make: a Value that f closed over (an outer transform's variable) or made as a constant.
    """
    if any(isinstance(a, Value) for a in args):
        return True
    return any(
        node.is_leaf and not (isinstance(node, _Internal) and node.level >= level)
        for node in engine.topological_order(out)
    )


def _gradients(out: Value, wrt: list[Value], keep_graph: bool, level: int) -> list[Any]:
    """d out / d x for each x in wrt: Values if keep_graph, else floats; unused -> 0.

    A gradient that is a constant (a leaf, e.g. d(3x)/dx) is returned as this call's own
    constant, so an outer transform knows it depends on nothing outside.
    """
    grads = engine.grad(out, wrt, create_graph=keep_graph, allow_unused=True)
    if keep_graph:
        return [
            _Internal(0.0 if g is None else g.data, level) if g is None or g.is_leaf else g
            for g in grads
        ]
    return [0.0 if g is None else float(g) for g in grads]


def _to_float(x: Any) -> float:
    return x.data if isinstance(x, Value) else float(x)


def _describe(x: Any) -> str:
    """A short description of a returned object for error messages."""
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {x.shape}"
    if isinstance(x, Value):
        return f"a single {x!r}"
    return f"{type(x).__name__} {x!r}"


def _name_like(wrapper: Callable[..., Any], f: Callable[..., Any], transform: str) -> None:
    wrapper.__name__ = f"{transform}({getattr(f, '__name__', 'f')})"
    wrapper.__qualname__ = wrapper.__name__
    wrapper.__doc__ = f"{transform} of {getattr(f, '__name__', repr(f))}."
