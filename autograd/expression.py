"""Safe parsing of a formula such as `"tanh(x*w + b)"` into a graph of Values.

The text is parsed with Python's `ast` module and only a whitelist is accepted: numbers,
variable names (each one leaf Value, shared by every use), `+ - * / **`, unary `-`/`+`, and
calls to the functions of the derivative table (`exp`, `log`, `tanh`, `maximum`, ...).
Anything else (attributes, subscripts, keywords, lambdas, comparisons, unknown names) is
an `ExpressionError` naming the offending piece of text. Nothing is ever passed to `eval`.

    >>> from autograd.expression import parse_expression
    >>> out, leaves = parse_expression("tanh(x*w + b)", {"x": 1.0, "w": -2.0, "b": 0.5})
    >>> round(out.data, 4)
    -0.9051

Used by the `chainrule draw` command (`draw_cli.py`).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from . import functions, ops
from .functions import logsumexp
from .functions import sum as sum_values
from .grad_mode import no_grad
from .value import Value

# The functions a formula may call: every op of the derivative table except those written as
# operators (+ - * / ** and unary -) and `linear` (two lists). Each name maps to the function
# that builds the node; its arity comes from the table, and a second argument with a default
# (leaky_relu's slope, elu's alpha) may be left out.
_NOT_CALLED = ("add", "sub", "mul", "div", "pow", "neg", "linear")


def _formula_function(name: str) -> Callable[..., Any]:
    if name in ("sum", "logsumexp"):  # called with the items themselves: sum(a, b, c)
        on_items = sum_values if name == "sum" else logsumexp
        return lambda *xs: on_items(xs)
    return getattr(ops, name, None) or getattr(functions, name, None) or abs


def _least_arguments(function: Callable[..., Any]) -> int:
    parameters = inspect.signature(function).parameters.values()
    return builtins.sum(p.default is p.empty and p.kind != p.VAR_POSITIONAL for p in parameters)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: _formula_function(name) for name in ops.OPS if name not in _NOT_CALLED
}

# How many arguments each function takes: (least, most); None = any number.
_ARITY: dict[str, tuple[int, int | None]] = {
    name: (1, None) if ops.OPS[name].arity is None else (_least_arguments(f), ops.OPS[name].arity)
    for name, f in FUNCTIONS.items()
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}

# Python's parser allows at most this many nested brackets (MAXLEVEL in CPython's
# tokenizer); past it the error it reports does not say so plainly.
MAX_NESTING = 200

# Sub-expressions up to this many characters label their node (e.g. "x * w"); longer ones
# would crowd the picture, so those nodes stay unlabelled (shown by their id).
LABEL_WIDTH = 24


class ExpressionError(ValueError):
    """A formula that cannot be parsed, or uses something outside the whitelist."""


def variable_names(text: str) -> list[str]:
    """The variable names a formula uses, in order of first appearance.

    Raises:
        ExpressionError: the text is not a valid formula (see module docstring).
    """
    tree = _parse(text)
    found = [
        (node.col_offset, node.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS
    ]
    names: list[str] = []
    for _, name in sorted(found):  # ast.walk is breadth-first; the reader reads left to right
        if name not in names:
            names.append(name)
    return names


def parse_expression(text: str, values: Mapping[str, float]) -> tuple[Value, dict[str, Value]]:
    """Build the graph of a formula, with each variable a leaf Value labelled by its name.

    Args:
        text: the formula, in Python syntax, e.g. `"tanh(x*w + b)"`, `"x**2 + 3*x"`.
        values: a number for every variable in the formula.

    Returns:
        (the output Value, {name: leaf Value}). Intermediate nodes are labelled by their
        sub-expression as `ast.unparse` writes it (`"x * w"`) when that is at most
        LABEL_WIDTH characters; the output likewise, else "out".

    Raises:
        ExpressionError: a syntax error, or a piece outside the whitelist (named in the
            message), an unknown variable, a wrong number of arguments, a literal that is
            not a finite float64 (`1e999`), nesting deeper than Python's parser allows.
        ValueError, ZeroDivisionError, OverflowError: from the operations themselves,
            e.g. `log(x)` with x = -1 (the message names the op and the value). Parts made
            of numbers only (`10**400`) are computed by the same ops, with the same errors.
    """
    tree = _parse(text)
    leaves: dict[str, Value] = {}
    for name in variable_names(text):
        if name not in values:
            raise ExpressionError(f"no value for {name!r}: give one with --set {name}=<number>")
        leaves[name] = Value(values[name], label=name)

    results: dict[int, Any] = {}
    # Evaluate children before parents without recursion: a post-order walk with a stack.
    stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
    while stack:
        node, children_done = stack.pop()
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node, text)))
            continue
        results[id(node)] = _evaluate(node, results, leaves, text)
    out = results[id(tree.body)]
    if not isinstance(out, Value):
        out = Value(out)  # a formula of numbers only: a single leaf
    if not out.label or out.label in leaves:
        out.label = text.strip() if len(text.strip()) <= LABEL_WIDTH else "out"
    return out, leaves


def _parse(text: str) -> ast.Expression:
    if not isinstance(text, str):
        raise ExpressionError(f"the formula must be a string, got {type(text).__name__}")
    depth, column = _nesting(text.strip())
    if depth > MAX_NESTING:
        raise ExpressionError(
            f"the formula is nested too deeply: {depth} levels of brackets (at column {column}); "
            f"Python's parser allows at most {MAX_NESTING}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        if depth == MAX_NESTING:
            # At the parser's limit its own message may be about something else (an
            # unclosed bracket, depending on the Python version): name the limit too.
            raise ExpressionError(
                f"the formula is nested too deeply: {depth} levels of brackets, the most "
                f"Python's parser allows ({error.msg}{where})"
            ) from None
        raise ExpressionError(f"cannot parse {_short(text)!r}{where}: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the formula is nested too deeply for Python's parser") from None
    for node in ast.walk(tree.body):
        _check(node, text)
    return tree


def _nesting(text: str) -> tuple[int, int]:
    """The deepest bracket nesting in `text`, and the column (1-based) where it is reached."""
    depth = deepest = column = 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > deepest:
                deepest, column = depth, i + 1
        elif char in ")]}":
            depth -= 1
    return deepest, column


def _short(text: str, width: int = 60) -> str:
    """Text for an error message: long formulas are cut, so the message stays one line."""
    return text if len(text) <= width else text[: width - 3] + "..."


def _segment(node: ast.AST, text: str) -> str:
    return _short(ast.get_source_segment(text.strip(), node) or type(node).__name__)


def _check(node: ast.AST, text: str) -> None:
    """Raise ExpressionError unless `node` is on the whitelist."""
    allowed = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load)
    allowed_ops = (*_BINARY, ast.USub, ast.UAdd)
    if isinstance(node, (ast.operator, ast.unaryop)):
        if not isinstance(node, allowed_ops):
            raise ExpressionError(f"operator {type(node).__name__} is not allowed")
        return
    if not isinstance(node, allowed):
        raise ExpressionError(
            f"{_segment(node, text)!r} is not allowed: use numbers, names, + - * / ** "
            f"and the functions {', '.join(sorted(FUNCTIONS))}"
        )
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"{_segment(node, text)!r} is not a real number")
        _check_literal(node, text)
    if isinstance(node, ast.Name) and (node.id.startswith("_") or node.id in _RESERVED):
        raise ExpressionError(f"name {node.id!r} is not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(
                f"unknown function {_segment(node.func, text)!r}; known: "
                f"{', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords:
            raise ExpressionError(f"{_segment(node, text)!r}: keyword arguments are not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{_segment(node, text)!r}: *args is not allowed")
        least, most = _ARITY[node.func.id]
        n = len(node.args)
        if n < least or (most is not None and n > most):
            if least == most:
                wanted = f"{least}"
            elif most is None:
                wanted = f"{least} or more"
            else:
                wanted = f"{least} to {most}"
            raise ExpressionError(
                f"{node.func.id} takes {wanted} argument(s), got {n} in {_segment(node, text)!r}"
            )


def _check_literal(node: ast.Constant, text: str) -> None:
    """A number literal must be a finite float64: `1e999` reads as inf, `10**400` written out
    does not fit. Either is an error naming the literal (`--set` rejects them too)."""
    assert isinstance(node.value, (int, float))  # _check allowed nothing else
    try:
        value = float(node.value)
    except OverflowError:
        raise ExpressionError(
            f"literal {_segment(node, text)} is too large for a float64 "
            f"(the largest is {sys.float_info.max!r})"
        ) from None
    if not math.isfinite(value):
        raise ExpressionError(
            f"literal {_segment(node, text)} is not a finite float64 "
            f"(it reads as {value!r}; the largest is {sys.float_info.max!r})"
        )


# Names that would read as something else: Python's builtins of the same spelling are never
# reached (nothing is evaluated), but a variable called `print` is surely a typo.
_RESERVED = frozenset({"eval", "exec", "import", "print", "open", "lambda", "None", "True"})


def _children(node: ast.AST, text: str) -> list[ast.AST]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


def _evaluate(node: ast.AST, results: dict[int, Any], leaves: dict[str, Value], text: str) -> Any:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, (int, float))  # _check allowed nothing else
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id!r} is a function: call it, e.g. {node.id}(x)")
        return leaves[node.id]
    operation: Callable[..., Any]
    args: tuple[Any, ...]
    if isinstance(node, ast.BinOp):
        operation = _BINARY[type(node.op)]
        args = (results[id(node.left)], results[id(node.right)])
    elif isinstance(node, ast.UnaryOp):
        operand = results[id(node.operand)]
        if isinstance(node.op, ast.UAdd):
            return operand
        operation, args = (lambda a: -a), (operand,)
    else:
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        operation = FUNCTIONS[node.func.id]
        args = tuple(results[id(a)] for a in node.args)
    if not any(isinstance(a, Value) for a in args):
        # Numbers only (`9**9**9`, `10**400`): fold through the engine's ops, so an overflow
        # or a domain error gets the op's own message ("pow: result overflows float64, got
        # 9.0 ** 387420489.0") instead of Python's "(34, 'Numerical result out of range')".
        with no_grad():
            return operation(Value(args[0]), *args[1:]).data
    result = operation(*args)
    if isinstance(result, Value) and not result.label and result.inputs:
        # Judge the length from the source first: unparsing every long sub-expression
        # would cost time quadratic in the formula's length.
        source = ast.get_source_segment(text.strip(), node) or ""
        segment = ast.unparse(node) if len(source) <= 2 * LABEL_WIDTH else source
        if len(segment) <= LABEL_WIDTH:
            result.label = segment
    return result
