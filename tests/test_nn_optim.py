"""Optimisers and schedules, step for step against torch.optim (float64), and by hand."""

import math

import numpy as np
import pytest

import nn
from autograd import Value

try:
    import torch
except ImportError:  # the hand-computed tests below still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

START = [0.5, -1.5, 2.0, 0.0]


def _loss_ours(ps):
    # A non-quadratic loss so every step's gradient differs: sum of x**4/4 - x + x0*x1.
    a, b, c, d = ps
    return a**4 / 4 - a + (b * b).tanh() + c * a + (d - 0.5) ** 2


def _loss_torch(t):
    a, b, c, d = t
    return a**4 / 4 - a + torch.tanh(b * b) + c * a + (d - 0.5) ** 2


def _run(make_ours, make_torch, steps=6, schedule=None):
    ps = [Value(x) for x in START]
    t = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    opt, topt = make_ours(ps), make_torch([t])
    sched = tsched = None
    if schedule is not None:
        sched, tsched = schedule[0](opt), schedule[1](topt)
    for _ in range(steps):
        opt.zero_grad()
        _loss_ours(ps).backward()
        opt.step()
        topt.zero_grad()
        _loss_torch(t).backward()
        topt.step()
        if sched is not None:
            sched.step()
            tsched.step()
            assert math.isclose(opt.lr, tsched.get_last_lr()[0], rel_tol=1e-12)
        np.testing.assert_allclose([p.data for p in ps], t.detach().numpy(), rtol=1e-11, atol=1e-13)
    return ps


@needs_torch
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.3},
        {"momentum": 0.8, "nesterov": True},
        {"weight_decay": 0.1},
        {"momentum": 0.5, "nesterov": True, "weight_decay": 0.01},
    ],
)
def test_sgd_matches_torch(kwargs):
    _run(lambda ps: nn.SGD(ps, lr=0.1, **kwargs), lambda ts: torch.optim.SGD(ts, lr=0.1, **kwargs))


@needs_torch
@pytest.mark.parametrize(
    "kwargs", [{}, {"betas": (0.8, 0.99), "eps": 1e-6}, {"weight_decay": 0.05}]
)
def test_adam_matches_torch(kwargs):
    _run(
        lambda ps: nn.Adam(ps, lr=0.05, **kwargs),
        lambda ts: torch.optim.Adam(ts, lr=0.05, **kwargs),
        steps=8,
    )


@needs_torch
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda o: nn.StepLR(o, step_size=2, gamma=0.5),
            lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        ),
        (
            lambda o: nn.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=4),
            lambda o: torch.optim.lr_scheduler.LinearLR(
                o, start_factor=1.0, end_factor=0.1, total_iters=4
            ),
        ),
        (
            lambda o: nn.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
        ),
    ],
)
def test_schedules_match_torch(ours, theirs):
    _run(
        lambda ps: nn.SGD(ps, lr=0.2, momentum=0.5),
        lambda ts: torch.optim.SGD(ts, lr=0.2, momentum=0.5),
        steps=7,
        schedule=(ours, theirs),
    )


def test_micrograd_schedule():
    # micrograd's demo: lr = 1.0 - 0.9 * k / 100 at step k.
    opt = nn.SGD([Value(0.0)], lr=1.0)
    sched = nn.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=100)
    for k in range(100):
        assert math.isclose(opt.lr, 1.0 - 0.9 * k / 100, rel_tol=1e-14)
        sched.step()
    assert math.isclose(opt.lr, 0.1, rel_tol=1e-14)


def test_sgd_momentum_by_hand():
    p = Value(1.0)
    opt = nn.SGD([p], lr=0.1, momentum=0.9)
    p.grad = 2.0
    opt.step()  # buf = 2, p = 1 - 0.2
    assert math.isclose(p.data, 0.8, abs_tol=1e-15)
    p.grad = 1.0
    opt.step()  # buf = 0.9 * 2 + 1 = 2.8, p = 0.8 - 0.28
    assert math.isclose(p.data, 0.52, abs_tol=1e-15)


def test_step_keeps_parameters_as_the_same_leaves_and_builds_no_graph():
    model = nn.MLP(2, [3, 1], seed=0)
    params = model.parameters()
    opt = nn.Adam(params, lr=0.01)
    model([1.0, 2.0]).backward()
    opt.step()
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(p.is_leaf for p in params)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.SGD([], lr=0.1), "empty parameter list"),
        (lambda: nn.SGD([Value(1.0)], lr=-1), "lr must be a number >= 0, got -1"),
        (lambda: nn.SGD([Value(1.0)], lr=0.1, nesterov=True), "nesterov"),
        (lambda: nn.Adam([Value(1.0)], betas=(1.0, 0.9)), "betas\\[0\\] must be in \\[0, 1\\)"),
        (lambda: nn.StepLR(nn.SGD([Value(1.0)], lr=0.1), step_size=0), "step_size"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_parameters_must_be_values():
    with pytest.raises(TypeError, match="parameter 0 is a float, not a Value"):
        nn.SGD([1.0], lr=0.1)
