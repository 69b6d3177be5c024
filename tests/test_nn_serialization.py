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
            "layers\\.0\\.bias\\[0\\] is nan, expected a finite number",
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


# -- a corrupt architecture is refused before any model is built ---------------------------


def _saved_doc(tmp_path):
    path = tmp_path / "m.json"
    nn.save(nn.MLP(2, [16, 1], seed=0), path)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "arch_change, message",
    [
        (
            {"nouts": [1000000000, 1]},
            r"layers\.0\.weight has shape \(16, 2\) but the architecture says \(1000000000, 2\)",
        ),
        (
            {"nin": 10**12},
            r"layers\.0\.weight has shape \(16, 2\) but the architecture says \(16, 10",
        ),
        ({"nin": 0}, r"architecture\.nin is 0, expected a positive int"),
        ({"nouts": [1] * 1001}, r"architecture\.nouts is \[1, 1, .*expected a list of 1\.\.1000"),
        ({"nouts": [16, 1, 1]}, r"layers\.2\.weight is missing, but the architecture says"),
        ({"nouts": [16]}, r"the architecture has no parameters \['layers\.1\.weight'"),
        ({"nouts": [16.0, 1]}, r"architecture\.nouts\[0\] is 16\.0, expected a positive int"),
        ({"nouts": [True, 1]}, r"architecture\.nouts\[0\] is True, expected a positive int"),
        ({"nin": "2"}, r"architecture\.nin is '2', expected a positive int"),
        ({"nouts": 16}, r"architecture\.nouts is 16, expected a list"),
        ({"activation": "swish"}, r"architecture\.activation is 'swish', expected one of"),
    ],
)
def test_architecture_is_checked_against_the_state_dict_before_building(
    tmp_path, monkeypatch, arch_change, message
):
    path, doc = _saved_doc(tmp_path)
    doc["architecture"].update(arch_change)
    path.write_text(json.dumps(doc))

    def no_build(*args, **kwargs):
        raise AssertionError("a model was built from a corrupt architecture")

    monkeypatch.setattr(serialization, "MLP", no_build)
    with pytest.raises(ValueError, match=message) as info:
        nn.load(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_cli_predict_refuses_a_huge_architecture_in_one_line(tmp_path, capsys):
    from nn import cli

    path, doc = _saved_doc(tmp_path)
    doc["architecture"]["nouts"] = [1000000000, 1]
    path.write_text(json.dumps(doc))
    csv_path = tmp_path / "new.csv"
    csv_path.write_text("x0,x1\n0.5,0.25\n")
    status = cli.main(["predict", "--model", str(path), "--csv", str(csv_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err == (
        f"chainrule predict: error: --model: {path}: layers.0.weight has shape (16, 2) "
        "but the architecture says (1000000000, 2)\n"
    )


# -- files are written with the permissions open() would give ------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_saved_files_respect_the_umask(tmp_path, umask, suffix):
    import os
    import stat

    old = os.umask(umask)
    try:
        path = tmp_path / f"m{suffix}"
        nn.save(_model(), path)
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_overwriting_keeps_the_files_mode(tmp_path):
    import os
    import stat

    path = tmp_path / "m.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    nn.save(_model(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# -- every entry must be a finite real number ----------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        (True, r"layers\.0\.weight\[1, 0\] is True \(bool\), expected a real number"),
        (False, r"layers\.0\.weight\[1, 0\] is False \(bool\)"),
        ("0.5", r"layers\.0\.weight\[1, 0\] is '0\.5' \(str\)"),
        (None, r"layers\.0\.weight\[1, 0\] is None \(NoneType\)"),
        (float("inf"), r"layers\.0\.weight\[1, 0\] is inf, expected a finite number"),
        (float("-inf"), r"layers\.0\.weight\[1, 0\] is -inf, expected a finite number"),
        (float("nan"), r"layers\.0\.weight\[1, 0\] is nan, expected a finite number"),
    ],
)
@pytest.mark.parametrize("into_model", [False, True])
def test_load_refuses_non_finite_and_non_numeric_weights(tmp_path, entry, message, into_model):
    path, doc = _saved_doc(tmp_path)
    doc["state_dict"]["layers.0.weight"][1][0] = entry
    path.write_text(json.dumps(doc))  # json writes NaN/Infinity, which json.loads reads back
    model = nn.MLP(2, [16, 1], seed=1) if into_model else None
    before = model.state_dict() if model else None
    with pytest.raises(ValueError, match=message):
        nn.load(path, model)
    if model is not None:
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(v, before[k])


def test_npz_with_a_bool_array_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    nn.save(nn.MLP(2, [1], seed=0), path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["layers.0.bias"] = np.array([True])
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"layers\.0\.bias has dtype bool, expected real"):
        nn.load(path)


def test_parameter_limit(tmp_path, monkeypatch):
    path, _ = _saved_doc(tmp_path)
    monkeypatch.setattr(serialization, "MAX_PARAMETERS", 16 * 2 + 16 + 16)  # 65 in the file
    with pytest.raises(ValueError, match=r"the model has 65 parameters, more than 64"):
        nn.load(path)
