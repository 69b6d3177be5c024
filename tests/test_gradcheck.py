"""gradcheck / gradgradcheck: they pass on right rules, and catch and report wrong ones."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import autograd
from autograd import GradcheckError, Op, Value, apply, gradcheck, gradgradcheck
from autograd.gradcheck import DEFAULT_STEP, KinkWarning


def smooth(x, y):
    return x**2 * y + autograd.sin(x * y)


def test_passes_on_correct_rules():
    assert gradcheck(smooth, [0.5, 1.5]) is True
    assert gradgradcheck(smooth, [0.5, 1.5]) is True
    assert gradcheck(lambda x: x.exp().log() * x.tanh(), 2.0) is True  # a lone number works


def test_default_step_is_cube_root_of_machine_epsilon():
    assert DEFAULT_STEP == (2.0**-52) ** (1 / 3)
    assert 6.0e-6 < DEFAULT_STEP < 6.1e-6


def test_eps_is_used():
    # The central difference of x**3 has error h**2 exactly: fine at the default step,
    # a mismatch with h = 0.1 (error 0.01).
    assert gradcheck(lambda x: x**3, [1.0])
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: x**3, [1.0], eps=0.1)
    assert gradcheck(lambda x: x**3, [1.0], eps=0.1, atol=0.011)


# A rule with a deliberate error: sin's derivative doubled.
BAD_SIN = Op("bad_sin", "bad_sin", 1, math.sin, (lambda out, x: 2 * autograd.cos(x),), ("",))


def test_catches_a_wrong_rule_with_a_table():
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, y: apply(BAD_SIN, x) * y, [0.3, 2.0])
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0].startswith("gradcheck: analytic and numeric derivatives differ for 1 of 2")
    assert lines[1].split() == "input value analytic numeric abs error rel error status".split()
    row_x, row_y = lines[2].split(), lines[3].split()
    assert row_x[:2] == ["input", "0"] and row_x[-1] == "MISMATCH"
    assert math.isclose(float(row_x[3]), 4 * math.cos(0.3), rel_tol=1e-9)  # analytic
    assert math.isclose(float(row_x[4]), 2 * math.cos(0.3), rel_tol=1e-9)  # numeric
    assert math.isclose(float(row_x[6]), 1.0, rel_tol=1e-6)  # relative error
    assert row_y[-1] == "ok"
    # The rows are also there as data.
    assert [r.status for r in info.value.rows] == ["MISMATCH", "ok"]
    assert isinstance(info.value, AssertionError)


def test_table_uses_labels_of_value_inputs():
    with pytest.raises(GradcheckError, match=r"\nweight .*MISMATCH"):
        gradcheck(lambda w: apply(BAD_SIN, w), [Value(0.3, label="weight")])


def test_raise_exception_false_returns_false():
    assert gradcheck(lambda x: apply(BAD_SIN, x), [0.3], raise_exception=False) is False


def test_gradgradcheck_catches_a_rule_that_breaks_the_graph():
    # float(x) inside a rule: right first derivative, but no graph, so d2 comes out 0.
    float_sin = Op(
        "float_sin", "s", 1, math.sin, (lambda out, x: math.cos(getattr(x, "data", x)),), ("",)
    )
    f = lambda x: apply(float_sin, x)  # noqa: E731
    assert gradcheck(f, [0.3])
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(f, [0.3])
    (row,) = info.value.rows
    assert row.name == "d/d(input 0) d/d(input 0)" and row.analytic == 0.0
    assert math.isclose(row.numeric, -math.sin(0.3), rel_tol=1e-8)


def test_gradgradcheck_catches_a_wrong_first_rule():
    with pytest.raises(GradcheckError, match=r"differ for 1 of 4"):
        gradgradcheck(lambda x, y: apply(BAD_SIN, x) * y, [0.3, 2.0])


@pytest.mark.parametrize(
    "f, point",
    [
        (lambda x: x.relu(), [0.0]),
        (lambda x: abs(x) * 3, [1e-7]),
        (lambda x, y: autograd.maximum(x, y), [1.0, 1.0 + 1e-7]),
        (lambda x: autograd.minimum(x, 2.0) + x * x, [2.0 - 1e-7]),
    ],
)
def test_kink_within_the_step_is_reported_as_a_kink(f, point):
    with pytest.warns(KinkWarning, match=r"kink \(one-sided"):
        assert gradcheck(f, point)


def test_an_exact_tie_needs_no_kink_report():
    # At an exact tie the central difference is 0.5 for each input: the split convention.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(lambda x, y: autograd.maximum(x, y), [1.0, 1.0])


def test_a_wrong_value_at_a_kink_is_still_caught():
    # The rule claims slope 2 on the right of a relu kink: outside the one-sided differences.
    bad_relu = Op(
        "bad_relu", "r", 1, autograd.OPS["relu"].forward, (lambda out, x: 2.0 * (x > 0),), ("",)
    )
    with pytest.raises(GradcheckError, match=r"input 0 .* 2 .*KINK \(one-sided 0.0165\d* \.\. 1\)"):
        gradcheck(lambda x: apply(bad_relu, x), [1e-7])


def test_no_kink_warning_on_smooth_functions():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(lambda x: x.relu() * x, [0.5])
        # Large curvature makes the one-sided differences differ, but that is no kink.
        assert gradcheck(lambda x: (x * 30).exp(), [0.1])


@pytest.mark.parametrize(
    "result, message",
    [
        (3.0, r"got float 3.0: a plain number has no graph"),
        ([Value(1.0), Value(2.0)], r"got a list of length 2"),
        (np.array([1.0, 2.0]), r"got a numpy array of shape \(2,\)"),
        (None, r"got NoneType None"),
    ],
)
def test_f_returning_a_non_scalar_is_a_type_error(result, message):
    for check in (gradcheck, gradgradcheck):
        with pytest.raises(TypeError, match=message):
            check(lambda x: result, [1.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs_are_a_value_error(bad):
    for check in (gradcheck, gradgradcheck):
        with pytest.raises(ValueError, match=rf"input 1 must be finite, got {bad!r}"):
            check(smooth, [1.0, bad])


def test_bad_inputs():
    with pytest.raises(ValueError, match="inputs is empty"):
        gradcheck(smooth, [])
    with pytest.raises(TypeError, match="input 0 must be a number, got str"):
        gradcheck(smooth, ["1.0", 2.0])


def test_unused_input_has_zero_gradient():
    assert gradcheck(lambda x, y: x * 2.0, [1.0, 3.0])
    assert gradgradcheck(lambda x, y: x * 2.0, [1.0, 3.0])
