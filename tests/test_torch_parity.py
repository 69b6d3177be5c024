"""PyTorch as the reference: random expressions give torch's float64 values and derivatives.

Each op in the derivative table maps to its torch equivalent below. An op missing from the
map fails `test_every_op_has_a_torch_equivalent`, so a new op cannot be skipped silently.
Skipped cleanly where torch is not installed (CI installs torch==2.13.0, see .ci/run).

Tolerance: relative 1e-12, with an absolute floor of 1e-12 times the largest value or
derivative of the same expression. The floor is needed where a result is tiny next to the
numbers it came from: torch's tanh backward is 1 - tanh(x)**2, which keeps only absolute
precision (about 1e-16) where tanh saturates, while ours keeps relative precision
(the README: tanh'(20) = 1.7e-17, torch gives 0). Checked with a purely relative 1e-12 over
3000 random graphs: the only differences were results tiny next to the expression's other
numbers (cancellation, saturated tanh); no rule or kink convention differs.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings

from autograd import OPS, Value
from autograd import grad as engine_grad
from autograd.testing import Expression, expressions

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(x):
    """A constant operand as a float64 tensor (torch.maximum and friends need tensors)."""
    return x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)


# name in autograd.OPS -> torch function of the same args (tensors or floats).
TORCH_OPS = {
    "add": lambda a, b: _t(a) + b,
    "sub": lambda a, b: _t(a) - b,
    "mul": lambda a, b: _t(a) * b,
    "div": lambda a, b: _t(a) / b,
    "neg": lambda a: -a,
    "pow": lambda a, b: torch.pow(a, b) if isinstance(a, torch.Tensor) else torch.pow(a, _t(b)),
    "abs": torch.abs,
    "maximum": lambda a, b: torch.maximum(_t(a), _t(b)),
    "minimum": lambda a, b: torch.minimum(_t(a), _t(b)),
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "leaky_relu": lambda x, slope: F.leaky_relu(x, slope),
    "elu": lambda x, alpha: F.elu(x, alpha),
    "ndtr": torch.special.ndtr,
    "gelu": F.gelu,
    # torch's default threshold=20 switches to the identity above x = 20 (an approximation
    # off by exp(-20) ~ 2e-9); a huge threshold gives the exact log1p(exp(x)) we compute.
    "softplus": lambda x: F.softplus(x, threshold=1e300),
    "sin": torch.sin,
    "cos": torch.cos,
    "sum": lambda *xs: torch.stack([_t(x) for x in xs]).sum(),
    "logsumexp": lambda *xs: torch.logsumexp(torch.stack([_t(x) for x in xs]), dim=0),
    "linear": lambda b, *wx: (
        _t(b)
        + torch.stack([_t(w) for w in wx[: len(wx) // 2]])
        .mul(torch.stack([_t(x) for x in wx[len(wx) // 2 :]]))
        .sum()
    ),
}

REL = 1e-12


def test_every_op_has_a_torch_equivalent():
    missing = set(OPS) - set(TORCH_OPS)
    assert not missing, f"ops without a torch equivalent: {missing}"
    assert set(TORCH_OPS) == set(OPS)


def _close(ours, theirs, scale):
    # Relative 1e-12; a result that cancels to near zero is compared against the size of
    # the numbers it was computed from (scale), since no rounding-exact comparison exists.
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=REL * scale)


def _torch_derivatives(expr: Expression):
    xs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in expr.values]
    out = expr.evaluate(xs, lambda name, args: TORCH_OPS[name](*args))
    first = torch.autograd.grad(
        out, xs, create_graph=True, allow_unused=True, materialize_grads=True
    )
    second = []
    for g in first:
        if g.requires_grad:
            row = torch.autograd.grad(
                g, xs, retain_graph=True, allow_unused=True, materialize_grads=True
            )
        else:
            row = [torch.zeros((), dtype=torch.float64)] * len(xs)
        second.append([float(h) for h in row])
    return out.item(), [g.item() for g in first], second


def _our_derivatives(expr: Expression):
    xs = [Value(v) for v in expr.values]
    out = expr(*xs)
    first = engine_grad(out, xs, create_graph=True, allow_unused=True)
    first = [Value(0.0) if g is None else g for g in first]
    second = [
        [0.0 if h is None else float(h) for h in engine_grad(g, xs, allow_unused=True)]
        for g in first
    ]
    return out.data, [g.data for g in first], second


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(expressions(max_ops=8))
def test_values_and_first_and_second_derivatives_match_torch(expr):
    value, first, second = _our_derivatives(expr)
    t_value, t_first, t_second = _torch_derivatives(expr)
    scale = max([1.0, abs(value)] + [abs(g) for g in first] + [abs(h) for r in second for h in r])
    assert _close(value, t_value, scale), (value, t_value)
    for i, (g, t_g) in enumerate(zip(first, t_first)):
        assert _close(g, t_g, scale), (expr.names[i], g, t_g)
    for i, (row, t_row) in enumerate(zip(second, t_second)):
        for j, (h, t_h) in enumerate(zip(row, t_row)):
            assert _close(h, t_h, scale), (expr.names[i], expr.names[j], h, t_h)


def test_tanh_derivative_in_saturation_is_more_precise_than_torch():
    # The reason for the absolute floor above, pinned: at x = 20 torch's 1 - tanh**2 is 0.
    x = torch.tensor(20.0, dtype=torch.float64, requires_grad=True)
    (t_g,) = torch.autograd.grad(torch.tanh(x), x)
    v = Value(20.0)
    (g,) = engine_grad(v.tanh(), v)
    assert t_g.item() == 0.0
    assert math.isclose(g, 1.6993417021166355e-17, rel_tol=1e-12)
