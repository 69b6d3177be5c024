"""`chainrule step`: a formula's backward pass as one web page, with `chainrule draw`'s
formula and --set rules and its one-line errors (exit status 2)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from autograd import Value
from nn import cli

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def payload(page: str) -> dict:
    data = re.search(
        r'<script type="application/json" id="stepper-data">(.*?)</script>', page, re.S
    )
    assert data
    return json.loads(data.group(1).replace("<\\/", "</"))


@needs_dot
def test_step_writes_the_page_of_the_readme_formula(tmp_path, capsys):
    out = tmp_path / "steps.html"
    status = cli.main(["step", "tanh(x*w + b)", "--set", "x=1", "w=-2", "b=0.5", "-o", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert printed == f"tanh(x * w + b) = -0.9051; 6 steps\nwrote {out}\n"
    page = out.read_text(encoding="utf-8")
    data = payload(page)
    assert data["total"] == 6 and data["loss"] == "L"
    # The last state is backward()'s gradients, to full precision.
    x, w, b = Value(1.0, label="x"), Value(-2.0, label="w"), Value(0.5, label="b")
    y = (x * w + b).tanh()
    y.backward()
    final = {v["name"]: v["grad0"][1] for v in data["values"]}
    for s in data["steps"]:
        for i, g in s["sets"]:
            final[data["values"][i]["name"]] = g[1]
        for i, _, g, _ in s["edges"]:
            final[data["values"][i]["name"]] = g[1]
    assert (final["x"], final["w"], final["b"]) == (repr(x.grad), repr(w.grad), repr(b.grad))
    assert "<title>Backward pass of tanh(x*w + b)</title>" in page


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tanh(x", "-o", "s.html"], "cannot parse 'tanh(x' at column 5"),
        (["__import__('os')", "-o", "s.html"], "__import__"),
        (["x*y", "--set", "x=1", "-o", "s.html"], "no value for 'y': give one with --set y="),
        (["x*2", "--set", "x=1", "z=2", "-o", "s.html"], "--set z: 'z' does not appear in 'x*2'"),
        (["x*2", "--set", "x", "-o", "s.html"], "--set 'x': expected NAME=VALUE"),
        (["x*2", "--set", "x=abc", "-o", "s.html"], "'abc' is not a number"),
        (["x*2", "--set", "x=inf", "-o", "s.html"], "the value must be finite"),
        (["log(x)", "--set", "x=-1", "-o", "s.html"], "log: input must be > 0, got -1.0"),
        (["x", "--set", "x=1", "-o", "s.html"], "x is a leaf"),
        (["x*2", "--set", "x=1", "-o", "s.svg"], "-o s.svg: the page must end in .html"),
        (["x*2", "--set", "x=1", "-o", "missing/s.html"], "directory 'missing' does not exist"),
    ],
)
def test_step_errors_are_one_line_with_exit_status_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["step", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule step: error: "), captured.err
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_step_needs_an_output(capsys):
    assert cli.main(["step", "x*2", "--set", "x=1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "-o/--output" in err


@needs_dot
def test_step_to_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    target = tmp_path / "taken.html"
    target.mkdir()  # a directory where the page should go
    assert cli.main(["step", "x*2", "--set", "x=1", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "save_html: cannot write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.html"]  # no temporary file


@needs_dot
def test_the_readme_step_command_writes_the_committed_page(tmp_path):
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```bash\n(chainrule step .*?)\n```", readme)
    assert match, "no `chainrule step` command in the README"
    args = shlex.split(match.group(1))[1:]
    output = args.index("-o") + 1
    assert args[output] == "docs/stepper.html" and "docs/stepper.html" in readme
    committed = payload((root / "docs" / "stepper.html").read_text(encoding="utf-8"))
    args[output] = str(tmp_path / "stepper.html")
    assert cli.main(args) == 0
    fresh = payload((tmp_path / "stepper.html").read_text(encoding="utf-8"))
    # The same pass (the picture's coordinates may differ with Graphviz's version).
    assert fresh["lines"] == committed["lines"] and fresh["steps"] == committed["steps"]
