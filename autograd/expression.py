"""Safe parsing of a formula such as `"tanh(x*w + b)"` into a graph of Values.

Only a whitelist is accepted: numbers, variable names (each one leaf Value, shared by every
use), `+ - * / **`, unary `-`/`+`, and calls to the functions of the derivative table (`exp`,
`log`, `tanh`, `maximum`, ...), with Python's precedence. The text is read by a small grammar
of its own (`_grammar`: one pass over the tokens, no recursion, so its time is linear in the
length and a sum of thousands of terms is no deeper for it than one of two) into the nodes of
Python's `ast` module; a text it cannot read goes to Python's own parser only to name what is
wrong. Anything else (attributes, subscripts, keywords, lambdas, comparisons, unknown names)
is an `ExpressionError` naming the offending piece of text. Nothing is ever passed to `eval`.
Limits: `MAX_LENGTH` characters and `MAX_NESTING` levels of brackets.

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
import keyword
import math
import re
import sys
import unicodedata
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

# The most brackets a formula may nest (Python's own parser allows 200, MAXLEVEL in
# CPython's tokenizer; the same limit here keeps formulas valid for both).
MAX_NESTING = 200

# The longest formula read, in characters: parsing is linear in the length, but the graph of
# a longer one is more than a picture can show (draw_dot draws at most 500 nodes anyway).
MAX_LENGTH = 100_000

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
        stripped = text.strip()
        out.label = stripped if len(stripped) <= LABEL_WIDTH else "out"
    return out, leaves


def _parse(text: str) -> ast.Expression:
    """The formula's tree, checked against the whitelist.

    Parsed by `_grammar`, linear in the formula's length and free of any recursion limit;
    a formula it cannot read is handed to Python's own parser only to find the message
    naming what is wrong (a subscript, a keyword, ...).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"the formula must be a string, got {type(text).__name__}")
    text = text.strip()
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the formula has {len(text):,} characters, more than the {MAX_LENGTH:,} allowed"
        )
    depth, column = _nesting(text)
    if depth > MAX_NESTING:
        raise ExpressionError(
            f"the formula is nested too deeply: {depth} levels of brackets (at column {column}); "
            f"at most {MAX_NESTING} are allowed"
        )
    try:
        body = _grammar(text)
    except _Unreadable as problem:
        _diagnose(text, problem)
        raise AssertionError("unreachable: _diagnose always raises") from None
    tree = ast.Expression(body=body)
    segment = _own_segment(text)
    for node in ast.walk(tree.body):
        _check(node, segment)
    return tree


class _Unreadable(Exception):
    """`_grammar` cannot read the formula: `column` (1-based) and a reason for the message."""

    def __init__(self, column: int, reason: str, outside_grammar: bool) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason
        # True: a token the grammar has no place for ('.', '[', 'lambda', a string, ...),
        # which Python's parser names better; False: a plain syntax error ('x +').
        self.outside_grammar = outside_grammar


