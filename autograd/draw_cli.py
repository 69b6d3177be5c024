"""The `draw` command: a formula in, a picture of its graph (after backward) out.

    chainrule draw "tanh(x*w + b)" --set x=1 w=-2 b=0.5 --params w b -o graph.svg
    python -m autograd.draw_cli "tanh(x*w + b)" --set x=1 w=-2 b=0.5 -o graph.png

The output format follows the extension of `-o` (.svg, .png, .pdf, or .dot/.gv for the DOT
text); without `-o` the DOT text goes to stdout. `add_draw_command(subparsers)` adds the
command to a larger argparse program (the `chainrule` command of nn/cli.py); `main()` runs it
on its own. Errors are one line on stderr and exit status 2, never a traceback. A nan or
inf gradient is not an error (the derivative does not exist or is infinite there), but gets
a one-line note on stderr saying so.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .draw import DOT_INSTALL_HINT, RANKDIRS, VIZ_INSTALL_HINT, draw_dot, format_number
from .expression import MAX_LENGTH, ExpressionError, parse_expression
from .files import atomic_write
from .value import Value

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


class _OneLineErrors(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (argparse prints the usage too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _first_line(data: bytes | str | None) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
    text = " ".join(text.split())
    return text[:117] + "..." if len(text) > 120 else text or "no message"


def formulas_may_start_with_a_minus(parser: argparse.ArgumentParser) -> None:
    """Let `parser` take a positional formula that starts with '-' ("-x*2", "-x").

    argparse reads any argument starting with '-' as an option unless it looks like a
    negative number, so `draw "-x*2"` failed with "the following arguments are required:
    expression". Here an argument starting with a single '-' that is not one of the
    parser's own short options ("-o", "-h", with or without a value attached) is a formula.
    `--` options are untouched.
    """
    original = parser._parse_optional

    def parse_optional(arg_string: str) -> Any:
        short = arg_string[:2]
        if (
            arg_string.startswith("-")
            and not arg_string.startswith("--")
            and len(arg_string) > 1
            and short not in parser._option_string_actions
        ):
            return None  # a positional argument: the formula
        return original(arg_string)

    parser._parse_optional = parse_optional  # type: ignore[method-assign]


def add_draw_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `draw` subcommand to an argparse program; its handler is `args.func(args)`.

    Args:
        subparsers: what `parser.add_subparsers()` returned.
    Returns:
        The new subparser (`set_defaults(func=run_draw)` is already done).
    """
    parser = subparsers.add_parser(
        "draw",
        help="draw the computation graph of a formula, after backward",
        description=(
            "Parse a formula (numbers, variables, + - * / **, and functions such as tanh, exp, "
            "log, relu, sigmoid), run backward from its value, and draw the graph with each "
            "node's data and grad."
        ),
    )
    _add_arguments(parser)
    formulas_may_start_with_a_minus(parser)
    parser.set_defaults(func=run_draw)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "expression",
        help=f'the formula, e.g. "tanh(x*w + b)" or "-x*2" (at most {MAX_LENGTH:,} characters, '
        "200 levels of brackets)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        dest="assignments",
        help="the value of every variable, e.g. --set x=1 w=-2 b=0.5",
    )
    parser.add_argument(
        "--params",
        nargs="+",
        default=[],
        metavar="NAME",
        help="variables to draw as parameters (green), e.g. --params w b; the others are "
        "inputs (blue)",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="file to write: .svg, .png, .pdf, or .dot/.gv for DOT text (default: DOT to stdout)",
    )
    parser.add_argument(
        "--rankdir", default="LR", choices=RANKDIRS, help="layout direction (default: LR)"
    )
    parser.add_argument(
        "--local-grads",
        action="store_true",
        help="label each edge with its local derivative",
    )


