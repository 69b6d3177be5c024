"""Faults injected into `chainrule train --out`, `predict --out`, `draw -o` and `save`: an error
at the n-th write or rename, a kill between two steps, a full disk. After each one, the files
are the earlier ones or the new ones, complete, and nothing is left behind."""

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nn
from autograd import files
from nn import cli, run_dir

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--samples", "10", "--epochs", "1", "--hidden", "2", "--no-progress"]


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def earlier_run(tmp_path, capsys):
    """--out holding a complete earlier run (seed 1), and its bytes."""
    out = tmp_path / "runs"
    assert _run(capsys, "train", *QUICK, "--seed", "1", "--out", out)[0] == 0
    return out, _snapshot(out)


def _assert_only(parent: Path, *names: str) -> None:
    # Nothing beside --out: no staging folder, no folder put aside, no temporary file.
    assert sorted(p.name for p in parent.iterdir()) == sorted(names)


# -- an error at the n-th write or rename ---------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_an_error_at_the_nth_file_write_changes_nothing(earlier_run, capsys, monkeypatch, n):
    out, before = earlier_run
    real = os.replace
    count = {"n": 0}

    def replace(src, dst):
        count["n"] += 1
        if count["n"] == n:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    status, _, err = _run(capsys, "train", *QUICK, "--seed", "2", "--out", out)
    assert status == 2 and err.count("\n") == 1 and "No space left on device" in err
    assert _snapshot(out) == before
    _assert_only(out.parent, "runs")


def test_an_error_in_the_swap_changes_nothing(earlier_run, capsys, monkeypatch):
    out, before = earlier_run

    def fail(a, b):
        raise OSError(errno.EIO, "Input/output error", str(b))

    monkeypatch.setattr(run_dir, "exchange", fail)
    status, _, err = _run(capsys, "train", *QUICK, "--seed", "2", "--out", out)
    assert status == 2 and err == f"chainrule train: error: {out}: Input/output error\n"
    assert _snapshot(out) == before
    _assert_only(out.parent, "runs")


@pytest.mark.parametrize("failing", [1, 2])
def test_the_two_rename_fallback_restores_the_earlier_run(
    earlier_run, capsys, monkeypatch, failing
):
    # Where the atomic exchange is unavailable, DIR is renamed aside, then the new run in.
    out, before = earlier_run
    monkeypatch.setattr(run_dir, "exchange", lambda a, b: False)
    real = os.rename
    count = {"n": 0}

    def rename(src, dst):
        count["n"] += 1
        if count["n"] == failing:
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real(src, dst)

    monkeypatch.setattr(run_dir.os, "rename", rename)
    status, _, err = _run(capsys, "train", *QUICK, "--seed", "2", "--out", out)
    assert status == 2 and "Input/output error" in err
    monkeypatch.setattr(run_dir.os, "rename", real)
    assert _snapshot(out) == before
    _assert_only(out.parent, "runs")


def test_the_fallback_commits_a_complete_new_run(earlier_run, capsys, monkeypatch):
    out, before = earlier_run
    monkeypatch.setattr(run_dir, "exchange", lambda a, b: False)
    assert _run(capsys, "train", *QUICK, "--seed", "2", "--out", out)[0] == 0
    after = _snapshot(out)
    assert sorted(after) == sorted(before) and after["model.json"] != before["model.json"]
    assert json.loads(after["metrics.json"])["args"]["seed"] == 2
    _assert_only(out.parent, "runs")


