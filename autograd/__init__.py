"""chainrule's scalar autograd engine.

`Value` holds one float; every operation on Values records a node of a graph, and
`backward()` applies the chain rule through it in reverse topological order.

    >>> from autograd import Value
    >>> x = Value(2.0, label="x")
    >>> y = x * x + 3 * x
    >>> y.backward()
    >>> x.grad
    7.0

Read in this order: `ops.py` (the derivative table), `value.py` (the node), `engine.py`
(backward), then `functions.py`, `func.py`, `gradcheck.py`, `draw.py`, `stepper.py`.
"""

from .draw import draw_dot
from .engine import BackwardStep, backward, backward_steps, grad, topological_order
from .functions import (
    elu,
    leaky_relu,
    linear,
    logsumexp,
    maximum,
    mean,
    minimum,
    softmax,
    sum,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import OPS, Op, cos, exp, gelu, log, ndtr, relu, sigmoid, sin, softplus, sqrt, tanh
from .stepper import BackwardStepper
from .value import Value, apply

__all__ = [
    "OPS",
    "BackwardStep",
    "BackwardStepper",
    "GradcheckError",
    "Op",
    "Value",
    "apply",
    "backward",
    "backward_steps",
    "cos",
    "draw_dot",
    "elu",
    "enable_grad",
    "exp",
    "gelu",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "leaky_relu",
    "linear",
    "log",
    "logsumexp",
    "maximum",
    "mean",
    "minimum",
    "ndtr",
    "no_grad",
    "relu",
    "sigmoid",
    "sin",
    "softmax",
    "softplus",
    "sqrt",
    "sum",
    "tanh",
    "topological_order",
]


def __getattr__(name: str) -> object:
    # `autograd.func` and `autograd.testing` load on first use: testing needs hypothesis,
    # which `import autograd` must not.
    if name in ("func", "testing"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'autograd' has no attribute {name!r}")