def _parse_assignments(items: Sequence[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CommandError(f"--set {item!r}: expected NAME=VALUE, e.g. x=1.5")
        try:
            value = float(number)
        except ValueError:
            raise CommandError(f"--set {item!r}: {number!r} is not a number") from None
        if not math.isfinite(value):
            raise CommandError(f"--set {item!r}: the value must be finite")
        if name in values:
            raise CommandError(f"--set: {name!r} is given twice")
        values[name] = value
    return values


def run_draw(args: argparse.Namespace) -> int:
    """Handle `draw`: parse, backward, write. Returns the exit status (0, or 2 on error)."""
    try:
        _draw_command(args)
    except (CommandError, ExpressionError, ArithmeticError, ValueError) as error:
        message = str(error)
    except OSError as error:
        message = f"-o {args.output}: cannot write it ({error.strerror or error})"
    except RecursionError:
        message = "the formula is nested too deeply"
    except MemoryError:
        message = "out of memory (the formula's graph is too large)"
    except KeyboardInterrupt:
        message = "interrupted"
    else:
        return 0
    print(f"chainrule draw: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _draw_command(args: argparse.Namespace) -> None:
    try:
        import graphviz
    except ImportError:
        raise CommandError(f"needs the graphviz Python package: {VIZ_INSTALL_HINT}") from None

    values = _parse_assignments(args.assignments)
    out, leaves = parse_expression(args.expression, values)
    unused = sorted(set(values) - set(leaves))
    if unused:
        raise CommandError(
            f"--set {unused[0]}: {unused[0]!r} does not appear in {args.expression!r}"
        )
    for name in args.params:
        if name not in leaves:
            raise CommandError(f"--params {name}: {name!r} does not appear in {args.expression!r}")
    out.backward()
    graph = draw_dot(
        out,
        rankdir=args.rankdir,
        show_local_grads=args.local_grads,
        # Without --params, draw_dot tells parameters by their names (weight, bias, ...).
        parameters=[leaves[name] for name in args.params] if args.params else None,
    )

    if args.output is None:
        sys.stdout.write(graph.source)
        return
    path = Path(args.output)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CommandError(
            f"-o {args.output}: unknown extension {path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if path.parent.exists() and not path.parent.is_dir():
        raise CommandError(f"-o {args.output}: {str(path.parent)!r} is not a directory")
    if not path.parent.is_dir():
        raise CommandError(f"-o {args.output}: directory {str(path.parent)!r} does not exist")
    if fmt == "dot":
        data = graph.source.encode("utf-8")
    else:
        try:
            data = graph.pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise CommandError(DOT_INSTALL_HINT) from None
        except graphviz.CalledProcessError as error:
            raise CommandError(f"Graphviz's dot failed ({_first_line(error.stderr)})") from None
    # All at once: a full disk or a kill leaves the old file, never half a new one.
    atomic_write(path, lambda f: f.write(data))
    grads = ", ".join(f"{name} {format_number(v.grad)}" for name, v in leaves.items())
    print(f"{out.label} = {format_number(out.data)}")
    print(f"grad: {grads}")
    print(f"wrote {path}")
    note = non_finite_note(leaves)
    if note:
        print(f"chainrule draw: note: {note}", file=sys.stderr)


def non_finite_note(leaves: dict[str, Value]) -> str:
    """One line explaining the nan or inf gradients among `leaves`, or "" if all are finite.

    Such a gradient is not an error: the derivative does not exist there (d/db a**b =
    a**b * log(a) needs a > 0) or is infinite (sqrt'(0)); PyTorch's float64 gives the same.
    """
    odd = [f"{name} {v.grad!r}" for name, v in leaves.items() if not math.isfinite(v.grad)]
    if not odd:
        return ""
    return (
        f"gradient {', '.join(odd)}: not a bug; the derivative does not exist or is infinite "
        "at this point (e.g. d/db a**b = a**b * log(a) is nan for a < 0, d/dx sqrt(x) is inf "
        "at 0), as in PyTorch"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the draw command on its own (`python -m autograd.draw_cli ...`)."""
    parser = _OneLineErrors(
        prog="python -m autograd.draw_cli",
        description="Draw the computation graph of a formula, after backward.",
    )
    _add_arguments(parser)
    formulas_may_start_with_a_minus(parser)
    args = parser.parse_args(argv)
    try:
        import graphviz  # noqa: F401
    except ImportError:
        print(
            f"chainrule draw: error: needs the graphviz package: {VIZ_INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    return run_draw(args)


if __name__ == "__main__":
    sys.exit(main())
