"""The safe formula parser and the `draw` command (python -m autograd.draw_cli)."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograd import Value
from autograd.draw_cli import add_draw_command, main
from autograd.expression import ExpressionError, parse_expression, variable_names

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


# -- parsing -------------------------------------------------------------------------------------


def test_neuron_formula_value_and_grads():
    out, leaves = parse_expression("tanh(x*w + b)", {"x": 1.0, "w": -2.0, "b": 0.5})
    assert out.data == math.tanh(-1.5)
    out.backward()
    dtanh = 1.0 - math.tanh(-1.5) ** 2
    assert leaves["x"].grad == pytest.approx(dtanh * -2.0, rel=1e-14)
    assert leaves["w"].grad == pytest.approx(dtanh * 1.0, rel=1e-14)
    assert leaves["b"].grad == pytest.approx(dtanh, rel=1e-14)
    assert list(leaves) == ["x", "w", "b"]  # reading order


def test_a_variable_used_twice_is_one_leaf():
    out, leaves = parse_expression("x**2 + 3*x", {"x": 2.0})
    assert out.data == 10.0
    out.backward()
    assert leaves["x"].grad == 7.0


def test_sub_expressions_label_their_nodes():
    out, _ = parse_expression("tanh(x*w + b)", {"x": 1.0, "w": -2.0, "b": 0.5})
    assert out.label == "tanh(x * w + b)"  # as ast.unparse writes it
    assert out.inputs[0].label == "x * w + b"
    assert out.inputs[0].inputs[0].label == "x * w"
    long_text = "exp(alpha * beta) + log(gamma * delta) - sin(epsilon)"
    out, _ = parse_expression(long_text, dict.fromkeys(variable_names(long_text), 1.0))
    assert out.label == "out"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-x + +y", 2.0 + 3.0),
        ("x / y - 1", -2.0 / 3.0 - 1.0),
        ("maximum(x, y) * minimum(x, y)", -6.0),
        ("sum(x, y, 1)", 2.0),
        ("logsumexp(x, y)", math.log(math.exp(-2.0) + math.exp(3.0))),
        ("abs(x) + relu(x) + sigmoid(y) + exp(x) + log(y) + sqrt(y)",
         2.0 + 0.0 + 1 / (1 + math.exp(-3.0)) + math.exp(-2.0) + math.log(3.0) + math.sqrt(3.0)),
        ("leaky_relu(x, 0.1) + elu(x) + sin(y) * cos(y)",
         -0.2 + math.expm1(-2.0) + math.sin(3.0) * math.cos(3.0)),
    ],
)  # fmt: skip
def test_whitelisted_operators_and_functions(text, expected):
    out, _ = parse_expression(text, {"x": -2.0, "y": 3.0})
    assert out.data == pytest.approx(expected, rel=1e-14)


def test_numbers_only_give_a_leaf():
    out, leaves = parse_expression("2 * 3", {})
    assert isinstance(out, Value) and out.data == 6.0 and leaves == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('true')", "unknown function \"__import__('os').system\""),
        ("__import__('os')", "unknown function '__import__'"),
        ("x.real", "'x.real' is not allowed"),
        ("x[0]", "'x[0]' is not allowed"),
        ("lambda: 1", "'lambda: 1' is not allowed"),
        ("x if x else 1", "'x if x else 1' is not allowed"),
        ("x < 1", "'x < 1' is not allowed"),
        ("x // 2", "operator FloorDiv is not allowed"),
        ("x @ x", "operator MatMult is not allowed"),
        ("'text'", "\"'text'\" is not a real number"),
        ("True + x", "'True' is not a real number"),
        ("1j * x", "'1j' is not a real number"),
        ("open(x)", "unknown function 'open'"),
        ("math.exp(x)", "unknown function 'math.exp'"),
        ("exp(x, x)", "exp takes 1 argument(s), got 2 in 'exp(x, x)'"),
        ("maximum(x)", "maximum takes 2 argument(s), got 1"),
        ("exp(x=1)", "keyword arguments are not allowed"),
        ("sum(*x)", "*args is not allowed"),
        ("_secret + 1", "name '_secret' is not allowed"),
        ("x +", "cannot parse 'x +'"),
        ("tanh + x", "'tanh' is a function: call it"),
        ("y * 2", "no value for 'y': give one with --set y=<number>"),
    ],
)
def test_anything_else_is_an_error_naming_the_token(text, message):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, {"x": 1.0})
    assert message in str(info.value)


def test_domain_errors_come_from_the_ops():
    with pytest.raises(ValueError, match=r"log: input must be > 0, got -1.0"):
        parse_expression("log(x)", {"x": -1.0})
    with pytest.raises(ZeroDivisionError, match="div: division by zero"):
        parse_expression("1 / x", {"x": 0.0})


@pytest.mark.parametrize(
    "text, message",
    [
        ("x + 1e999", "literal 1e999 is not a finite float64 (it reads as inf"),
        ("-1e999 * x", "literal 1e999 is not a finite float64"),
        ("x + 1" + "0" * 400, "literal 1000000000"),
    ],
)
def test_non_finite_or_huge_literals_are_rejected_by_name(text, message):
    # --set x=1e999 is rejected; the same number written in the formula must be too,
    # not turned into inf (and echoed back as "1e309").
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, {"x": 1.0})
    assert message in str(info.value)
    assert "too large" in str(info.value) or "not a finite" in str(info.value)


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("9**9**9", OverflowError, "pow: result overflows float64, got 9.0 ** 387420489.0"),
        ("x + 10**400", OverflowError, "pow: result overflows float64, got 10.0 ** 400.0"),
        ("x + 1e308 * 10", OverflowError, "mul: result inf is not finite"),
        ("x + exp(1000)", OverflowError, "exp: result overflows float64, got input 1000.0"),
        ("x + 1 / 0", ZeroDivisionError, "div: division by zero, got 1.0 / 0.0"),
    ],
)
def test_folding_numbers_gives_the_ops_own_errors(text, error, message):
    with pytest.raises(error) as info:
        parse_expression(text, {"x": 1.0})
    assert message in str(info.value)


def test_folded_numbers_keep_their_values():
    cases = {
        "2**0.5 * x": 2**0.5,
        "-2 + x": -1.0,
        "+2 + x": 3.0,
        "leaky_relu(-1, 0.1) + x": 0.9,
        "maximum(1, 2) + x": 3.0,
        "sum(1, 2, 3) + x": 7.0,
        "logsumexp(1, 2) + x": math.log(math.exp(1) + math.exp(2)) + 1.0,
    }
    for text, expected in cases.items():
        out, _ = parse_expression(text, {"x": 1.0})
        assert out.data == pytest.approx(expected, rel=1e-15), text


def test_too_deep_nesting_says_so():
    out, _ = parse_expression("(" * 200 + "x" + ")" * 200, {"x": 2.0})  # the limit
    assert out.data == 2.0
    for depth in (201, 1000, 5000):
        with pytest.raises(ExpressionError) as info:
            parse_expression("(" * depth + "x" + ")" * depth, {"x": 1.0})
        message = str(info.value)
        assert f"the formula is nested too deeply: {depth} levels of brackets" in message
        assert f"(at column {depth})" in message and "at most 200" in message
    # At the limit itself, an unclosed bracket is a plain syntax error, the same on every
    # Python version (the formula is read by chainrule's own grammar, not Python's parser).
    with pytest.raises(ExpressionError) as info:
        parse_expression("(" * 200 + "x", {"x": 1.0})
    assert str(info.value).endswith("at column 200: '(' was never closed")


@pytest.mark.parametrize("n", [500, 3_000, 20_000])
def test_a_flat_chain_of_any_length_is_not_nesting(n):
    # A sum of n terms is a tree n deep; Python's own parser gives up near 3,000 on 3.11
    # and 3.12 ("nested too deeply" was reported for it). The grammar has no such limit.
    out, leaves = parse_expression(" + ".join(["x"] * n), {"x": 1.0})
    assert out.data == float(n)
    out.backward()
    assert leaves["x"].grad == float(n)
    out, _ = parse_expression("*".join(["x"] * n), {"x": 1.0})
    assert out.data == 1.0
    out, _ = parse_expression("-" * n + "x", {"x": 2.0})  # n unary minuses
    assert out.data == (2.0 if n % 2 == 0 else -2.0)


def test_a_55_kb_formula_is_read_in_one_pass(monkeypatch):
    # Parsing is linear: every node's label is judged by its offsets, and the grammar reads
    # each token once. Counting the tokens read proves it without timing anything.
    from autograd import expression

    text = " + ".join(f"w{i % 50} * x{i % 7}" for i in range(5_200))
    assert len(text) > 55_000
    calls = []
    real_match = expression._TOKEN.match

    class Counting:
        def match(self, *args):
            calls.append(args[1])
            return real_match(*args)

    monkeypatch.setattr(expression, "_TOKEN", Counting())
    names = variable_names(text)
    assert len(names) == 57
    # Each token is matched once, plus one look-ahead after each name: at most 2 per token.
    assert len(calls) <= 2 * len(text.split()) * 3
    out, _ = parse_expression(text, dict.fromkeys(names, 0.5))
    assert out.data == pytest.approx(5_200 * 0.25, rel=1e-12)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-x**2", -9.0),  # -(x**2), as Python reads it
        ("2**-1", 0.5),
        ("2**3**2", 512.0),  # ** groups to the right
        ("-x*2", -6.0),
        ("x - 1 - 1", 1.0),  # - groups to the left
        ("8 / 2 / 2", 2.0),
        ("2**-x*3", 2.0**-3 * 3),
        ("-2**-x**2", -(2.0 ** -(3.0**2))),
        ("+-+x", -3.0),
        ("sum(x, 1, )", 4.0),  # a trailing comma, as Python allows
        ("maximum((x), (1 + 1))", 3.0),
        ("1_000 * x + 0x10 + 1e-3 + .5 + 5.", 3000.0 + 16 + 1e-3 + 0.5 + 5.0),
        ("exp (x) * 0", 0.0),
        ("tanh(\n x\t)", math.tanh(3.0)),
    ],
)
def test_the_grammar_reads_formulas_as_python_does(text, expected):
    out, _ = parse_expression(text, {"x": 3.0})
    assert out.data == pytest.approx(expected, rel=1e-15)
    assert out.data == pytest.approx(eval(text, {"sum": lambda *a: sum(a), "maximum": max,
                                                 "exp": math.exp, "tanh": math.tanh}, {"x": 3.0}),
                                     rel=1e-15)  # fmt: skip


@pytest.mark.parametrize(
    "text, message",
    [
        ("x +", "at column 4: the formula ends too soon"),
        ("x)", "at column 2: unmatched ')'"),
        ("(x", "at column 1: '(' was never closed"),
        ("", "the formula is empty"),
        ("x, y", "not allowed"),  # a tuple
        ("x y", "cannot parse 'x y'"),
        ("x = 1", "cannot parse 'x = 1'"),
        ("x $ y", "cannot parse 'x $ y'"),
        ("x" * 100_001, "more than the 100,000 allowed"),
    ],
)
def test_syntax_errors_name_the_column(text, message):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, {"x": 1.0, "y": 2.0})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert len(str(info.value)) < 300


# -- the command ---------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "autograd.draw_cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_cli_writes_svg_and_png(tmp_path, suffix, magic):
    result = run_cli(
        "tanh(x*w + b)", "--set", "x=1", "w=-2", "b=0.5", "-o", f"graph{suffix}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"graph{suffix}").read_bytes().startswith(magic)
    assert "tanh(x * w + b) = -0.9051" in result.stdout
    assert "grad: x -0.3614, w 0.1807, b 0.1807" in result.stdout


def test_cli_params_are_drawn_as_parameters(tmp_path):
    out = tmp_path / "g.dot"
    args = ["x*w + b", "--set", "x=1", "w=2", "b=3", "--params", "w", "b", "-o", str(out)]
    assert main(args) == 0
    text = out.read_text()
    assert 'label="{x|data 1.0|grad 2.0}" fillcolor=lightblue' in text
    assert 'label="{w|data 2.0|grad 1.0}" fillcolor=palegreen' in text
    assert 'label="{b|data 3.0|grad 1.0}" fillcolor=palegreen' in text
    # Without --params, names tell parameters apart as draw_dot does (weight, bias, ...).
    assert main(["x*weight", "--set", "x=1", "weight=2", "-o", str(out)]) == 0
    assert 'label="{weight|data 2.0|grad 1.0}" fillcolor=palegreen' in out.read_text()


@pytest.mark.parametrize(
    "formula, value, grad",
    [("x**x", "-1", "x nan"), ("sqrt(x)", "0", "x inf")],
)
def test_cli_explains_nan_and_inf_gradients_on_stderr(tmp_path, formula, value, grad):
    result = run_cli(formula, "--set", f"x={value}", "-o", "g.dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"grad: {grad}" in result.stdout
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"chainrule draw: note: gradient {grad}: not a bug")
    assert "log(a) is nan for a < 0" in result.stderr and "as in PyTorch" in result.stderr


def test_cli_finite_gradients_print_no_note(tmp_path):
    result = run_cli("x**x", "--set", "x=2", "-o", "g.dot", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""


def test_cli_writes_dot_and_prints_dot_without_output(tmp_path, capsys):
    assert main(["x*2", "--set", "x=3", "-o", str(tmp_path / "g.dot")]) == 0
    text = (tmp_path / "g.dot").read_text()
    assert text.startswith('digraph "computation graph"')
    assert 'label="{x|data 3.0|grad 2.0}"' in text
    capsys.readouterr()
    assert main(["x*2", "--set", "x=3", "--rankdir", "TB", "--local-grads"]) == 0
    out = capsys.readouterr().out
    assert "rankdir=TB" in out and "v0 -> op1 [label=2.0" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["log(x)", "--set", "x=-1"], "log: input must be > 0, got -1.0"),
        (["x.y", "--set", "x=1"], "'x.y' is not allowed"),
        (["x + y", "--set", "x=1"], "no value for 'y'"),
        (["x", "--set", "x=1", "z=2"], "--set z: 'z' does not appear in 'x'"),
        (["x", "--set", "x"], "--set 'x': expected NAME=VALUE"),
        (["x", "--set", "x=abc"], "'abc' is not a number"),
        (["x", "--set", "x=inf"], "the value must be finite"),
        (["x", "--set", "x=1", "x=2"], "'x' is given twice"),
        (["x", "--set", "x=1", "-o", "g.jpeg2"], "unknown extension '.jpeg2'"),
        (
            ["x", "--set", "x=1", "-o", "no/such/dir/g.svg"],
            "directory 'no/such/dir' does not exist",
        ),
        (["x", "--set", "x=1", "-o", "afile/g.svg"], "'afile' is not a directory"),
        (["x + 1e999", "--set", "x=1"], "literal 1e999 is not a finite float64"),
        (["9**9**9", "--set", "x=1"], "pow: result overflows float64, got 9.0 ** 387420489.0"),
        (["x*w", "--set", "x=1", "w=2", "--params", "q"], "--params q: 'q' does not appear"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "afile").write_text("a file, not a directory")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("chainrule draw: error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [([], "the following arguments are required: expression"), (["x", "--bogus"], "--bogus")],
)
def test_cli_usage_errors_are_one_line_exit_2(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("python -m autograd.draw_cli: error: ")
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_cli_without_dot_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["x", "--set", "x=1", "-o", str(tmp_path / "g.svg")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and err.count("\n") == 1


def test_add_draw_command_plugs_into_a_larger_program(tmp_path):
    parser = argparse.ArgumentParser(prog="chainrule")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_draw_command(subparsers)
    args = parser.parse_args(["draw", "x * y", "--set", "x=2", "y=5", "-o", str(tmp_path / "g.gv")])
    assert args.func(args) == 0
    assert "data 10.0" in (tmp_path / "g.gv").read_text()


@pytest.mark.parametrize(
    "args, printed",
    [
        (["-x*2", "--set", "x=3"], "-x * 2 = -6.0"),
        (["-x", "--set", "x=3"], "-x = -3.0"),
        (["-(x + 1)**2", "--set", "x=1"], "-(x + 1) ** 2 = -4.0"),
        (["-2*x", "--set", "x=3"], "-2 * x = -6.0"),
    ],
)
def test_a_formula_may_start_with_a_minus(tmp_path, capsys, args, printed):
    # argparse took "-x*2" for an unknown option ("the following arguments are required:
    # expression"); both the `chainrule draw` subcommand and the module read it as a formula.
    from nn import cli

    out = str(tmp_path / "g.dot")
    assert cli.main(["draw", *args, "-o", out]) == 0
    assert capsys.readouterr().out.splitlines()[0] == printed
    assert main([*args, "-o" + out]) == 0  # -o with its value attached is still the option
    assert capsys.readouterr().out.splitlines()[0] == printed
    assert Path(out).read_text().startswith("digraph")


def test_options_are_still_options(capsys):
    from nn import cli

    assert cli.main(["draw", "x", "--set", "x=1", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert cli.main(["draw", "-h"]) == 0
    assert "usage: chainrule draw" in capsys.readouterr().out
