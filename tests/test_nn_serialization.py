"""save / load: exact round trips, atomic writes, clear errors, and torch equivalence."""

import itertools
import json

import numpy as np
import pytest

import nn
from nn import serialization


def _model(seed=0):
    return nn.MLP(3, [5, 4, 2], activation="tanh", seed=seed)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_is_exact(tmp_path, suffix):
    model = _model()
    path = tmp_path / f"m{suffix}"
    nn.save(model, path, metadata={"classes": ["a", "b"]})
    loaded, meta = serialization.load_with_metadata(path)
    assert meta == {"classes": ["a", "b"]}
    assert loaded.config() == model.config()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)  # bit for bit
    x = [0.1, -0.2, 0.3]
    assert [o.data for o in loaded(x)] == [o.data for o in model(x)]
    # Nothing but the file itself is left in the directory (the temporary file is renamed).
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_load_into_an_existing_model(tmp_path):
    path = tmp_path / "m.json"
    nn.save(_model(0), path)
    other = _model(1)
    assert nn.load(path, other) is other
    np.testing.assert_array_equal(
        other.state_dict()["layers.2.bias"], _model(0).state_dict()["layers.2.bias"]
    )


def _corrupt_cases(tmp_path):
    good = tmp_path / "good.json"
    nn.save(_model(), good)
    text = good.read_text()
    doc = json.loads(text)
    cases = {
        "truncated": (text[: len(text) // 2], "not valid JSON \\(truncated or corrupt\\?\\)"),
        "binary": ("\x00\xff", "not valid JSON|not a JSON model file"),
        "list": ("[1, 2]", "expected a JSON object, got list"),
        "format": (json.dumps({**doc, "format": "x"}), "not a chainrule model"),
        "version": (json.dumps({**doc, "version": 9}), "unsupported version 9"),
        "shape": (
            json.dumps({**doc, "state_dict": {**doc["state_dict"], "layers.0.bias": [1.0]}}),
            "'layers.0.bias' has shape \\(1,\\), the model expects \\(5,\\)",
        ),
        "missing": (
            json.dumps(
                {
                    **doc,
                    "state_dict": {
                        k: v for k, v in doc["state_dict"].items() if k != "layers.1.weight"
                    },
                }
            ),
            "missing keys \\['layers.1.weight'\\]",
        ),
        "nan": (
            json.dumps(
                {**doc, "state_dict": {**doc["state_dict"], "layers.0.bias": [float("nan")] * 5}}
            ),
            "'layers.0.bias' holds a NaN",
        ),
    }
    return cases


@pytest.mark.parametrize(
    "case", ["truncated", "binary", "list", "format", "version", "shape", "missing", "nan"]
)
def test_bad_files_raise_and_leave_the_model_untouched(tmp_path, case):
    text, message = _corrupt_cases(tmp_path)[case]
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="latin-1")
    model = _model(7)
    before = model.state_dict()
    with pytest.raises(ValueError, match=message) as info:
        nn.load(bad, model)
    assert "bad.json" in str(info.value)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_truncated_npz(tmp_path):
    path = tmp_path / "m.npz"
    nn.save(_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"not a readable \.npz model file"):
        nn.load(path)


def test_save_errors_leave_no_file(tmp_path):
    import autograd

    with pytest.raises(ValueError, match="callable"):
        nn.save(nn.MLP(2, [1], activation=autograd.sin), tmp_path / "m.json")
    model = _model()
    model.parameters()[0].data = float("nan")
    with pytest.raises(ValueError, match=r"layers\.0\.weight holds a NaN"):
        nn.save(model, tmp_path / "m.json")
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        serialization.atomic_write(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "gelu", "linear"])
def test_saved_model_loads_into_the_equivalent_torch_module(tmp_path, activation):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model = nn.MLP(3, [6, 5, 2], activation=activation, seed=3)
    path = tmp_path / "m.json"
    nn.save(model, path)
    doc = json.loads(path.read_text())
    sizes = [doc["architecture"]["nin"], *doc["architecture"]["nouts"]]
    layers = torch.nn.ModuleList(
        torch.nn.Linear(a, b, dtype=torch.float64) for a, b in itertools.pairwise(sizes)
    )
    state = {k: torch.tensor(v, dtype=torch.float64) for k, v in doc["state_dict"].items()}
    layers.load_state_dict({k.removeprefix("layers."): v for k, v in state.items()})
    act = {
        "relu": F.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "leaky_relu": F.leaky_relu,
        "gelu": F.gelu,
        "linear": lambda t: t,
    }[activation]
    X = np.random.default_rng(0).normal(size=(20, 3))
    h = torch.tensor(X)
    for i, lin in enumerate(layers):
        h = lin(h)
        if i < len(layers) - 1:
            h = act(h)
    ours = np.array([[o.data for o in model(x)] for x in X])
    np.testing.assert_allclose(ours, h.detach().numpy(), rtol=0, atol=1e-12)