def _diagnose(text: str, problem: _Unreadable) -> None:
    """Raise the ExpressionError for a formula `_grammar` could not read."""
    own = ExpressionError(
        f"cannot parse {_short(text)!r} at column {problem.column}: {problem.reason}"
    )
    if not problem.outside_grammar:
        raise own
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        raise ExpressionError(f"cannot parse {_short(text)!r}{where}: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise own from None  # too long a chain for Python's parser: our own words
    segment = _python_segment(text)
    for node in ast.walk(tree.body):
        _check(node, segment)
    raise own


# -----------------------------------------------------------------------------------------
# The grammar: Python's, restricted to the whitelist, read without recursion
# -----------------------------------------------------------------------------------------
#   formula := sum;  sum := product (("+" | "-") product)*;  product := unary (("*" | "/") unary)*
#   unary := ("+" | "-") unary | power;  power := atom ["**" unary]
#   atom := NUMBER | NAME | NAME "(" [formula ("," formula)* [","]] ")" | "(" formula ")"
# as in Python's grammar: `-x**2` is -(x**2), `2**-1` is 2**(-1), `**` groups to the right.
# Read by Dijkstra's shunting-yard algorithm: operators wait on a stack until an operator
# that binds less tightly arrives, so a chain of any length costs no recursion.

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>0[xX](?:_?[0-9a-fA-F])+ | 0[oO](?:_?[0-7])+ | 0[bB](?:_?[01])+
        | (?:[0-9](?:_?[0-9])*\.?(?:[0-9](?:_?[0-9])*)? | \.[0-9](?:_?[0-9])*)
          (?:[eE][+-]?[0-9](?:_?[0-9])*)?[jJ]?)
    | (?P<name>[^\W\d]\w*)
    | (?P<op>\*\*|[-+*/(),])
    """,
    re.VERBOSE,
)

# Binding strength of the binary operators (higher binds tighter) and of the unary ones.
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}
_UNARY_PRECEDENCE = 3
_BINARY_AST: dict[str, type[ast.operator]] = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mult,
    "/": ast.Div,
    "**": ast.Pow,
}


def _placed(node: ast.expr, start: int, end: int) -> ast.expr:
    # Character offsets on line 1: what _own_segment slices by.
    node.lineno = node.end_lineno = 1
    node.col_offset, node.end_col_offset = start, end
    return node


def _grammar(text: str) -> ast.expr:
    """Read `text` by the grammar above into an `ast` tree (the nodes `ast.parse` would
    make for it), in one pass over its tokens.

    Raises:
        _Unreadable: a token outside the grammar, or a syntax error.
    """
    # Operands: (node, start, end), the span including any brackets around the node.
    operands: list[tuple[ast.expr, int, int]] = []
    # Pending: ("bin", op, start) | ("unary", op, start) | ("group", start) |
    # ("call", name, start, index of its first argument in operands).
    pending: list[tuple[Any, ...]] = []
    expect_operand = True

    def reduce_top() -> None:
        entry = pending.pop()
        if entry[0] == "bin":
            right, left = operands.pop(), operands.pop()
            binary = ast.BinOp(left=left[0], op=_BINARY_AST[entry[1]](), right=right[0])
            operands.append((_placed(binary, left[1], right[2]), left[1], right[2]))
        else:
            operand = operands.pop()
            op = ast.USub() if entry[1] == "-" else ast.UAdd()
            unary = _placed(ast.UnaryOp(op=op, operand=operand[0]), entry[2], operand[2])
            operands.append((unary, entry[2], operand[2]))

    def reduce_binding(level: int, right: bool = False) -> None:
        # Apply the pending operators that bind more tightly than an arriving operator of
        # `level` (or as tightly, unless it groups to the right); level 0 applies them all.
        while pending and pending[-1][0] in ("bin", "unary"):
            top = pending[-1]
            top_level = _UNARY_PRECEDENCE if top[0] == "unary" else _PRECEDENCE[top[1]]
            if not (top_level > level or (top_level == level and not right)):
                break
            reduce_top()

    def close(at: int) -> None:
        reduce_binding(0)
        if not pending:
            raise _Unreadable(at + 1, "unmatched ')'", False)
        entry = pending.pop()
        if entry[0] == "group":
            node = operands.pop()[0]
            operands.append((node, entry[1], at + 1))
            return
        _, name, start, first, _bracket = entry
        args = [a[0] for a in operands[first:]]
        del operands[first:]
        call = ast.Call(func=name, args=args, keywords=[])
        operands.append((_placed(call, start, at + 1), start, at + 1))

    pos = 0
    length = len(text)
    while pos < length:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _Unreadable(pos + 1, f"{text[pos]!r} is not allowed here", True)
        kind, token, start = match.lastgroup, match.group(), pos
        pos = match.end()
        if kind == "space":
            continue
        if expect_operand:
            if kind == "number":
                try:
                    value = ast.literal_eval(token)
                except (ValueError, SyntaxError):
                    raise _Unreadable(start + 1, f"{token!r} is not a number", True) from None
                node = _placed(ast.Constant(value=value), start, pos)
                operands.append((node, start, pos))
                expect_operand = False
            elif kind == "name":
                if keyword.iskeyword(token):
                    raise _Unreadable(start + 1, f"{token!r} is not allowed", True)
                name = _placed(ast.Name(id=unicodedata.normalize("NFKC", token)), start, pos)
                following = _TOKEN.match(text, pos)
                while following and following.lastgroup == "space":
                    following = _TOKEN.match(text, following.end())
                if following and following.group() == "(":
                    pending.append(("call", name, start, len(operands), following.start()))
                    pos = following.end()
                else:
                    operands.append((name, start, pos))
                    expect_operand = False
            elif token == "(":
                pending.append(("group", start))
            elif token in ("-", "+"):
                pending.append(("unary", token, start))
            elif token == ")" and pending and pending[-1][0] == "call":
                close(start)  # f() or f(x, )
                expect_operand = False
            else:
                raise _Unreadable(
                    start + 1, f"expected a number, a name or '(', got {token!r}", True
                )
        elif token in _PRECEDENCE:
            # `**` groups to the right: x**y**z is x**(y**z).
            reduce_binding(_PRECEDENCE[token], right=token == "**")
            pending.append(("bin", token, start))
            expect_operand = True
        elif token == ")":
            close(start)
        elif token == ",":
            reduce_binding(0)
            if not pending or pending[-1][0] != "call":
                raise _Unreadable(start + 1, "',' outside a function call", True)
            expect_operand = True
        else:
            raise _Unreadable(
                start + 1,
                f"expected an operator, got {token!r}",
                True,  # `x if ...`, `x y`, `x (`: Python's parser says it best
            )
    if expect_operand:
        raise _Unreadable(
            length + 1 if length else 1,
            "the formula ends too soon" if length else "the formula is empty",
            False,
        )
    reduce_binding(0)
    if pending:
        # The column of the bracket left open: a group's '(' or a call's (after its name).
        opened = pending[-1][1 if pending[-1][0] == "group" else 4]
        raise _Unreadable(opened + 1, "'(' was never closed", False)
    assert len(operands) == 1
    return operands[0][0]


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


def _python_segment(text: str) -> Callable[[ast.AST], str]:
    """The text of a node of Python's own `ast.parse` tree (offsets in UTF-8 bytes, lines)."""
    return lambda node: _short(ast.get_source_segment(text, node) or type(node).__name__)


