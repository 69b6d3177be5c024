"""Bad input to the `chainrule` command and to `load`: each kind is refused in one line naming
the file, row, column, field or flag, with exit status 2, and nothing changed."""

import io
import json
import os
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nn
from nn import cli, serialization
from nn import data as datamod

WINE = Path(__file__).parent / "data" / "wine.csv"
QUICK = ["--samples", "10", "--epochs", "1", "--hidden", "2", "--no-progress"]
#: QUICK for a CSV: --samples is for a generated data set only.
QUICK_CSV = QUICK[2:]


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status, err, *parts):
    assert status == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    """A model trained on moons by the command (no scaler) and one on wine (a scaler)."""
    base = tmp_path_factory.mktemp("models")
    assert cli.main(["train", *QUICK, "--out", str(base / "toy")]) == 0
    argv = ["train", "--csv", str(WINE), "--target", "cultivar", "--hidden", "2"]
    assert cli.main([*argv, "--epochs", "1", "--no-progress", "--out", str(base / "wine")]) == 0
    return base / "toy" / "model.json", base / "wine" / "model.json"


# -- 1. predict: the same finiteness check as training; a bad scaler refused -----------------


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "NaN", "Infinity"])
def test_predict_refuses_non_finite_cells(tmp_path, capsys, toy_model, cell):
    rows = tmp_path / "rows.csv"
    rows.write_text(f"x0,x1\n0.5,0.5\n0.1,{cell}\n")
    status, out, err = _run(capsys, "predict", "--model", toy_model[0], "--csv", rows)
    _one_line_error(status, err, f"rows.csv: row 3, column 'x1': '{cell}' is not finite")
    assert out == ""


def test_predict_refuses_values_whose_output_overflows(tmp_path, capsys, toy_model):
    rows = tmp_path / "rows.csv"
    rows.write_text("x0,x1\n0.5,0.5\n1e308,1e308\n")
    status, out, err = _run(capsys, "predict", "--model", toy_model[0], "--csv", rows)
    _one_line_error(status, err, "rows.csv: data row 2: the model's output overflows float64")
    assert out == ""


def test_predict_refuses_values_that_overflow_when_standardised(tmp_path, capsys, toy_model):
    header = datamod.load_csv(WINE, target="cultivar").feature_names
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(header) + "\n" + ",".join(["-1.7e308"] * len(header)) + "\n")
    status, out, err = _run(capsys, "predict", "--model", toy_model[1], "--csv", rows)
    _one_line_error(status, err, "data row 1, column", "standardising it overflows")
    assert out == ""


def _with_metadata(tmp_path, model_path, change):
    doc = json.loads(Path(model_path).read_text())
    change(doc["metadata"])
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["scaler"]["scale"].__setitem__(0, 0.0), "metadata.scaler.scale[0] is 0.0"),
        (lambda m: m["scaler"]["scale"].__setitem__(2, -1.0), "metadata.scaler.scale[2] is -1.0"),
        (lambda m: m["scaler"]["scale"].__setitem__(1, None), "metadata.scaler.scale[1] is None"),
        (
            lambda m: m["scaler"]["scale"].__setitem__(3, float("nan")),
            "metadata.scaler.scale[3] is nan, expected a finite number",
        ),
        (
            lambda m: m["scaler"]["mean"].__setitem__(0, float("inf")),
            "metadata.scaler.mean[0] is inf, expected a finite number",
        ),
        (lambda m: m["scaler"]["mean"].__setitem__(1, "x"), "metadata.scaler.mean[1] is 'x'"),
        (lambda m: m["scaler"].pop("scale"), "metadata.scaler has no 'scale'"),
        (lambda m: m["scaler"]["mean"].pop(), "metadata.scaler.mean is [13."),
        (lambda m: m.__setitem__("scaler", [1, 2]), "metadata.scaler is list, expected an object"),
        (lambda m: m.__setitem__("scaler", "yes"), "metadata.scaler is str"),
        (lambda m: m["classes"].pop(), "metadata.classes has 2 names, but the model's 3 output"),
        (lambda m: m.__setitem__("classes", "abc"), "metadata.classes is 'abc', expected a list"),
        (lambda m: m.__setitem__("classes", [1, 2, 3]), "metadata.classes is [1, 2, 3]"),
        (lambda m: m.__setitem__("loss", {"a": 1}), "metadata.loss is {'a': 1}, expected one of"),
        (lambda m: m.__setitem__("loss", "hinge"), "metadata.loss is 'hinge', which needs one"),
        (lambda m: m["features"].pop(), "metadata.features has 12 names, but the model takes 13"),
        (lambda m: m.__setitem__("features", 7), "metadata.features is 7, expected a list"),
    ],
)
def test_predict_refuses_malformed_metadata(tmp_path, capsys, toy_model, change, message):
    path = _with_metadata(tmp_path, toy_model[1], change)
    status, out, err = _run(capsys, "predict", "--model", path, "--csv", WINE)
    _one_line_error(status, err, f"chainrule predict: error: --model: {path}: {message}")
    assert out == ""


