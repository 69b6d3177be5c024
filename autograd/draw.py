"""`draw_dot`: the computation graph as a picture (a `graphviz.Digraph`).

The picture is micrograd's: every Value is a record box `label | data | grad`, and every
Value made by an operation is fed by a small oval holding the op's symbol (`*`, `tanh`).
Plain numbers an op was called with (the `2.0` in `x * 2.0`) are not Values, so they get
small boxes of their own, in their own colour. Colours tell the kinds of Value apart:

    leaf (an input you made)            light blue
    parameter (a weight or a bias)      light green
    constant (a plain number argument)  lavender, small
    computed (an intermediate result)   white
    the output(s)                       bold outline

Node ids come from `topological_order`, so the same graph gives the same DOT text on every
run. Labels are escaped, so a label like `x{` or `a|b` is shown as text, never read as
graphviz syntax. Everything is a loop, never recursion: a chain of 5000 ops draws. A big
graph is drawn in part (`max_nodes`), and a deep one folded into rows like lines of text, with
the note saying so in large type at the top, so that the picture can still be read.

graphviz (the Python package) is imported inside the functions, so `import autograd` needs
numpy only. Rendering needs Graphviz's `dot` program as well; without it the Jupyter display
falls back to text saying how to install it, and `.source` (the DOT text) always works.

Read next: `stepper.py`, which uses this picture to show a backward pass step by step.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .engine import topological_order
from .value import Value

if TYPE_CHECKING:
    import graphviz

VIZ_INSTALL_HINT = 'pip install "chainrule[viz]"'
DOT_INSTALL_HINT = (
    "Graphviz's `dot` program was not found, so the graph cannot be rendered. Install it: "
    "Debian/Ubuntu `sudo apt-get install graphviz`, macOS `brew install graphviz`, "
    "conda `conda install graphviz`. The DOT text is in `.source`."
)

RANKDIRS = ("LR", "RL", "TB", "BT")

# Fill colours by kind of node (X11 colour names, which every Graphviz knows).
COLOURS = {
    "leaf": "lightblue",
    "parameter": "palegreen",
    "constant": "lavender",
    "computed": "white",
    "op": "whitesmoke",
    "highlight": "gold",
    "pending": "gray92",
    "summary": "lightyellow",
}

# A deep graph (a long chain) laid out in one line is tens of thousands of pixels long, and
# a renderer scales it down until nothing can be read. Past FOLD_LEVELS levels (distance
# from the output), the picture is folded into rows of ROW_LEVELS levels each, read like
# lines of text. A value used in the next row down is not joined to it by a long edge:
# a small "from v12" box there stands for it, as a page connector in a flowchart does.
# (Edges between rows with graphviz's constraint=false would keep the rows apart too, but
# dot then fails on some graphs: "lost edge", "trouble in init_rank".)
FOLD_LEVELS = 24
ROW_LEVELS = 8
FOLD_WIDTH = 4  # at most this many values per level on average

# The font size of the title of a big picture (the note on a partial or folded drawing):
# twice the nodes' 11, so it stays readable when the picture is viewed whole.
TITLE_FONTSIZE = "22"

# A state-dict name of a weight or a bias, e.g. "layers.0.weight[3, 1]", "layers.2.bias[0]",
# "weight[1]" or "bias": dotted module path, then weight|bias, then an optional index.
_PARAMETER_LABEL = re.compile(
    r"^(?P<module>(?:\w+\.)*?)(?:weight|bias)(?:\[(?P<index>\d+(?:,\s*\d+)*)\])?$"
)

# Ops through which a neuron's own computation flows, for `cluster_by="label"`: its weighted
# sum (chains of + and *, or one `linear` / `sum` node) and its activation.
_NEURON_OPS = frozenset(
    {"add", "sum", "linear", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "gelu", "softplus"}
)

# graphviz's record labels give { } | < > and space a meaning; a backslash escapes them.
# Backslash itself and " are escaped too, so any label is shown exactly as it is.
_RECORD_SPECIAL = re.compile(r'([{}|<>"\\])')


def record_escape(text: str) -> str:
    """Escape `text` for one field of a graphviz record label, so it shows literally.

    `{ } | < > " \\` each get a backslash; a newline becomes graphviz's line break `\\n`.
    """
    return _RECORD_SPECIAL.sub(r"\\\1", text).replace("\n", "\\n")


def format_number(x: float) -> str:
    """A float in 4 significant digits for a picture: `-6.0`, `0.7071`, `1.699e-17`, `inf`."""
    text = f"{x:.4g}"
    if re.fullmatch(r"-?\d+", text):
        text += ".0"  # "6" reads as an integer; the engine's numbers are floats
    return text


def parameter_key(label: str) -> tuple[str, int | None] | None:
    """(module path, neuron index) for a state-dict label, or None if it is not one.

    `"layers.0.weight[3, 1]"` -> `("layers.0", 3)`; `"layers.0.bias[3]"` -> `("layers.0", 3)`;
    `"weight[1]"` (one neuron's weight vector) -> `("", None)`; `"x"` -> None. The neuron
    index is row `i` of a weight of shape (out, in) and entry `i` of a bias of shape (out,),
    PyTorch's layout.
    """
    match = _PARAMETER_LABEL.match(label)
    if match is None:
        return None
    module = match.group("module").rstrip(".")
    index = match.group("index")
    if index is None:
        return module, None
    parts = [int(p) for p in index.split(",")]
    is_bias = label[len(match.group("module")) :].startswith("bias")
    if len(parts) == 2 or (is_bias and len(parts) == 1):
        return module, parts[0]
    return module, None


@functools.cache
def _graph_class() -> type[graphviz.Digraph]:
    """The `graphviz.Digraph` subclass draw_dot returns (made once, on first use).

    It differs from `graphviz.Digraph` only in its Jupyter display: when the `dot` program
    is missing it shows the install hint as text instead of raising.
    """
    try:
        import graphviz
    except ImportError as error:
        raise ImportError(
            f"draw_dot needs the graphviz Python package: {VIZ_INSTALL_HINT} "
            "(and Graphviz's `dot` program to render)"
        ) from error

    class GraphPicture(graphviz.Digraph):
        """A `graphviz.Digraph` that displays in Jupyter as SVG, or as text without `dot`."""

        def _repr_mimebundle_(
            self,
            include: Iterable[str] | None = None,
            exclude: Iterable[str] | None = None,
            **kwargs: Any,
        ) -> dict[str, bytes | str]:
            try:
                bundle = super()._repr_mimebundle_(include, exclude, **kwargs)
            except graphviz.ExecutableNotFound:
                return {"text/plain": DOT_INSTALL_HINT}
            bundle["text/plain"] = "<computation graph (draw_dot); .source has its DOT text>"
            return bundle

        def _repr_svg_(self) -> str | None:
            try:
                return self.pipe(format="svg", encoding="utf-8")
            except graphviz.ExecutableNotFound:
                return None

    return GraphPicture


def draw_dot(
    root: Value | Sequence[Value],
    *,
    rankdir: str = "LR",
    show_grad: bool = True,
    show_local_grads: bool = False,
    highlight: Iterable[Value] = (),
    max_nodes: int | None = 500,
    format: str = "svg",  # noqa: A002 - graphviz's and the issue's name for it
    parameters: Iterable[Value] | None = None,
    cluster_by: str | None = None,
) -> graphviz.Digraph:
    """Draw the graph that computed `root` (micrograd's picture), as a graphviz Digraph.

    Args:
        root: the output Value, or a sequence of outputs drawn in one picture.
        rankdir: graphviz layout direction: "LR" (left to right, the default), "RL", "TB", "BT".
        show_grad: show each Value's `.grad` in its box.
        show_local_grads: label each edge input -> op with the local derivative
            d(result)/d(input) (`Value.local_grads`).
        highlight: Values to draw in gold with a thick red outline.
        max_nodes: the most Values to draw. A larger graph is drawn in part: the `max_nodes`
            Values nearest the output, and one box saying how many were left out and how to
            draw them (pass a larger `max_nodes`, or None for no limit, or draw an
            intermediate Value). The picture's title, in large type at the top, says so
            too. A long, narrow drawing (more than FOLD_LEVELS levels, at most FOLD_WIDTH
            values a level on average, no `cluster_by`) is folded into rows of ROW_LEVELS
            levels, so a chain stays readable instead of a line thousands of boxes long.
        format: the output format of `.render()` / `.pipe()` ("svg", "png", "pdf", ...).
        parameters: the Values to colour as parameters. If None, a leaf is a parameter when
            its label is a state-dict name of a weight or bias (`layers.0.weight[3, 1]`,
            `layers.0.bias[3]`, `weight[0]`), as nn labels them.
        cluster_by: None, or "label": group parameters by the module path and neuron in their
            labels, into graphviz `cluster_` boxes (one per layer, one per neuron inside it).
            A computed Value joins a neuron when its inputs include that neuron's parameters
            (and no other neuron's), or when it is a sum or activation of that neuron's values.

    Returns:
        A `graphviz.Digraph` (a subclass whose Jupyter display is SVG, or install
        instructions as text when the `dot` program is missing). `.source` is the DOT text;
        `.render(...)` / `.pipe()` need Graphviz installed.

    Raises:
        ImportError: the graphviz Python package is missing (`pip install "chainrule[viz]"`).
        TypeError: `root` or an entry of `highlight`/`parameters` is not a Value.
        ValueError: an unknown `rankdir`, `format` or `cluster_by`, or `max_nodes` < 1.
    """
    return _draw(
        root,
        rankdir=rankdir,
        show_grad=show_grad,
        show_local_grads=show_local_grads,
        highlight=highlight,
        max_nodes=max_nodes,
        format=format,
        parameters=parameters,
        cluster_by=cluster_by,
    )


def _draw(
    root: Value | Sequence[Value],
    *,
    rankdir: str = "LR",
    show_grad: bool = True,
    show_local_grads: bool = False,
    highlight: Iterable[Value] = (),
    max_nodes: int | None = 500,
    format: str = "svg",  # noqa: A002 - graphviz's and the issue's name for it
    parameters: Iterable[Value] | None = None,
    cluster_by: str | None = None,
    state: Callable[[Value], str] | None = None,
    title: str = "",
) -> graphviz.Digraph:
    """draw_dot, plus what the stepper needs.

    `state(v)` returns "done", "current" or "pending" for each Value: pending Values are
    greyed and show their gradient so far; "current" is highlighted.
    """
    graph_class = _graph_class()
    import graphviz

    roots = _as_roots(root)
    if rankdir not in RANKDIRS:
        raise ValueError(f"draw_dot: rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if format not in graphviz.FORMATS:
        raise ValueError(f"draw_dot: unknown format {format!r}; try 'svg', 'png' or 'pdf'")
    if max_nodes is not None and (isinstance(max_nodes, bool) or max_nodes < 1):
        raise ValueError(f"draw_dot: max_nodes must be a positive int or None, got {max_nodes!r}")
    if cluster_by not in (None, "label"):
        raise ValueError(f"draw_dot: cluster_by must be None or 'label', got {cluster_by!r}")
    highlighted = _value_set(highlight, "highlight")
    param_set = None if parameters is None else _value_set(parameters, "parameters")

    order = topological_order(roots)
    index = {v: i for i, v in enumerate(order)}
    shown = _nearest(roots, max_nodes) if max_nodes is not None else None
    if shown is not None and len(shown) == len(order):
        shown = None
    drawn = order if shown is None else [v for v in order if v in shown]
    levels = _levels(roots, shown)
    depth = max(levels.values()) + 1
    # Fold a long, narrow graph (a chain, an unrolled loop): a wide one would not fit in a
    # row anyway, and label clusters would be cut across rows.
    fold = cluster_by is None and depth > FOLD_LEVELS and len(drawn) <= FOLD_WIDTH * depth
    # row[v]: which row of a folded picture v is in; all 0 when the picture is not folded.
    row = {v: (level // ROW_LEVELS if fold else 0) for v, level in levels.items()}

    def is_parameter(v: Value) -> bool:
        if not v.is_leaf:
            return False
        if param_set is not None:
            return v in param_set
        return parameter_key(v.label) is not None

    graph = graph_class(
        name="computation graph",
        format=format,
        graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "fontsize": "11"},
        node_attr={"fontname": "Helvetica", "fontsize": "11"},
        edge_attr={
            "fontname": "Helvetica",
            "fontsize": "9",
            "arrowsize": "0.6",
            "decorate": "true",
        },
    )
    notes = [title] if title else []
    if shown is not None:
        notes.append(
            f"showing {len(drawn)} of {len(order)} values (the ones nearest the output); "
            f"{len(order) - len(drawn)} more values not drawn"
        )
        notes.append(
            f"draw_dot(..., max_nodes={len(order)}) draws them all, or draw an intermediate value"
        )
    if fold:
        rows, before = (
            ("rows", "row above") if rankdir in ("LR", "RL") else ("columns", "column to the left")
        )
        notes.append(
            f"a deep graph, folded into {rows} of {ROW_LEVELS} levels, read in order; "
            f"a 'from' box stands for a value drawn in the {before}"
        )
    if notes:
        # Each line escaped on its own, then joined by graphviz's left-justified line break.
        title_text = "".join(graphviz.escape(note) + "\\l" for note in notes)
        graph.attr(
            label=graphviz.nohtml(title_text),
            labelloc="t",
            labeljust="l",
            # Large when the picture is: a partial or folded drawing is big.
            fontsize=TITLE_FONTSIZE if shown is not None or fold else "14",
        )

    groups = _clusters(drawn, index, is_parameter) if cluster_by == "label" else {}
    bodies: dict[tuple[str, int | None] | None, list[str]] = {}

    # Node statements are collected per cluster, edges separately: graphviz puts a node in
    # the first subgraph that mentions it, so edges go last, outside every cluster.
    edges = graphviz.Digraph()

    # A folded picture boxes each row in an invisible cluster, so that graphviz keeps every
    # row's boxes together; the rows are otherwise unconnected, and dot stacks them in the
    # order they are written (see below).
    row_bodies: dict[int, list[str]] | None = {} if fold else None
    links: set[tuple[Value, int]] = set()  # (value, row) pairs with a "from" box drawn

    def emit(v: Value, name: str, attrs: dict[str, str]) -> None:
        scratch = graphviz.Digraph()
        scratch.node(name, **attrs)
        if row_bodies is not None:
            row_bodies.setdefault(row[v], []).extend(scratch.body)
        else:
            bodies.setdefault(groups.get(v), []).extend(scratch.body)

    roots_set = set(roots)
    for v in drawn:
        i = index[v]
        kind = "parameter" if is_parameter(v) else "leaf" if v.is_leaf else "computed"
        node_state = state(v) if state is not None else "done"
        fields = [record_escape(v.label or f"v{i}"), f"data {format_number(v.data)}"]
        if show_grad:
            grad = format_number(v.grad)
            fields.append(f"grad {grad}" if node_state != "pending" else f"grad so far {grad}")
        # No spaces around the separators: graphviz 2.43 drops the spaces inside a field that
        # starts with a space and then a non-ASCII letter ("{ é ü|...}" shows "éü").
        record = "|".join(fields)
        if rankdir in ("LR", "RL"):
            record = "{" + record + "}"  # fields side by side, as micrograd draws them
        attrs = {"label": graphviz.nohtml(record), "shape": "record"}
        attrs["style"] = "filled"
        attrs["fillcolor"] = COLOURS[kind]
        if node_state == "pending":
            attrs.update(fillcolor=COLOURS["pending"], fontcolor="gray45", color="gray60")
        if v in highlighted or node_state == "current":
            attrs.update(fillcolor=COLOURS["highlight"], color="red", penwidth="2.5")
        elif v in roots_set:
            attrs["penwidth"] = "2"
        emit(v, f"v{i}", attrs)

        if v.op is None:
            continue
        op_attrs = {
            "label": graphviz.escape(v.op.symbol),
            "shape": "ellipse",
            "style": "filled",
            "fillcolor": COLOURS["op"],
            "margin": "0.02",
            "height": "0.3",
        }
        if node_state == "pending":
            op_attrs.update(fontcolor="gray45", color="gray60")
        # The current step hands its gradient back along these edges: draw them in red.
        flow = {"color": "red", "penwidth": "2"} if node_state == "current" else {}
        op_attrs.update(flow)
        emit(v, f"op{i}", op_attrs)
        edges.edge(f"op{i}", f"v{i}")
        for position, arg in enumerate(v.args):
            if isinstance(arg, Value):
                local = v.local_grads[position]
                if shown is not None and arg not in shown:
                    continue  # drawn as part of the summary box below
                edge_attrs = (
                    {"label": format_number(local), "fontcolor": "blue4"}
                    if show_local_grads
                    else {}
                )
                edge_attrs.update(flow)
                source = f"v{index[arg]}"
                if row[arg] != row[v]:
                    # Drawn in another row: a "from" box in this row stands for it.
                    source = f"link{index[arg]}_{row[v]}"
                    if (arg, row[v]) not in links:
                        links.add((arg, row[v]))
                        from_attrs = {
                            "label": graphviz.escape(f"from {arg.label or f'v{index[arg]}'}"),
                            "shape": "cds",
                            "style": "filled",
                            "fillcolor": COLOURS["op"],
                            "fontsize": "9",
                            "height": "0.25",
                        }
                        emit(v, source, from_attrs)
                edges.edge(source, f"op{i}", **edge_attrs)
            else:
                const_attrs = {
                    "label": graphviz.escape(format_number(float(arg))),
                    "shape": "box",
                    "style": "filled,rounded",
                    "fillcolor": COLOURS["constant"],
                    "fontsize": "9",
                    "height": "0.25",
                    "margin": "0.04,0.02",
                }
                name = f"c{i}_{position}"
                emit(v, name, const_attrs)
                edges.edge(name, f"op{i}", style="dashed")

    if shown is not None:
        hidden = len(order) - len(drawn)
        frontier = sorted({index[v] for v in drawn for a in v.inputs if a not in shown})
        lines = [
            f"... {hidden} more values not drawn",
            f"(max_nodes={max_nodes}; pass a larger max_nodes,",
            "or draw an intermediate value)",
        ]
        summary = graphviz.nohtml("\\n".join(graphviz.escape(line) for line in lines))
        note = graphviz.Digraph()
        note.node(
            "omitted", label=summary, shape="note", style="filled", fillcolor=COLOURS["summary"]
        )
        if row_bodies is not None:  # in the last row, where the cut is
            row_bodies.setdefault(max(row.values()), []).extend(note.body)
        else:
            graph.body.extend(note.body)
        last_row = max(row.values())
        marked: set[int] = set()
        for i in frontier:
            k = row[order[i]]
            if k == last_row:
                edges.edge("omitted", f"op{i}", style="dotted")
                continue
            # A cut in another row of a folded picture: a small mark of its own there.
            if k not in marked:
                marked.add(k)
                emit(order[i], f"omitted_{k}", {"label": "...", "shape": "note", "fontsize": "9"})
            edges.edge(f"omitted_{k}", f"op{i}", style="dotted")

    # The row farthest from the output goes on top (LR, RL) or on the left (TB, BT), so the
    # picture reads like text and the output ends it. dot stacks unconnected parts of a
    # left-to-right picture bottom up, and those of a top-to-bottom one left to right
    # (graphviz 2.43; test_draw.py checks it with `dot -Tplain`).
    deepest_first = rankdir in ("TB", "BT")
    for k, body in sorted((row_bodies or {}).items(), reverse=deepest_first):
        with graph.subgraph(name=f"cluster_row{k}") as box:
            box.attr(label="", style="invis")
            box.body.extend(body)
    _write_clusters(graph, bodies)
    graph.body.extend(edges.body)
    return graph


def _as_roots(root: Value | Sequence[Value]) -> list[Value]:
    if isinstance(root, Value):
        return [root]
    if isinstance(root, (str, bytes)) or not isinstance(root, Sequence):
        raise TypeError(f"draw_dot: root must be a Value or a sequence of Values, got {root!r}")
    roots = list(root)
    if not roots:
        raise ValueError("draw_dot: root is an empty sequence; give at least one Value")
    for r in roots:
        if not isinstance(r, Value):
            raise TypeError(f"draw_dot: root must contain Values, got {type(r).__name__}")
    return roots


def _value_set(values: Iterable[Value], what: str) -> set[Value]:
    if isinstance(values, Value):
        values = [values]
    result = set()
    for v in values:
        if not isinstance(v, Value):
            raise TypeError(f"draw_dot: {what} must contain Values, got {type(v).__name__}")
        result.add(v)
    return result


def _levels(roots: list[Value], shown: set[Value] | None) -> dict[Value, int]:
    """Each drawn Value's level: its least number of ops from an output (breadth-first)."""
    levels = dict.fromkeys(roots, 0)
    queue = deque(roots)
    while queue:
        v = queue.popleft()
        for a in v.inputs:
            if a not in levels and (shown is None or a in shown):
                levels[a] = levels[v] + 1
                queue.append(a)
    return levels


def _nearest(roots: list[Value], limit: int) -> set[Value]:
    """Up to `limit` Values reachable from `roots`, nearest first (breadth-first)."""
    seen: set[Value] = set()
    queue = deque(roots)
    while queue and len(seen) < limit:
        v = queue.popleft()
        if v in seen:
            continue
        seen.add(v)
        queue.extend(v.inputs)
    return seen


def _clusters(
    drawn: list[Value], index: Mapping[Value, int], is_parameter: Callable[[Value], bool]
) -> dict[Value, tuple[str, int | None]]:
    """The (module, neuron) group of each drawn Value that belongs to one (see draw_dot)."""
    groups: dict[Value, tuple[str, int | None]] = {}
    for v in drawn:  # topological order: inputs are assigned before the Values using them
        if v.is_leaf:
            key = parameter_key(v.label) if is_parameter(v) else None
            if key is not None:
                groups[v] = key
            continue
        param_keys = {groups.get(a) for a in v.inputs if is_parameter(a)}
        if len(param_keys) == 1 and None not in param_keys:
            groups[v] = param_keys.pop()  # type: ignore[assignment]
            continue
        if param_keys or v.op is None or v.op.name not in _NEURON_OPS:
            continue
        input_keys = {groups.get(a) for a in v.inputs}
        if len(input_keys) == 1 and None not in input_keys:
            groups[v] = input_keys.pop()  # type: ignore[assignment]
    return groups


def _natural_key(key: tuple[str, int | None]) -> tuple[list[Any], int]:
    """Sort layers.2 before layers.10, and neurons by index."""
    module, neuron = key
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", module)]
    return parts, -1 if neuron is None else neuron


def _write_clusters(
    graph: graphviz.Digraph, bodies: dict[tuple[str, int | None] | None, list[str]]
) -> None:
    """Append each group's statements to `graph`: ungrouped first, then a cluster per module
    holding a cluster per neuron, in the order of their names."""
    import graphviz

    graph.body.extend(bodies.get(None, []))
    modules: dict[str, list[tuple[str, int | None]]] = {}
    for key in sorted((k for k in bodies if k is not None), key=_natural_key):
        modules.setdefault(key[0], []).append(key)
    for m, (module, keys) in enumerate(modules.items()):
        with graph.subgraph(name=f"cluster_m{m}") as layer:
            layer.attr(
                label=graphviz.escape(module or "module"),
                style="rounded",
                color="gray50",
                fontsize="11",  # not the title's size, which clusters would inherit
            )
            for key in keys:
                neuron = key[1]
                if neuron is None:
                    layer.body.extend(bodies[key])
                    continue
                with layer.subgraph(name=f"cluster_m{m}_n{neuron}") as box:
                    box.attr(
                        label=f"neuron {neuron}", style="dashed", color="gray60", fontsize="11"
                    )
                    box.body.extend(bodies[key])


def dot_available() -> bool:
    """True when Graphviz's `dot` program can be run (rendering works)."""
    import shutil

    return shutil.which("dot") is not None
