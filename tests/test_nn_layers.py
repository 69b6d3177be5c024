"""Neuron, Layer, MLP, activations and initialisation."""

import math

import numpy as np
import pytest

import autograd
import nn
from autograd import Value, topological_order
from nn.layers import ACTIVATIONS


def _relu(z):
    return max(z, 0.0)


def test_neuron_is_activation_of_weighted_sum():
    n = nn.Neuron(3, activation="tanh", seed=0)
    x = [0.5, -1.0, 2.0]
    expected = math.tanh(n.bias.data + sum(w.data * xi for w, xi in zip(n.weight, x)))
    assert math.isclose(n(x).data, expected, rel_tol=1e-15)
    assert [k for k, _ in n.named_parameters()] == ["weight", "bias"]
    assert dict(n.named_parameters())["weight"].shape == (1, 3)


def test_weighted_sum_is_one_node_and_expand_gives_same_values_and_grads():
    fast = nn.MLP(3, [4, 1], seed=0)
    slow = nn.MLP(3, [4, 1], seed=0, expand=True)
    x = [0.2, -0.4, 1.5]
    a, b = fast(x), slow(x)
    assert math.isclose(a.data, b.data, rel_tol=1e-14)
    a.backward()
    b.backward()
    for p, q in zip(fast.parameters(), slow.parameters()):
        assert math.isclose(p.grad, q.grad, rel_tol=1e-14, abs_tol=1e-15)
    ops_fast = [v.op.name for v in topological_order(a) if v.op]
    ops_slow = [v.op.name for v in topological_order(b) if v.op]
    assert ops_fast.count("linear") == 5 and "mul" not in ops_fast
    assert "linear" not in ops_slow and ops_slow.count("mul") == 4 * 3 + 4
    # The flag can be switched on an existing model.
    fast.expand = True
    assert fast.layers[1].neurons[0].expand


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_by_name_match_the_engine_and_numpy(name):
    layer = nn.Layer(2, 3, activation=name, seed=1)
    x = [0.7, -1.3]
    outs = layer(x)
    assert isinstance(outs, list) and len(outs) == 3
    sd = layer.state_dict()
    z = sd["weight"] @ np.array(x) + sd["bias"]
    np.testing.assert_allclose([o.data for o in outs], ACTIVATIONS[name].numpy(z), rtol=1e-14)
    ref = {
        "relu": _relu,
        "tanh": math.tanh,
        "sigmoid": lambda t: 1 / (1 + math.exp(-t)),
        "leaky_relu": lambda t: t if t > 0 else 0.01 * t,
        "gelu": lambda t: 0.5 * t * (1 + math.erf(t / math.sqrt(2))),
        "linear": lambda t: t,
    }[name]
    np.testing.assert_allclose([o.data for o in outs], [ref(t) for t in z], rtol=1e-13)


def test_callable_activation():
    model = nn.MLP(2, [3, 1], activation=autograd.sin, seed=0)
    sd = model.state_dict()
    h = np.sin(sd["layers.0.weight"] @ np.array([0.1, 0.2]) + sd["layers.0.bias"])
    expected = (sd["layers.1.weight"] @ h + sd["layers.1.bias"])[0]
    assert math.isclose(model([0.1, 0.2]).data, expected, rel_tol=1e-14)
    assert math.isclose(model.forward_numpy([[0.1, 0.2]])[0, 0], expected, rel_tol=1e-14)


def test_bad_activation_and_sizes():
    with pytest.raises(ValueError, match="unknown name 'swish'"):
        nn.MLP(2, [3, 1], activation="swish")
    with pytest.raises(TypeError, match="got int"):
        nn.Neuron(2, activation=3)
    with pytest.raises(ValueError, match="nout must be a positive int, got 0"):
        nn.Layer(2, 0)
    with pytest.raises(ValueError, match="nouts must list at least one layer"):
        nn.MLP(2, [])


@pytest.mark.parametrize(
    "make", [lambda: nn.MLP(3, [2, 1]), lambda: nn.Layer(3, 2), lambda: nn.Neuron(3)]
)
def test_wrong_input_length_names_both_lengths(make):
    with pytest.raises(ValueError, match=r"expected 3 inputs \(nin=3\), got 2"):
        make()([1.0, 2.0])