def test_predict_refuses_metadata_that_is_not_an_object(tmp_path, capsys, toy_model):
    doc = json.loads(toy_model[0].read_text())
    doc["metadata"] = ["features"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    rows = tmp_path / "rows.csv"
    rows.write_text("x0,x1\n0.5,0.5\n")
    status, _, err = _run(capsys, "predict", "--model", path, "--csv", rows)
    _one_line_error(status, err, "metadata is list, expected a JSON object")


# -- 2. load(path, model=m) checks everything before changing m -----------------------------


@pytest.mark.parametrize("metadata", [["a"], "text", 3, True])
@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_load_into_a_model_checks_the_metadata_first(tmp_path, metadata, suffix):
    path = tmp_path / f"m{suffix}"
    nn.save(nn.MLP(2, [3, 1], seed=0), path)
    if suffix == ".json":
        doc = json.loads(path.read_text())
        doc["metadata"] = metadata
        path.write_text(json.dumps(doc))
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(str(arrays["__header__"]))
        header["metadata"] = metadata
        arrays["__header__"] = np.array(json.dumps(header))
        np.savez(path, **arrays)
    model = nn.MLP(2, [3, 1], seed=5)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"metadata is .*, expected a JSON object"):
        nn.load(path, model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


# -- 5. input files that are not regular files; sizes checked before reading ----------------


def test_devices_are_refused_without_reading(tmp_path, capsys, toy_model):
    for flag in ("--csv", "--model"):
        argv = {"--csv": toy_model[0], "--model": toy_model[0]}
        argv[flag] = Path("/dev/zero")
        status, _, err = _run(capsys, "predict", "--model", argv["--model"], "--csv", argv["--csv"])
        _one_line_error(status, err, f"{flag}: /dev/zero: not a regular file")
    status, _, err = _run(capsys, "train", "--csv", "/dev/zero", "--target", "y", *QUICK_CSV,
                          "--out", tmp_path / "o")  # fmt: skip
    _one_line_error(status, err, "--csv: /dev/zero: not a regular file")
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("flag", ["--csv", "--model"])
def test_a_fifo_is_refused_without_waiting(tmp_path, capsys, toy_model, flag):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    argv = {"--csv": WINE, "--model": toy_model[1]}
    argv[flag] = fifo
    result = {}

    def call():
        result["status"] = cli.main(
            ["predict", "--model", str(argv["--model"]), "--csv", str(argv["--csv"])]
        )

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("chainrule predict waited on a FIFO")
    _one_line_error(result["status"], capsys.readouterr().err, f"{flag}: {fifo}: not a regular")


def test_a_directory_is_refused(tmp_path, capsys, toy_model):
    status, _, err = _run(capsys, "predict", "--model", tmp_path, "--csv", WINE)
    _one_line_error(status, err, f"--model: {tmp_path}: is a directory")
    status, _, err = _run(capsys, "predict", "--model", toy_model[1], "--csv", tmp_path)
    _one_line_error(status, err, f"--csv: {tmp_path}: is a directory")


def test_a_csv_over_the_limit_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    big = tmp_path / "big.csv"
    big.write_text("a,y\n" + "1,0\n1,1\n" * 600)
    monkeypatch.setattr(datamod, "MAX_CSV_BYTES", 1000)
    real = datamod.csv.reader
    monkeypatch.setattr(datamod.csv, "reader", lambda *a, **k: pytest.fail("read it"))
    status, _, err = _run(capsys, "train", "--csv", big, "--target", "y", *QUICK_CSV,
                          "--out", tmp_path / "o")  # fmt: skip
    _one_line_error(status, err, "big.csv: 4,804 bytes, more than the 1,000 a CSV file may have")
    monkeypatch.setattr(datamod.csv, "reader", real)


def test_the_limits_are_stated_in_help(capsys):
    status, out, _ = _run(capsys, "train", "--help")
    out = " ".join(out.split())
    assert status == 0 and "a CSV of at most 64 MB" in out and "graph of at most 4 GB" in out
    status, out, _ = _run(capsys, "predict", "--help")
    out = " ".join(out.split())
    assert status == 0 and "(at most 256 MB)" in out and "(at most 64 MB)" in out
    status, out, _ = _run(capsys, "draw", "--help")
    out = " ".join(out.split())
    assert status == 0 and "at most 100,000 characters, 200 levels of brackets" in out


def _bomb(path: Path, inflated: int) -> None:
    """A valid-looking .npz whose one weight array inflates to `inflated` bytes of zeros."""
    doc = serialization._document(nn.MLP(2, [1], seed=0), None)
    header = {k: v for k, v in doc.items() if k != "state_dict"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("__header__.npy", _npy(np.array(json.dumps(header))))
        z.writestr("layers.0.bias.npy", _npy(np.zeros(1)))
        n = inflated // 8
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            head, {"descr": "<f8", "fortran_order": False, "shape": (1, n)}
        )
        with z.open("layers.0.weight.npy", "w", force_zip64=True) as f:
            f.write(head.getvalue())  # the magic string and the header
            chunk = bytes(1 << 20)
            for _ in range(n * 8 // len(chunk)):
                f.write(chunk)
    path.write_bytes(buf.getvalue())


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_an_npz_decompression_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.npz"
    _bomb(bomb, 1536 * 1024 * 1024)  # 1.5 GB of zeros
    assert bomb.stat().st_size < 2_000_000  # about 1.5 MB on disk
    monkeypatch.setattr(
        np.lib.format, "read_array", lambda *a, **k: pytest.fail("inflated an array")
    )
    with pytest.raises(ValueError, match=r"bomb\.npz: its arrays declare 1,610,6\d\d,\d\d\d bytes"):
        nn.load(bomb)


def test_an_npz_array_larger_than_its_member_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    nn.save(nn.MLP(2, [1], seed=0), path)
    with zipfile.ZipFile(path) as z:
        members = {m: z.read(m) for m in z.namelist()}
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 2)}
    )
    members["layers.0.weight.npy"] = head.getvalue() + bytes(64)  # 64 bytes of data, not 16 GB
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match=r"declares shape \(1000000000, 2\)"):
        nn.load(path)


