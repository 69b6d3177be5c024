"""autograd.func: grad, value_and_grad, hessian and derivative as function transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import autograd
from autograd import Value, no_grad
from autograd.func import derivative, grad, hessian, value_and_grad


def f(x, y):
    return x * x * y + autograd.sin(y)


def test_grad_of_floats_returns_floats():
    g = grad(f)(3.0, 2.0)
    assert type(g) is float and g == 12.0
    gx, gy = grad(f, argnums=(0, 1))(3.0, 2.0)
    assert (gx, gy) == (12.0, 9.0 + math.cos(2.0))
    assert grad(f, argnums=-1)(3.0, 2.0) == 9.0 + math.cos(2.0)
    assert grad(f, argnums=[1])(3.0, 2.0) == (9.0 + math.cos(2.0),)


def test_grad_of_values_returns_values_with_a_graph():
    x = Value(3.0)
    g = grad(lambda v: v**3)(x)
    assert isinstance(g, Value) and g.data == 27.0
    g.backward()
    assert x.grad == 18.0  # d/dx 3 x**2


def test_grad_composes_to_any_order():
    assert grad(grad(lambda x: x**4))(2.0) == 48.0
    assert grad(grad(grad(lambda x: x**4)))(2.0) == 48.0
    assert derivative(lambda x: x**4, 4)(2.0) == 24.0
    assert derivative(lambda x: x**4, 5)(2.0) == 0.0


def test_mixed_partials_by_composition():
    # d/dy d/dx (x**2 y) = 2x
    d2 = grad(grad(lambda x, y: x * x * y, argnums=0), argnums=1)(3.0, 5.0)
    assert type(d2) is float and d2 == 6.0


def test_floats_in_floats_out_when_nesting():
    # The inner gradient is a constant: the outer one is a plain 0.0, not a Value.
    d2 = grad(grad(lambda x: 3 * x))(2.0)
    assert type(d2) is float and d2 == 0.0
    assert type(hessian(lambda x, y: x + y)(1.0, 2.0)[0, 0]) is np.float64


def test_nested_grads_do_not_confuse_their_variables():
    # d/dx [ d/dy (x * y) at y = x ] = d/dx x = 1, not 2.
    assert grad(lambda x: grad(lambda y: x * y)(x))(2.0) == 1.0
    # An inner function closing over the outer variable: d/dx [x * d/dy (x y)] = 2x.
    assert grad(lambda x: x * grad(lambda y: x * y)(3.0))(2.0) == 4.0


def test_unused_argument_and_constant_function_give_zero():
    assert grad(lambda x, y: x * 2.0, argnums=1)(1.0, 5.0) == 0.0
    assert grad(lambda x: 3.0)(1.0) == 0.0
    assert grad(lambda x: x)(1.5) == 1.0


def test_value_and_grad():
    value, g = value_and_grad(f)(3.0, 2.0)
    assert value == 18.0 + math.sin(2.0) and g == 12.0
    assert type(value) is float


def test_value_and_grad_with_aux():
    (value, aux), g = value_and_grad(lambda x: (x * x, "note"), has_aux=True)(3.0)
    assert (value, aux, g) == (9.0, "note", 6.0)
    with pytest.raises(TypeError, match=r"has_aux=True.*\(output, aux\), got a single Value"):
        value_and_grad(lambda x: x * x, has_aux=True)(3.0)


def test_grad_works_inside_no_grad_and_leaves_the_mode_alone():
    with no_grad():
        assert grad(lambda x: x**2)(3.0) == 6.0
        assert not autograd.is_grad_enabled()
    assert autograd.is_grad_enabled()


def test_grad_does_not_touch_dot_grad():
    x = Value(2.0)
    grad(lambda v: v * v)(x)
    assert x.grad == 0.0


def test_hessian_of_floats_is_a_float_array():
    h = hessian(lambda x, y, z: x * y * z + x**2)(1.0, 2.0, 3.0)
    assert h.shape == (3, 3) and h.dtype == np.float64
    np.testing.assert_array_equal(h, [[2.0, 3.0, 2.0], [3.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    assert hessian(lambda x: x**3)(2.0).tolist() == [[12.0]]


def test_hessian_of_values_is_differentiable_again():
    x = Value(2.0)
    h = hessian(lambda v: v**4)(x)
    assert h.dtype == object and h[0, 0].data == 48.0
    (third,) = autograd.grad(h[0, 0], x)
    assert third == 48.0


def test_derivative_order_zero_and_one():
    assert derivative(autograd.exp, 0)(1.0) == math.exp(1.0)
    assert derivative(autograd.exp)(1.0) == math.exp(1.0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: grad(lambda x: [x, x])(1.0), TypeError, "must return a scalar.*list of length 2"),
        (lambda: grad(lambda x: None)(1.0), TypeError, "NoneType None"),
        (lambda: grad(f, argnums=2)(1.0, 2.0), ValueError, "argnums 2 is out of range"),
        (lambda: grad(f, argnums="x"), TypeError, "argnums must be an int"),
        (lambda: grad(f, argnums=())(1.0, 2.0), TypeError, "argnums must be an int"),
        (lambda: grad(lambda s: s)("a"), TypeError, "argument 0 must be a number or a Value"),
        (lambda: derivative(f, -1), ValueError, "order must be >= 0, got -1"),
        (lambda: derivative(f, 1.5), TypeError, "order must be an int"),
        (lambda: hessian(f)(), ValueError, "at least one argument"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_transforms_are_named_after_their_function():
    assert grad(f).__name__ == "grad(f)"
    assert hessian(f).__name__ == "hessian(f)"


def test_module_docstring_example_runs():
    import doctest

    import autograd.func

    result = doctest.testmod(autograd.func)
    assert result.attempted > 0 and result.failed == 0


# autograd.grad, the engine function the transforms stand on (PyTorch's torch.autograd.grad).


def test_engine_grad_leaves_dot_grad_alone_and_returns_one_per_input():
    x, y = Value(2.0), Value(3.0)
    out = x * y + x
    assert autograd.grad(out, [x, y]) == (4.0, 2.0)
    assert x.grad == 0.0 and y.grad == 0.0


def test_engine_grad_of_an_unused_input():
    x, unused = Value(2.0), Value(5.0, label="w")
    with pytest.raises(ValueError, match=r"input 1 'w' \(data=5.0\) is not used"):
        autograd.grad(x * x, [x, unused])
    assert autograd.grad(x * x, [x, unused], allow_unused=True) == (4.0, None)


def test_engine_grad_create_graph_gives_differentiable_values():
    x = Value(0.5)
    (g,) = autograd.grad(autograd.sin(x) * x, x, create_graph=True)
    assert isinstance(g, Value) and not g.is_leaf
    (h,) = autograd.grad(g, x)
    assert math.isclose(h, 2 * math.cos(0.5) - 0.5 * math.sin(0.5), rel_tol=1e-15)
    # A gradient that depends on no input is a constant leaf Value.
    (c,) = autograd.grad(x + 1.0, x, create_graph=True)
    assert isinstance(c, Value) and c.is_leaf and c.data == 1.0
