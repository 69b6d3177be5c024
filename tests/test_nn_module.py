"""nn.Module: names, parameters, state dict, modes, repr."""

import numpy as np
import pytest

import nn
from autograd import Value


def test_named_parameters_use_pytorch_names_and_shapes():
    model = nn.MLP(3, [4, 2])
    shapes = {name: arr.shape for name, arr in model.named_parameters()}
    assert shapes == {
        "layers.0.weight": (4, 3),
        "layers.0.bias": (4,),
        "layers.1.weight": (2, 4),
        "layers.1.bias": (2,),
    }
    assert len(model.parameters()) == 4 * 3 + 4 + 2 * 4 + 2
    assert all(isinstance(p, Value) for p in model.parameters())


def test_parameters_are_the_named_arrays_flattened_row_major():
    model = nn.MLP(2, [3, 1], seed=0)
    flat = [v for _, arr in model.named_parameters() for v in arr.flat]
    assert [id(p) for p in model.parameters()] == [id(v) for v in flat]
    w = dict(model.named_parameters())["layers.0.weight"]
    # Row i of a layer's weight is neuron i's weights: the very same Values.
    assert w[1, 0] is model.layers[0].neurons[1].weight[0]


def test_parameters_are_labelled_with_name_and_index():
    model = nn.MLP(2, [3, 1], seed=0)
    named = dict(model.named_parameters())
    assert named["layers.0.weight"][2, 1].label == "layers.0.weight[2, 1]"
    assert named["layers.1.bias"][0].label == "layers.1.bias[0]"
    layer = nn.Layer(2, 2, seed=0)
    assert dict(layer.named_parameters())["weight"][1, 0].label == "weight[1, 0]"


def test_state_dict_is_float64_copies():
    model = nn.MLP(2, [3, 1], seed=0)
    sd = model.state_dict()
    assert all(a.dtype == np.float64 for a in sd.values())
    w = dict(model.named_parameters())["layers.0.weight"]
    assert sd["layers.0.weight"][1, 0] == w[1, 0].data
    sd["layers.0.weight"][1, 0] = 99.0
    assert w[1, 0].data != 99.0


def test_load_state_dict_round_trip():
    a, b = nn.MLP(2, [3, 1], seed=0), nn.MLP(2, [3, 1], seed=1)
    b.load_state_dict(a.state_dict())
    for (na, xa), (nb, xb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb
        np.testing.assert_array_equal(xa, xb)
    assert a([0.3, -0.7]).data == b([0.3, -0.7]).data


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sd: sd.pop("layers.1.bias"), "missing keys \\['layers.1.bias'\\]"),
        (lambda sd: sd.__setitem__("extra", np.zeros(1)), "unexpected keys \\['extra'\\]"),
        (
            lambda sd: sd.__setitem__("layers.0.weight", np.zeros((3, 3))),
            "'layers.0.weight' has shape \\(3, 3\\), the model expects \\(3, 2\\)",
        ),
        (
            lambda sd: sd.__setitem__("layers.1.weight", [["a", "b", "c"]]),
            "layers.1.weight\\[0, 0\\] is 'a' \\(str\\), expected a real number",
        ),
    ],
)
def test_load_state_dict_checks_everything_before_changing_anything(change, message):
    model = nn.MLP(2, [3, 1], seed=0)
    before = model.state_dict()
    sd = {k: np.full_like(v, 7.0) for k, v in before.items()}
    change(sd)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(sd)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_zero_grad_train_eval_repr():
    model = nn.MLP(2, [3, 1], seed=0)
    model([1.0, 2.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    assert model.training and model.layers[0].training
    model.eval()
    assert not model.training and not model.layers[1].training
    model.train()
    assert model.layers[1].training
    text = repr(model)
    assert text.startswith("MLP(")
    assert "(layers.0): Layer(in_features=2, out_features=3, activation=relu)" in text
    assert "(layers.1): Layer(in_features=3, out_features=1, activation=linear)" in text


def test_a_module_without_call_says_so():
    with pytest.raises(NotImplementedError, match="Module does not define __call__"):
        nn.Module()(1.0)


@pytest.mark.parametrize(
    "entry, message",
    [
        (float("nan"), r"layers\.0\.weight\[2, 1\] is nan, expected a finite number"),
        (float("inf"), r"layers\.0\.weight\[2, 1\] is inf, expected a finite number"),
        (True, r"layers\.0\.weight\[2, 1\] is True \(bool\), expected a real number"),
        (np.bool_(False), r"layers\.0\.weight\[2, 1\] is np\.False_ \(bool\), expected a real"),
        (None, r"layers\.0\.weight\[2, 1\] is None \(NoneType\)"),
        (1 + 2j, r"layers\.0\.weight\[2, 1\] is \(1\+2j\) \(complex\)"),
    ],
)
@pytest.mark.parametrize("as_array", [False, True])
def test_load_state_dict_refuses_non_finite_and_non_numeric_entries(entry, message, as_array):
    model = nn.MLP(2, [3, 1], seed=0)
    before = model.state_dict()
    sd = {k: v.tolist() for k, v in before.items()}
    sd["layers.0.weight"][2][1] = entry
    if as_array:
        sd["layers.0.weight"] = np.array(sd["layers.0.weight"], dtype=object)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(sd)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize(
    "array, dtype", [(np.ones((3, 2), dtype=bool), "bool"), (np.ones((3, 2), complex), "complex")]
)
def test_load_state_dict_refuses_arrays_of_the_wrong_dtype(array, dtype):
    model = nn.MLP(2, [3, 1], seed=0)
    sd = {**model.state_dict(), "layers.0.weight": array}
    with pytest.raises(ValueError, match=rf"layers\.0\.weight has dtype {dtype}"):
        model.load_state_dict(sd)


def test_load_state_dict_still_takes_int_arrays_and_nested_tuples():
    model = nn.MLP(2, [3, 1], seed=0)
    sd = {k: np.ones(v.shape, dtype=np.int32) for k, v in model.state_dict().items()}
    sd["layers.1.weight"] = ((1, 2.5, np.float32(3.0)),)
    model.load_state_dict(sd)
    assert model.state_dict()["layers.1.weight"].tolist() == [[1.0, 2.5, 3.0]]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "gelu", "linear"])
def test_modules_pickle_round_trip(activation):
    import pickle

    model = nn.MLP(2, [4, 3, 1], activation=activation, output_activation="sigmoid", seed=0)
    copy = pickle.loads(pickle.dumps(model))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[k], v)
    assert copy.config() == model.config()  # the activations are still the named ones
    x = [0.3, -0.8]
    assert copy(x).data == model(x).data
    np.testing.assert_array_equal(copy.forward_numpy([x]), model.forward_numpy([x]))
    # The copy trains: gradients flow to its own parameters, not the original's.
    copy(x).backward()
    assert any(p.grad != 0.0 for p in copy.parameters())
    assert all(p.grad == 0.0 for p in model.parameters())
    assert copy.parameters()[0].label == "layers.0.weight[0, 0]"


def test_a_module_with_a_function_activation_pickles():
    import pickle

    import autograd

    model = nn.MLP(2, [3, 1], activation=autograd.sin, seed=0)
    copy = pickle.loads(pickle.dumps(model))
    assert copy([0.1, 0.2]).data == model([0.1, 0.2]).data