def test_a_model_file_over_the_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    nn.save(nn.MLP(2, [1], seed=0), path)
    monkeypatch.setattr(serialization, "MAX_MODEL_BYTES", 100)
    with pytest.raises(ValueError, match=r"m\.json: \d+ bytes, more than the 100 a model file"):
        nn.load(path)


def test_a_full_batch_too_large_for_memory_is_refused_before_training(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(cli, "MAX_GRAPH_BYTES", 2**20)
    monkeypatch.setattr(cli, "fit", lambda *a, **k: pytest.fail("trained"))
    status, _, err = _run(capsys, "train", "--samples", "1000", "--no-progress",
                          "--out", tmp_path / "o")  # fmt: skip
    _one_line_error(status, err, "--batch-size: one step over 1,000 samples would build a graph")
    most = int(err.split("give --batch-size ")[1].split()[0].replace(",", ""))
    assert 1 <= most < 1000
    assert (
        cli._graph_bytes([2, 16, 16, 1], most, "tape")
        <= 2**20
        < cli._graph_bytes([2, 16, 16, 1], most + 1, "tape")
    )
    assert not (tmp_path / "o").exists()


# -- 6. main turns every expected kind of error into one line -------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad value"),
        OSError(28, "No space left on device"),
        OverflowError("too big"),
        ZeroDivisionError("div"),
        MemoryError(),
        RecursionError(),
        KeyboardInterrupt(),
        ImportError("No module named 'x'"),
    ],
)
def test_main_turns_every_expected_error_into_one_line(capsys, monkeypatch, error):
    def fail(args):
        raise error

    monkeypatch.setattr(cli, "run_predict", fail)
    monkeypatch.setattr(cli, "COMMANDS", [lambda sp: sp.add_parser("boom").set_defaults(func=fail)])
    status, _, err = _run(capsys, "boom")
    _one_line_error(status, err, "chainrule boom: error: ")