def test_a_first_run_whose_rename_fails_leaves_nothing(tmp_path, capsys, monkeypatch):
    def fail(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(run_dir.os, "rename", fail)
    out = tmp_path / "new" / "runs"
    status, _, err = _run(capsys, "train", *QUICK, "--out", out)
    assert status == 2 and "Read-only file system" in err
    _assert_only(tmp_path)  # the parent folder it made is removed again


# -- a kill between two steps ---------------------------------------------------------------

# Runs `chainrule train` in a child process that kills itself (SIGKILL: no clean-up code
# runs) at one step of the commit.
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from nn import cli, run_dir
    from autograd import files

    step, fallback = sys.argv[1], sys.argv[2] == "fallback"
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if step.startswith("write"):
        n, count, real = int(step[5:]), [0], files.os.replace
        def replace(src, dst):
            count[0] += 1
            if count[0] == n:
                die()
            return real(src, dst)
        files.os.replace = replace
    real_exchange, real_remove = run_dir.exchange, run_dir._remove_run_folder
    def exchange(a, b):
        if step == "swap":
            die()
        return False if fallback else real_exchange(a, b)
    run_dir.exchange = exchange
    if step == "between-renames":
        real_rename, count = os.rename, [0]
        def rename(src, dst):
            count[0] += 1
            if count[0] == 2:
                die()
            return real_rename(src, dst)
        run_dir.os.rename = rename
    if step == "after-swap":
        def remove(folder):
            die()
        run_dir._remove_run_folder = remove
    sys.exit(cli.main(sys.argv[3:]))
    """
)


def _killed_run(step, out, fallback=False):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLER,
            step,
            "fallback" if fallback else "atomic",
            "train",
            *QUICK,
            "--seed",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()


@pytest.mark.parametrize(
    "step, fallback, committed",
    [
        ("write1", False, False),
        ("write3", False, False),
        ("swap", False, False),
        ("after-swap", False, True),
        ("between-renames", True, False),
        ("after-swap", True, True),
    ],
)
def test_a_kill_between_steps_leaves_one_complete_run(
    earlier_run, capsys, step, fallback, committed
):
    out, before = earlier_run
    _killed_run(step, out, fallback)
    if step == "between-renames":
        assert not out.exists()  # the one moment the fallback leaves no --out ...
    else:
        now = _snapshot(out)
        if committed:
            assert sorted(now) == sorted(before) and now["model.json"] != before["model.json"]
            assert json.loads(now["metrics.json"])["args"]["seed"] == 2
        else:
            assert now == before
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "runs"]
    assert leftovers and all(name.startswith(".runs.") for name in leftovers)
    # ... and the next run to the same --out puts things right and cleans up.
    assert _run(capsys, "train", *QUICK, "--seed", "3", "--out", out)[0] == 0
    assert json.loads((out / "metrics.json").read_text())["args"]["seed"] == 3
    _assert_only(out.parent, "runs")


def test_a_staging_folder_in_use_is_left_alone(earlier_run, capsys):
    import fcntl

    out, _ = earlier_run
    busy = out.parent / ".runs.staging-busy"
    busy.mkdir()
    (busy / "model.json").write_text("being written")
    fd = os.open(busy, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running run holds
        assert _run(capsys, "train", *QUICK, "--out", out)[0] == 0
        assert (busy / "model.json").read_text() == "being written"
    finally:
        os.close(fd)
    assert _run(capsys, "train", *QUICK, "--out", out)[0] == 0
    _assert_only(out.parent, "runs")


def test_staging_folders_of_the_earlier_layout_are_removed(earlier_run, capsys):
    # Earlier versions staged inside --out (".staging-XXXX"); a kill left them there.
    out, _ = earlier_run
    old = out / ".staging-abc123"
    old.mkdir()
    (old / "model.json").write_text("half")
    (old / ".metrics.json.x1y2.tmp").write_text("half")
    assert _run(capsys, "train", *QUICK, "--out", out)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "decision_boundary.png",
        "loss.png",
        "metrics.json",
        "model.json",
    ]


def test_a_leftover_with_files_of_the_users_is_not_deleted(earlier_run, capsys):
    out, _ = earlier_run
    odd = out.parent / ".runs.staging-odd"
    odd.mkdir()
    (odd / "mine.txt").write_text("not a run's")
    (odd / "loss.png").write_text("a run's")
    assert _run(capsys, "train", *QUICK, "--out", out)[0] == 0
    assert [p.name for p in odd.iterdir()] == ["mine.txt"]


# -- a full disk ------------------------------------------------------------------------------


@contextlib.contextmanager
def _tiny_disk(path: Path, size: str):
    """A tmpfs of `size` mounted at `path` (root only; skipped elsewhere)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root on Linux")
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_disk_keeps_the_earlier_files(tmp_path, capsys):
    with _tiny_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "runs"
        assert _run(capsys, "train", *QUICK, "--seed", "1", "--out", out)[0] == 0
        before = _snapshot(out)
        # Fill the disk but for half a run: a second run needs a whole one beside the first.
        stat = os.statvfs(disk)
        free = stat.f_bavail * stat.f_frsize
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * (free - sum(map(len, before.values())) // 2))
        status, _, err = _run(capsys, "train", *QUICK, "--seed", "2", "--out", out)
        assert status == 2 and err.count("\n") == 1 and "No space left on device" in err
        assert _snapshot(out) == before
        _assert_only(disk, "filler", "runs")

        # predict --out and draw -o: the old file stays whole.
        csv_path = tmp_path / "rows.csv"
        csv_path.write_text("x0,x1\n" + "0.5,0.25\n" * 20_000)
        pred = disk / "pred.csv"
        pred.write_text("old predictions\n")
        argv = ["predict", "--model", out / "model.json", "--csv", csv_path, "--out", pred]
        status, _, err = _run(capsys, *argv)
        assert status == 2 and "No space left on device" in err and err.count("\n") == 1
        assert pred.read_text() == "old predictions\n"
        if shutil.which("dot"):
            pytest.importorskip("graphviz")
            big = disk / "g.svg"
            big.write_text("old picture")
            with contextlib.suppress(OSError), open(disk / "filler2", "wb") as f:
                f.write(b"\0" * 1_000_000)  # fill what is left
            argv = ["draw", "tanh(x*w + b)", "--set", "x=1", "w=2", "b=3", "-o", big]
            status, _, err = _run(capsys, *argv)
            assert status == 2 and err.count("\n") == 1 and "No space left" in err, err
            assert big.read_text() == "old picture"
        assert sorted(p.name for p in disk.iterdir() if p.name.startswith(".")) == []


# -- save -------------------------------------------------------------------------------------


def test_save_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}") if Path("/proc").is_dir() else fd)
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    path = tmp_path / "m.json"
    nn.save(nn.MLP(2, [1], seed=0), path)
    if Path("/proc").is_dir():
        # The temporary file first (then renamed to m.json), then the folder holding it.
        assert len(synced) == 2
        assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.startswith(".m.json.")
        assert synced[1] == str(tmp_path)


def test_every_writer_goes_through_the_one_helper(tmp_path, capsys, monkeypatch):
    # train --out (every file), predict --out, draw -o, save and the stepper's page (save_html,
    # chainrule step) all write by atomic_write.
    written = []
    real = files.atomic_write

    def spy(path, write):
        written.append(Path(path).name)
        return real(path, write)

    for module in (
        "nn.serialization",
        "nn.plot",
        "nn.cli",
        "autograd.draw_cli",
        "autograd.stepper",
    ):
        monkeypatch.setattr(f"{module}.atomic_write", spy)
    out = tmp_path / "run"
    assert _run(capsys, "train", *QUICK, "--out", out)[0] == 0
    assert sorted(written) == ["decision_boundary.png", "loss.png", "metrics.json", "model.json"]
    rows = tmp_path / "rows.csv"
    rows.write_text("x0,x1\n0.1,0.2\n")
    argv = ["predict", "--model", out / "model.json", "--csv", rows, "--out", tmp_path / "p.csv"]
    assert _run(capsys, *argv)[0] == 0
    assert written[-1] == "p.csv"
    pytest.importorskip("graphviz")
    assert _run(capsys, "draw", "x*2", "--set", "x=1", "-o", tmp_path / "g.dot")[0] == 0
    assert written[-1] == "g.dot"
    assert _run(capsys, "step", "x*2", "--set", "x=1", "-o", tmp_path / "steps.html")[0] == 0
    assert written[-1] == "steps.html"
    assert "chainrule-stepper" in (tmp_path / "steps.html").read_text(encoding="utf-8")
