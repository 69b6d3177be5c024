"""The `chainrule` command, run in-process: a quick training run, predict, and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nn
from nn import cli

WINE = Path(__file__).parent / "data" / "wine.csv"
ROOT = Path(__file__).parent.parent


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_quick_train_writes_every_file_and_is_reproducible(tmp_path, capsys):
    args = ["train", "--epochs", "3", "--samples", "30", "--no-progress"]
    status, out, err = _run(capsys, *args, "--out", tmp_path / "a")
    assert status == 0, err
    assert "moons: 30 samples (30 train, 0 test), 2 features, 2 classes; MLP 2-16-16-1" in out
    assert "final train loss" in out and "train accuracy" in out
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["decision_boundary.png", "loss.png", "metrics.json", "model.json"]
    for png in ("loss.png", "decision_boundary.png"):
        assert (tmp_path / "a" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 3
    assert metrics["train_loss"] == metrics["history"]["loss"][-1]
    model = nn.load(tmp_path / "a" / "model.json")
    assert model.config()["nouts"] == [16, 16, 1]

    assert _run(capsys, *args, "--out", tmp_path / "b")[0] == 0
    assert (tmp_path / "a" / "metrics.json").read_text().replace("/a", "/b") == (
        tmp_path / "b" / "metrics.json"
    ).read_text()


def test_train_on_a_csv_then_predict(tmp_path, capsys):
    out_dir = tmp_path / "run"
    status, out, err = _run(
        capsys,
        "train",
        "--csv",
        WINE,
        "--target",
        "cultivar",
        "--hidden",
        "8",
        "--epochs",
        "20",
        "--optimizer",
        "adam",
        "--batch-size",
        "32",
        "--no-progress",
        "--out",
        out_dir,
    )
    assert status == 0, err
    assert "178 samples (133 train, 45 test), 13 features, 3 classes" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.9
    assert not (out_dir / "decision_boundary.png").exists()  # 13 features: no 2-D picture

    status, out, err = _run(capsys, "predict", "--model", out_dir / "model.json", "--csv", WINE)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction,p_class_0,p_class_1,p_class_2"
    assert len(lines) == 179
    assert lines[1].startswith("class_0,")
    status, out, _ = _run(
        capsys,
        "predict",
        "--model",
        out_dir / "model.json",
        "--csv",
        WINE,
        "--out",
        tmp_path / "pred.csv",
    )
    assert status == 0 and "wrote 178 predictions" in out
    assert (tmp_path / "pred.csv").read_text().splitlines() == lines


def _bad_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,label\n1,2,0\n3,x,1\n")
    return p


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--csv", "{tmp}/missing.csv", "--target", "y"], "missing.csv: no such file"),
        (["train", "--csv", str(WINE), "--target", "nope"], "no column 'nope'"),
        (
            ["train", "--csv", "{bad}", "--target", "label"],
            "row 3, column 'b': 'x' is not a number",
        ),
        (["train", "--csv", str(WINE)], "--csv needs --target"),
        (["train", "--target", "y"], "--target is for --csv"),
        # A flag that does not apply is refused, not silently ignored.
        (["train", "--dataset", "iris", "--samples", "50"], "--samples is for a generated"),
        (["train", "--csv", str(WINE), "--target", "cultivar", "--noise", "0.2"], "--noise is for"),
        (["train", "--dataset", "blobs", "--noise", "0.2"], "--noise does not apply to blobs"),
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum is for sgd"),
        (["train", "--dataset", "spirals", "--momentum", "0.9"], "--momentum is for sgd"),
        (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
        (["train", "--lr", "abc"], "argument --lr: expected a number >= 0, got 'abc'"),
        (["train", "--test-size", "1"], "argument --test-size: expected a fraction in [0, 1)"),
        (["train", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["train", "--dataset", "iris", "--loss", "hinge"], "--loss hinge: needs two classes"),
        (["train", "--samples", "20", "--lr", "1e200", "--loss", "mse"], "diverged at epoch 1"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["predict", "--model", "{tmp}/none.json", "--csv", str(WINE)], "none.json: no such file"),
        (["predict", "--model", "{bad}", "--csv", str(WINE)], "not valid JSON"),
        (["predict"], "the following arguments are required: --model, --csv"),
    ],
)
def test_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    bad = _bad_csv(tmp_path)
    argv = [a.format(tmp=tmp_path, bad=bad) for a in argv]
    if argv[0] == "train":
        argv += (
            ["--out", str(tmp_path / "out"), "--no-progress", "--epochs", "2"]
            if ("--epochs" not in argv)
            else ["--out", str(tmp_path / "out")]
        )
    status, _, err = _run(capsys, *argv)
    assert status == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_failure_while_writing_leaves_out_untouched(tmp_path, capsys, monkeypatch):
    import nn.plot

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(nn.plot, "plot_history", fail)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "model.json").write_text("an earlier run's model")
    status, _, err = _run(
        capsys, "train", "--epochs", "1", "--samples", "10", "--no-progress", "--out", out_dir
    )
    assert status == 2 and err == "chainrule train: error: disk full\n"
    # No new model.json without its metrics and plots; the earlier run's files stay.
    assert [p.name for p in out_dir.iterdir()] == ["model.json"]
    assert (out_dir / "model.json").read_text() == "an earlier run's model"
    # A directory the run created is removed again.
    status, _, _ = _run(
        capsys,
        "train",
        "--epochs",
        "1",
        "--samples",
        "10",
        "--no-progress",
        "--out",
        tmp_path / "new" / "run",
    )
    assert status == 2 and not (tmp_path / "new").exists()


def test_out_must_be_a_directory(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    status, _, err = _run(
        capsys, "train", "--epochs", "1", "--samples", "10", "--no-progress", "--out", f
    )
    assert status == 2 and "--out: " in err and "is not a directory" in err


def test_parser_takes_new_subcommands_by_one_entry(monkeypatch):
    def add_hello(subparsers):
        subparsers.add_parser("hello").set_defaults(func=lambda args: 0)

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, add_hello])
    assert cli.build_parser().parse_args(["hello"]).command == "hello"
    assert cli.main(["hello"]) == 0


def test_python_dash_m_nn_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "nn", "train", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0
    assert "--dataset" in result.stdout and "--batch-size" in result.stdout


@pytest.mark.parametrize("dataset", ["circles", "spirals", "xor", "blobs", "iris"])
def test_every_dataset_trains(tmp_path, capsys, dataset):
    status, out, err = _run(
        capsys,
        "train",
        "--dataset",
        dataset,
        # --samples is for a generated data set only (refused for iris).
        *([] if dataset == "iris" else ["--samples", "24"]),
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--no-progress",
        "--out",
        tmp_path,
    )
    assert status == 0, err
    assert out.startswith(f"{dataset}: ")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["train_accuracy"] <= 1.0


def test_predict_names_a_missing_feature_column(tmp_path, capsys):
    assert (
        _run(
            capsys, "train", "--epochs", "1", "--samples", "10", "--no-progress", "--out", tmp_path
        )[0]
        == 0
    )
    status, _, err = _run(capsys, "predict", "--model", tmp_path / "model.json", "--csv", WINE)
    assert status == 2
    assert "wine.csv: no column 'x0'" in err and err.count("\n") == 1


def test_draw_subcommand_writes_svg_and_dot(tmp_path, capsys):
    """`chainrule draw` is wired into the same command as train and predict."""
    pytest.importorskip("graphviz")
    dot_file = tmp_path / "graph.dot"
    status = cli.main(
        ["draw", "tanh(x*w + b)", "--set", "x=1", "w=-2", "b=0.5", "-o", str(dot_file)]
    )
    assert status == 0
    source = dot_file.read_text()
    assert source.startswith("digraph")
    assert "tanh" in source
    out = capsys.readouterr().out
    # d/dx tanh(x*w + b) at x=1, w=-2, b=0.5 is w * (1 - tanh(-1.5)**2) = -0.3614...
    assert "x -0.3614" in out


def test_draw_subcommand_rejects_unsafe_expression(capsys):
    status = cli.main(["draw", "__import__('os')"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chainrule draw: error:")
    assert "__import__" in err
    assert "\n" not in err


# -- --out is checked before training -------------------------------------------------------


def _no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("trained although --out is unusable")

    monkeypatch.setattr(cli, "fit", fail)


def test_an_existing_file_as_out_fails_before_training(tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    f = tmp_path / "file"
    f.write_text("x")
    status, out, err = _run(capsys, "train", "--no-progress", "--out", f)
    assert status == 2 and out == ""
    assert err == f"chainrule train: error: --out: {f} exists and is not a directory\n"
    assert f.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "out, parent",
    [("/proc/chainrule-run", "/proc"), ("/proc/chainrule-run/sub", "/proc/chainrule-run")],
)
def test_an_unwritable_out_fails_before_training(capsys, monkeypatch, out, parent):
    # /proc refuses new entries even to root, which tests may run as. A run is written beside
    # --out and renamed to it, so it is --out's parent that must be writable (or creatable).
    _no_training(monkeypatch)
    status, stdout, err = _run(capsys, "train", "--no-progress", "--out", out)
    assert status == 2 and stdout == ""
    assert err.startswith("chainrule train: error: --out: cannot ") and f" {parent} (" in err
    assert err.count("\n") == 1 and ".staging" not in err


def test_predict_out_is_checked_before_reading(tmp_path, capsys):
    model = tmp_path / "missing.json"  # never read: --out fails first
    for out, message in [
        (tmp_path, f"--out: {tmp_path} is a directory; give a file name"),
        (tmp_path / "no" / "p.csv", f"--out: the directory {tmp_path / 'no'} does not exist"),
    ]:
        status, _, err = _run(capsys, "predict", "--model", model, "--csv", WINE, "--out", out)
        assert status == 2 and err == f"chainrule predict: error: {message}\n"


# -- --out holds exactly one run's files ---------------------------------------------------


def test_a_run_replaces_the_whole_earlier_run(tmp_path, capsys):
    out_dir = tmp_path / "runs"
    quick = ["--epochs", "1", "--no-progress", "--out", out_dir]
    assert _run(capsys, "train", "--samples", "10", *quick)[0] == 0
    assert (out_dir / "decision_boundary.png").exists()
    status, _, err = _run(
        capsys, "train", "--csv", WINE, "--target", "cultivar", "--hidden", "2", *quick
    )
    assert status == 0, err
    # 13 features: no decision boundary, so the moons picture must not stay beside the model.
    assert sorted(p.name for p in out_dir.iterdir()) == ["loss.png", "metrics.json", "model.json"]
    assert json.loads((out_dir / "metrics.json").read_text())["data"] == str(WINE)
    # Nothing is left beside --out either.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_folder_holding_other_files_is_refused_before_training(tmp_path, capsys, monkeypatch):
    # A run replaces the whole --out folder, so one holding anything it did not write (a
    # file of the user's, a folder) is refused: nothing of the user's is ever replaced.
    out_dir = tmp_path / "runs"
    assert _run(capsys, "train", "--samples", "10", "--epochs", "1", "--no-progress",
                "--out", out_dir)[0] == 0  # fmt: skip
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    (out_dir / "notes.txt").write_text("mine")
    (out_dir / "sub").mkdir()
    _no_training(monkeypatch)
    status, stdout, err = _run(capsys, "train", "--no-progress", "--out", out_dir)
    assert status == 2 and stdout == ""
    assert err == (
        f"chainrule train: error: --out: {out_dir} holds entries no run wrote (notes.txt, sub); "
        "a run replaces the whole folder, so give a new or empty folder, or one an earlier run "
        "wrote\n"
    )
    after = {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()}
    assert after == {**before, "notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


# -- files get the permissions of a plain open() --------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_respect_the_umask(tmp_path, capsys, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        out_dir = tmp_path / "run"
        assert (
            _run(
                capsys,
                "train",
                "--epochs",
                "1",
                "--samples",
                "10",
                "--no-progress",
                "--out",
                out_dir,
            )[0]
            == 0
        )
        pred = tmp_path / "pred.csv"
        new = tmp_path / "new.csv"
        new.write_text("x0,x1\n0.1,0.2\n")
        argv = ["predict", "--model", out_dir / "model.json", "--csv", new, "--out", pred]
        assert _run(capsys, *argv)[0] == 0
    finally:
        os.umask(old)
    files = [*out_dir.iterdir(), pred]
    assert len(files) == 5
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o777 & ~umask


# -- help texts -------------------------------------------------------------------------------


def test_help_texts_show_percent_signs_once(capsys):
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "train" in a.choices)
    texts = [parser.format_help()] + [p.format_help() for p in subparsers.choices.values()]
    for text in texts:
        assert "%%" not in text
    assert "25% is held out for testing" in " ".join(
        texts[1 + list(subparsers.choices).index("train")].split()
    )
    status, out, _ = _run(capsys, "train", "--help")
    assert status == 0 and "%%" not in out and "25%" in out


# -- divergence is one readable line ---------------------------------------------------------


def test_divergence_with_a_huge_learning_rate_is_one_short_line(tmp_path, capsys):
    status, _, err = _run(capsys, "train", "--lr", "1e30", "--no-progress", "--out", tmp_path / "o")
    assert status == 2
    assert err.count("\n") == 1 and len(err) < 400, err
    # Caught by the loss's growth after the first epoch, before anything overflows.
    assert err.startswith("chainrule train: error: training diverged at epoch 1, batch 1: ")
    assert "the loss grew to " in err and "the model keeps the untrained weights" in err
    assert err.rstrip().endswith("(--lr is 1e+30)")
    assert not (tmp_path / "o").exists()


def test_a_new_run_keeps_the_mode_of_the_files_it_replaces(tmp_path, capsys):
    import os
    import stat

    out_dir = tmp_path / "run"
    argv = ["train", "--epochs", "1", "--samples", "10", "--no-progress", "--out", out_dir]
    assert _run(capsys, *argv)[0] == 0
    os.chmod(out_dir / "model.json", 0o600)
    assert _run(capsys, *argv)[0] == 0
    assert stat.S_IMODE((out_dir / "model.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((out_dir / "metrics.json").stat().st_mode) == 0o666 & ~_umask()


def _umask():
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("argv", "optimizer", "lr", "loss"),
    [
        # Toy data keep micrograd's demo: SGD, lr 1.0, hinge.
        (["--dataset", "moons", "--samples", "20"], "sgd", 1.0, "hinge"),
        # Real data and CSVs: Adam, lr 0.01; the rest of the recipe is shared.
        (["--dataset", "iris"], "adam", 0.01, "cross_entropy"),
        (["--dataset", "breast_cancer"], "adam", 0.01, "hinge"),
        (["--csv", WINE, "--target", "cultivar"], "adam", 0.01, "cross_entropy"),
    ],
)
def test_default_recipe_per_kind_of_data(tmp_path, capsys, argv, optimizer, lr, loss):
    status, out, err = _run(
        capsys, "train", *argv, "--epochs", "2", "--no-progress", "--out", tmp_path
    )
    assert status == 0, err
    assert out.splitlines()[0].endswith(f"{loss} loss, {optimizer}")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    args = metrics["args"]
    assert args["optimizer"] == optimizer
    assert (args["seed"], args["weight_decay"], args["schedule"]) == (0, 1e-4, "linear")
    assert (args["hidden"], args["activation"], args["momentum"]) == ([16, 16], "relu", 0.0)
    # The first epoch runs at the starting rate; the linear schedule then lowers it.
    assert metrics["history"]["lr"][0] == pytest.approx(lr, rel=1e-12)
    assert metrics["history"]["lr"][1] < lr
    if argv[0] != "--dataset" or argv[1] != "moons":
        assert metrics["n_test"] > 0  # 25% held out