def test_inputs_may_be_values_numpy_or_a_bare_scalar():
    model = nn.MLP(2, [3, 2], seed=0)
    xs = [Value(0.5), Value(-1.0)]
    out = model(xs)
    assert isinstance(out, list) and len(out) == 2
    out[0].backward()
    assert xs[0].grad != 0.0
    assert [o.data for o in model(np.array([0.5, -1.0]))] == [o.data for o in out]
    one = nn.MLP(1, [3, 1], seed=0)
    assert one(2.0).data == one(np.float64(2.0)).data == one([2.0]).data
    with pytest.raises(ValueError, match="expected 2 inputs"):
        model(1.0)


def test_forward_numpy_matches_values():
    model = nn.MLP(4, [5, 5, 3], activation="gelu", seed=2)
    X = np.random.default_rng(0).normal(size=(6, 4))
    values = np.array([[o.data for o in model(x)] for x in X])
    np.testing.assert_allclose(model.forward_numpy(X), values, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"expected shape \(n_samples, 4\)"):
        model.forward_numpy(X[:, :3])


def test_init_schemes_are_seeded_and_bounded():
    rng = np.random.default_rng
    w, b = nn.init.init_linear("kaiming", 25, 10, rng(0))
    assert w.shape == (10, 25) and b.shape == (10,)
    assert np.abs(w).max() <= 1 / 5 and np.abs(b).max() <= 1 / 5
    w2, _ = nn.init.init_linear("kaiming", 25, 10, rng(0))
    np.testing.assert_array_equal(w, w2)
    w, b = nn.init.init_linear("xavier", 4, 2, rng(0))
    assert np.abs(w).max() <= 1.0 and not b.any()
    w, b = nn.init.init_linear("micrograd", 4, 2, rng(0))
    assert np.abs(w).max() <= 1.0 and not b.any()
    assert (
        nn.MLP(2, [3, 1], seed=5).state_dict()["layers.0.weight"].tolist()
        == nn.MLP(2, [3, 1], seed=5).state_dict()["layers.0.weight"].tolist()
    )
    with pytest.raises(ValueError, match="unknown scheme 'he'"):
        nn.MLP(2, [1], init="he")


def test_kaiming_bound_is_pytorch_linear_default():
    torch = pytest.importorskip("torch")
    # torch.nn.Linear's weights never exceed 1/sqrt(fan_in), and come close to it.
    lin = torch.nn.Linear(100, 200)
    assert lin.weight.abs().max().item() <= 0.1
    ours, _ = nn.init.init_linear("kaiming", 100, 200, np.random.default_rng(0))
    assert 0.099 < np.abs(ours).max() <= 0.1
    # Xavier: bound sqrt(6 / (fan_in + fan_out)) = sqrt(6 / 8) for a (3, 5) weight.
    xav = nn.init.xavier_uniform((3, 5), np.random.default_rng(0), gain=1.0)
    assert np.abs(xav).max() <= math.sqrt(6 / 8)


@pytest.mark.parametrize(
    "x, type_name",
    [
        ({1.0, 2.0}, "set"),
        (frozenset({1.0, 2.0}), "frozenset"),
        ({"a": 1.0, "b": 2.0}, "dict"),
        ({"a": 1.0, "b": 2.0}.keys(), "dict_keys"),
    ],
)
@pytest.mark.parametrize(
    "make, where",
    [
        (lambda: nn.MLP(2, [3, 1], seed=0), "MLP"),
        (lambda: nn.Layer(2, 3, seed=0), "Layer"),
        (lambda: nn.Neuron(2, seed=0), "Neuron"),
    ],
)
def test_unordered_inputs_are_refused(x, type_name, make, where):
    with pytest.raises(TypeError, match=rf"{where}: expected an ordered sequence .* {type_name}"):
        make()(x)


def test_ordered_iterables_are_still_accepted():
    model = nn.MLP(2, [3, 1], seed=0)
    expected = model([1.0, 2.0]).data
    assert model((1.0, 2.0)).data == expected
    assert model(iter([1.0, 2.0])).data == expected
    assert model(np.array([1.0, 2.0])).data == expected