# -- 9. messages that used to mislead ---------------------------------------------------------


def _csv(tmp_path, rows):
    path = tmp_path / "data.csv"
    path.write_text("a,b,y\n" + "".join(rows))
    return path


def test_huge_csv_values_are_standardised_without_overflow(tmp_path, capsys):
    # 1e308 used to give seven numpy warnings, then "try a smaller learning rate".
    rows = [f"{s * 1e308},{i % 3},{i % 2}\n" for i, s in enumerate([1, -1, 0.5, -0.5] * 6)]
    path = _csv(tmp_path, rows)
    status, out, err = _run(capsys, "train", "--csv", path, "--target", "y", "--hidden", "2",
                            "--epochs", "2", "--no-progress", "--out", tmp_path / "o")  # fmt: skip
    assert status == 0 and err == "", err
    assert "no decision_boundary.png: the features span more than" in out
    doc = json.loads((tmp_path / "o" / "model.json").read_text())
    assert 0.5e308 < doc["metadata"]["scaler"]["scale"][0] < 1e308  # finite, and about the spread


def test_1e200_values_train_and_save(tmp_path, capsys):
    # 1e200 used to fail after the whole run, saving metrics with a bare JSON `inf` error.
    rows = [f"{(i % 5) * 1e200},{i % 3},{i % 2}\n" for i in range(24)]
    path = _csv(tmp_path, rows)
    status, _, err = _run(capsys, "train", "--csv", path, "--target", "y", "--hidden", "2",
                          "--epochs", "2", "--no-progress", "--out", tmp_path / "o")  # fmt: skip
    assert status == 0 and err == "", err
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["n_train"] == 18


def test_nan_in_the_data_is_blamed_on_the_data():
    X, y = nn.make_moons(10, seed=0)
    X[3, 1] = np.nan
    model = nn.MLP(2, [2, 1], seed=0)
    with pytest.raises(ValueError, match=r"fit: X\[3, 1\] is nan; the data must be finite"):
        nn.fit(model, X, y, "hinge", nn.SGD(model.parameters(), lr=0.1), progress=False)


def test_data_too_large_for_the_initial_weights_is_not_blamed_on_the_learning_rate():
    X, y = nn.make_moons(10, seed=0)
    model = nn.MLP(2, [2, 1], seed=0)
    with pytest.raises(ValueError, match="untrained model's loss is not finite") as info:
        nn.fit(model, X * 1e300, y, "mse", nn.SGD(model.parameters(), lr=1e-9), progress=False)
    assert "whatever the learning rate; standardise" in str(info.value)


@pytest.mark.parametrize("seed", ["-1", "1.5", "x", str(2**64)])
def test_a_bad_seed_names_the_flag(tmp_path, capsys, seed):
    status, _, err = _run(capsys, "train", "--seed", seed, "--out", tmp_path / "o")
    _one_line_error(status, err, "argument --seed: expected an integer")


def test_cross_entropy_on_one_output_says_so():
    X, y = nn.make_moons(10, seed=0)
    model = nn.MLP(2, [2, 1], seed=0)
    with pytest.raises(ValueError, match="cross_entropy needs one output per class") as info:
        nn.fit(model, X, y, "cross_entropy", nn.SGD(model.parameters(), lr=0.1), progress=False)
    assert "'bce' or 'hinge'" in str(info.value)