def _span(node: ast.AST) -> int:
    """How many characters of the formula `node` spans (0 if it has no position)."""
    start = getattr(node, "col_offset", 0)
    end = getattr(node, "end_col_offset", None) or start
    return int(end - start)


def _own_segment(text: str) -> Callable[[ast.AST], str]:
    """The text of a node of `_grammar`'s tree: its offsets are character offsets in `text`,
    so a slice is the node's text, at no more cost than the message it goes into."""

    def segment(node: ast.AST) -> str:
        start = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", None) or start
        if end - start > 60:
            return text[start : start + 57] + "..."
        return text[start:end]

    return segment


def _check(node: ast.AST, segment: Callable[[ast.AST], str]) -> None:
    """Raise ExpressionError unless `node` is on the whitelist; `segment(node)` is its text."""
    allowed = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load)
    allowed_ops = (*_BINARY, ast.USub, ast.UAdd)
    if isinstance(node, (ast.operator, ast.unaryop)):
        if not isinstance(node, allowed_ops):
            raise ExpressionError(f"operator {type(node).__name__} is not allowed")
        return
    if not isinstance(node, allowed):
        raise ExpressionError(
            f"{segment(node)!r} is not allowed: use numbers, names, + - * / ** "
            f"and the functions {', '.join(sorted(FUNCTIONS))}"
        )
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"{segment(node)!r} is not a real number")
        _check_literal(node, segment)
    if isinstance(node, ast.Name) and (node.id.startswith("_") or node.id in _RESERVED):
        raise ExpressionError(f"name {node.id!r} is not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(
                f"unknown function {segment(node.func)!r}; known: {', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords:
            raise ExpressionError(f"{segment(node)!r}: keyword arguments are not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{segment(node)!r}: *args is not allowed")
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
                f"{node.func.id} takes {wanted} argument(s), got {n} in {segment(node)!r}"
            )


def _check_literal(node: ast.Constant, segment: Callable[[ast.AST], str]) -> None:
    """A number literal must be a finite float64: `1e999` reads as inf, `10**400` written out
    does not fit. Either is an error naming the literal (`--set` rejects them too)."""
    assert isinstance(node.value, (int, float))  # _check allowed nothing else
    try:
        value = float(node.value)
    except OverflowError:
        raise ExpressionError(
            f"literal {segment(node)} is too large for a float64 "
            f"(the largest is {sys.float_info.max!r})"
        ) from None
    if not math.isfinite(value):
        raise ExpressionError(
            f"literal {segment(node)} is not a finite float64 "
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
    # Judge the length from the node's offsets first: unparsing (or even slicing) every
    # long sub-expression would cost time quadratic in the formula's length.
    short = _span(node) <= 2 * LABEL_WIDTH
    if isinstance(result, Value) and not result.label and result.inputs and short:
        segment = ast.unparse(node)
        if len(segment) <= LABEL_WIDTH:
            result.label = segment
    return result
