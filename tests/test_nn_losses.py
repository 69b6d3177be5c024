"""Losses against PyTorch's float64 results (values and gradients) and hand-computed values."""

import math

import numpy as np
import pytest

import autograd
import nn
from autograd import Value

try:
    import torch

    F = torch.nn.functional
except ImportError:  # the hand-computed tests below still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _values(xs):
    return [Value(float(x)) for x in xs]


def _check_against_torch(our_fn, torch_fn, xs, target, reduction, shape=None):
    vs = _values(np.ravel(xs))
    ours_in = (
        vs if shape is None else [vs[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
    )
    loss = our_fn(ours_in, target, reduction=reduction)
    loss.backward()
    t = torch.tensor(np.asarray(xs, dtype=np.float64), requires_grad=True)
    ref = torch_fn(t, reduction=reduction)
    ref.backward()
    assert math.isclose(loss.data, ref.item(), rel_tol=1e-13, abs_tol=1e-15)
    np.testing.assert_allclose([v.grad for v in vs], t.grad.numpy().ravel(), rtol=1e-12, atol=1e-15)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_matches_torch(reduction):
    xs = [0.5, -1.25, 3.0, 0.0]
    ys = [1.0, -1.0, 2.5, 0.25]
    _check_against_torch(
        nn.mse_loss,
        lambda t, reduction: F.mse_loss(
            t, torch.tensor(ys, dtype=torch.float64), reduction=reduction
        ),
        xs,
        ys,
        reduction,
    )


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_matches_torch_even_for_huge_logits(reduction):
    xs = [0.3, -2.0, 40.0, -800.0, 800.0]
    ys = [1.0, 0.0, 0.0, 1.0, 1.0]
    _check_against_torch(
        nn.binary_cross_entropy_with_logits,
        lambda t, reduction: F.binary_cross_entropy_with_logits(
            t, torch.tensor(ys, dtype=torch.float64), reduction=reduction
        ),
        xs,
        ys,
        reduction,
    )


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch(reduction):
    logits = np.array([[1.0, 2.0, -1.0], [0.0, 800.0, -800.0], [3.0, 3.0, 3.0]])
    target = [2, 0, 1]
    _check_against_torch(
        nn.cross_entropy,
        lambda t, reduction: F.cross_entropy(t, torch.tensor(target), reduction=reduction),
        logits,
        target,
        reduction,
        shape=logits.shape,
    )


def test_E23_cross_entropy_is_stable():
    # Case E23 (tests/test_cases_engine.py).
    w = [Value(0.0), Value(800.0), Value(-800.0)]
    loss = nn.cross_entropy(w, target=0)
    loss.backward()
    assert loss.data == 800.0
    assert [v.grad for v in w] == [-1.0, 1.0, 0.0]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_hinge_loss_by_hand(reduction):
    s = _values([2.0, 0.5, -0.25])
    y = [1, 1, -1]
    loss = nn.hinge_loss(s, y, reduction=reduction)
    loss.backward()
    # max(0, 1 - y s): 0, 0.5, 0.75; gradient -y where the margin is violated.
    scale = 1 / 3 if reduction == "mean" else 1.0
    assert math.isclose(loss.data, 1.25 * scale, rel_tol=1e-15)
    assert [v.grad for v in s] == [0.0, -scale, scale]


def test_single_values_and_numbers_are_accepted():
    assert nn.mse_loss(Value(3.0), 1.0).data == 4.0
    assert nn.hinge_loss(0.5, -1).data == 1.5


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: nn.hinge_loss([Value(1.0)], [0]),
            ValueError,
            "labels must be -1 or \\+1, got 0.0 at index 0",
        ),
        (
            lambda: nn.binary_cross_entropy_with_logits([1.0], [2.0]),
            ValueError,
            "targets must be in \\[0, 1\\]",
        ),
        (
            lambda: nn.mse_loss([1.0, 2.0], [1.0]),
            ValueError,
            "input has 2 elements but target has 1",
        ),
        (
            lambda: nn.mse_loss([1.0], [1.0], reduction="none"),
            ValueError,
            "reduction must be 'mean' or 'sum', got 'none'",
        ),
        (
            lambda: nn.cross_entropy([1.0, 2.0], 2),
            ValueError,
            "target 2 is out of range for 2 classes",
        ),
        (
            lambda: nn.cross_entropy([[1.0, 2.0]], [0, 1]),
            ValueError,
            "1 rows of logits but 2 targets",
        ),
        (lambda: nn.cross_entropy([1.0, 2.0], 0.5), TypeError, "target must be a class index"),
        (lambda: nn.mse_loss([], []), ValueError, "input is empty"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_losses_are_single_sum_nodes_not_chains():
    xs = _values(range(50))
    loss = nn.mse_loss(xs, [0.0] * 50, reduction="sum")
    assert loss.op.name == "sum" and len(loss.inputs) == 50
    assert isinstance(autograd.sum([1.0, 2.0]), Value)


@pytest.mark.parametrize(
    "loss, target",
    [
        (nn.hinge_loss, np.array([1, -1])),
        (nn.binary_cross_entropy_with_logits, np.array([1, 0])),
        (nn.mse_loss, np.array([1, -1])),
    ],
)
def test_numpy_integer_labels_are_numbers(loss, target):
    """Labels as make_moons returns them (int64) give the same loss as Python ints."""
    scores = [Value(0.3), Value(-0.2)]
    expected = loss(scores, [int(t) for t in target]).data
    assert loss(scores, target).data == expected
    assert loss(scores, list(target)).data == expected
    assert loss([scores[0]], np.int64(target[0])).data == loss([scores[0]], int(target[0])).data