def test_draw_without_the_graphviz_package_says_how_to_install(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz raises ImportError
    status, out, err = _run(capsys, "draw", "x*2", "--set", "x=1")
    hint = 'pip install "chainrule[viz]"'
    assert err == f"chainrule draw: error: needs the graphviz Python package: {hint}\n"
    assert status == 2 and out == ""


# -- small things -----------------------------------------------------------------------------


def test_no_command_lists_the_commands(capsys):
    status, out, err = _run(capsys)
    assert status == 2 and err == ""
    for command in ("train", "predict", "draw"):
        assert f"    {command} " in out


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"chainrule {version('chainrule')}\n"


def test_hidden_needs_sizes(tmp_path, capsys):
    status, _, err = _run(capsys, "train", "--hidden", "--out", tmp_path / "o")
    _one_line_error(status, err, "argument --hidden: expected at least one argument")


def test_a_license_file_as_pyproject_says():
    root = Path(__file__).resolve().parents[1]
    text = (root / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) " in text
    assert "the chainrule authors" in text
    assert 'license = "MIT"' in (root / "pyproject.toml").read_text()


@pytest.mark.slow
def test_a_large_csv_is_read_in_bounded_memory_and_refused_before_training(
    tmp_path, capsys, monkeypatch
):
    # A million rows used to reach 6 GB and a MemoryError traceback after minutes. Here 200,000
    # rows against a limit of 256 MB stand for it (the same code path, a fifth of the time),
    # asked to train in one batch (by default, above 10,000 samples, fit takes batches of
    # 1,000 and trains: tests/test_fit_engines.py).
    import tracemalloc

    rng = np.random.default_rng(0)
    cells = rng.integers(0, 1000, size=(200_000, 2))
    path = tmp_path / "big.csv"
    path.write_text(
        "a,b,y\n" + "".join(f"{a / 100},{b / 100},{int(a > b)}\n" for a, b in cells.tolist())
    )
    monkeypatch.setattr(cli, "MAX_GRAPH_BYTES", 2**28)
    monkeypatch.setattr(cli, "fit", lambda *a, **k: pytest.fail("trained"))
    tracemalloc.start()
    try:
        status, _, err = _run(capsys, "train", "--csv", path, "--target", "y", "--no-progress",
                              "--batch-size", "150000", "--out", tmp_path / "o")  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _one_line_error(status, err, "--batch-size: one step over 150,000 samples would build")
    assert peak < 80 * 2**20, peak  # the file is 2.6 MB; its cells as floats 3.2 MB
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("which", ["--csv", "--model"])
def test_predict_refuses_out_that_is_one_of_its_inputs(tmp_path, capsys, toy_model, which):
    # `--out` naming the CSV (or the model) it reads would replace the user's data with
    # predictions: refused, and both inputs are left byte for byte as they were.
    rows = tmp_path / "rows.csv"
    rows.write_text("x0,x1\n0.5,0.25\n")
    model = tmp_path / "model.json"
    model.write_bytes(toy_model[0].read_bytes())
    before = rows.read_bytes(), model.read_bytes()
    target = {"--csv": rows, "--model": model}[which]
    alias = tmp_path / "sub" / ".." / target.name  # the same file by another spelling
    (tmp_path / "sub").mkdir()
    status, _, err = _run(capsys, "predict", "--model", model, "--csv", rows, "--out", alias)
    _one_line_error(status, err, f"--out: {alias} is the {which} file")
    assert (rows.read_bytes(), model.read_bytes()) == before


def test_a_class_missing_from_the_training_split_is_refused(tmp_path, capsys):
    # Two rows of two classes: the stratified 25% split keeps one row for training, so
    # the model would be trained on one class and scored on a class it never saw.
    rows = tmp_path / "two.csv"
    rows.write_text("a,b,y\n1,2,0\n3,4,1\n")
    out = tmp_path / "out"
    status, _, err = _run(capsys, "train", "--csv", rows, "--target", "y", *QUICK_CSV,
                          "--out", out)  # fmt: skip
    _one_line_error(status, err, "--test-size 0.25: the training split has no sample of class")
    assert not out.exists()
    # With every row for training, the same table trains.
    status, _, err = _run(capsys, "train", "--csv", rows, "--target", "y", *QUICK_CSV,
                          "--test-size", "0", "--out", out)  # fmt: skip
    assert status == 0, err


def test_predict_to_a_closed_stdout_is_one_line_error(capsys, monkeypatch, toy_model):
    # `chainrule predict ... >&-`: Python's sys.stdout is then None; the predictions have
    # nowhere to go, which is an error naming --out, not a traceback or a silent exit 0.
    rows = toy_model[0].parent / "rows.csv"
    rows.write_text("x0,x1\n0.5,0.25\n")
    monkeypatch.setattr(sys, "stdout", None)
    status = cli.main(["predict", "--model", str(toy_model[0]), "--csv", str(rows)])
    _one_line_error(status, capsys.readouterr().err, "standard output is closed; give --out")
