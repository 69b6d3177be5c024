"""draw_dot: cases D01-D03, determinism, escaping, colours, clusters, the Jupyter fallback."""

from __future__ import annotations

import itertools
import random
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import autograd
from autograd import Value, draw_dot, linear
from autograd.draw import COLOURS, format_number, parameter_key, record_escape

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def render_svg(source: str) -> str:
    """Run the real `dot -Tsvg` on DOT text; fail the test on a non-zero exit."""
    result = subprocess.run(
        ["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def svg_texts(svg: str) -> list[str]:
    """Every piece of text shown in an SVG picture, unescaped."""
    root = ET.fromstring(svg)
    return [el.text for el in root.iter("{http://www.w3.org/2000/svg}text") if el.text]


def value_nodes(source: str) -> list[str]:
    return re.findall(r"^\s*(v\d+) \[", source, flags=re.M)


def op_nodes(source: str) -> list[str]:
    return re.findall(r"^\s*(op\d+) \[", source, flags=re.M)


def operand_edges(source: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(v\d+) -> (op\d+)", source, flags=re.M)


# -- the cases ---------------------------------------------------------------------------------


@needs_dot
def test_D01_operand_used_twice_is_drawn_twice():
    x = Value(2.0)
    y = x * x + x
    y.backward()
    source = draw_dot(y).source
    assert len(value_nodes(source)) == 3  # x, x*x, y
    assert len(op_nodes(source)) == 2  # *, +
    edges = operand_edges(source)
    assert len(edges) == 4
    # x (topological id v0) feeds `*` (the op of v1) twice, and `+` once.
    assert edges.count(("v0", "op1")) == 2
    assert edges.count(("v0", "op2")) == 1
    assert edges.count(("v1", "op2")) == 1
    render_svg(source)


@needs_dot
def test_D02_label_is_text_not_graphviz_syntax():
    x = Value(1.0, label="x{")
    source = draw_dot(x * 2.0).source
    assert "x{" in svg_texts(render_svg(source))


@needs_dot
def test_every_special_character_shows_literally():
    label = 'a{b}c|d<e>f"g\\h'
    y = Value(1.0, label=label).tanh()
    for rankdir in ("LR", "TB"):
        texts = svg_texts(render_svg(draw_dot(y, rankdir=rankdir).source))
        assert label in texts


@needs_dot
@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_non_ascii_labels_keep_their_spaces(rankdir):
    y = Value(1.0, label="é ü ∂L") * 2.0
    assert "é ü ∂L" in svg_texts(render_svg(draw_dot(y, rankdir=rankdir).source))


@needs_dot
def test_newline_in_a_label_is_a_line_break():
    y = Value(1.0, label="two\nlines") * 2.0
    texts = svg_texts(render_svg(draw_dot(y).source))
    assert "two" in texts and "lines" in texts


@needs_dot
def test_label_that_looks_like_html_is_text():
    y = Value(1.0, label="<b>bold</b>") + 1.0
    assert "<b>bold</b>" in svg_texts(render_svg(draw_dot(y).source))


@needs_dot
def test_D03_deep_chain_draws_a_summary_that_says_so():
    x = Value(1.0, label="x")
    y = x
    for _ in range(5000):
        y = y + 1.0
    graph = draw_dot(y)  # no RecursionError
    source = graph.source
    assert len(value_nodes(source)) == 500
    assert "showing 500 of 5001 values" in source
    assert "4501 more values not drawn" in source
    texts = " ".join(svg_texts(render_svg(source)))
    assert "4501 more values not drawn" in texts
    assert "showing 500 of 5001 values" in texts


def chain(n: int) -> Value:
    """D03's graph: x, then y = y + 1.0, n times."""
    y = Value(1.0, label="x")
    for _ in range(n):
        y = y + 1.0
    return y


def svg_size_pt(svg: str) -> tuple[float, float]:
    root = ET.fromstring(svg)
    return float(root.get("width", "").removesuffix("pt")), float(
        root.get("height", "").removesuffix("pt")
    )


@needs_dot
def test_D03_summary_picture_is_readable():
    # Laid out in one line, the 500 values drawn were ~130,000 pt long: a renderer scales
    # that (PNG: to 32767 px) until neither the boxes nor the note can be read.
    svg = render_svg(draw_dot(chain(5000)).source)
    width, height = svg_size_pt(svg)
    assert width < 4000, width  # rows of ROW_LEVELS levels, like lines of text
    assert height < 24000, height  # under cairo's 32767 px at 96 dpi: never scaled down
    root = ET.fromstring(svg)
    texts = {
        el.text: el.get("font-size")
        for el in root.iter("{http://www.w3.org/2000/svg}text")
        if el.text
    }
    # The note is in the title at the top, in large type (nodes are 11 pt).
    note = "showing 500 of 5001 values (the ones nearest the output); 4501 more values not drawn"
    assert texts[note] == "22.00"
    assert texts["draw_dot(..., max_nodes=5001) draws them all, or draw an intermediate value"]
    # The title is above every node.
    title_y = min(
        float(el.get("y"))
        for el in root.iter("{http://www.w3.org/2000/svg}text")
        if el.text == note
    )
    node_ys = [float(el.get("y")) for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert title_y == min(node_ys)


def node_positions(source: str) -> dict[str, tuple[float, float]]:
    """Where `dot` puts each node: (x, y) in inches, y upwards (`dot -Tplain`)."""
    result = subprocess.run(["dot", "-Tplain"], input=source.encode(), capture_output=True)
    assert result.returncode == 0 and b"rror" not in result.stderr, result.stderr.decode()
    positions = {}
    for line in result.stdout.decode().splitlines():
        if line.startswith("node "):
            _, name, x, y, *_ = line.split()
            positions[name] = (float(x), float(y))
    return positions


def test_deep_pictures_fold_into_rows_shallow_ones_do_not():
    from autograd.draw import FOLD_LEVELS, ROW_LEVELS

    source = draw_dot(chain(100), max_nodes=None).source
    rows = re.findall(r"subgraph cluster_row(\d+) \{(.*?)\n\t\}", source, flags=re.S)
    # 101 values, one level each: rows of ROW_LEVELS values, the output (v100) in row 0.
    assert sorted(len(value_nodes(body)) for _, body in rows) == [5] + [ROW_LEVELS] * 12
    by_row = {int(k): body for k, body in rows}
    assert "v100 [" in by_row[0] and "v0 [" in by_row[12]
    # No edge runs between rows: the next row has a "from" box standing for the value.
    assert 'link92_0 [label="from v92" ' in by_row[0]
    assert "link92_0 -> op93" in source and "v92 -> op93" not in source
    assert "constraint" not in source
    assert "folded into rows of 8 levels" in source
    shallow = draw_dot(chain(FOLD_LEVELS - 1)).source
    assert "cluster_row" not in shallow and "link" not in shallow and "folded" not in shallow


@needs_dot
@pytest.mark.parametrize("rankdir", ["LR", "RL", "TB", "BT"])
def test_folded_rows_read_like_text(rankdir):
    # The row farthest from the output comes first: on top, or on the left for TB and BT.
    source = draw_dot(chain(100), max_nodes=None, rankdir=rankdir).source
    where = node_positions(source)
    first, output = where["v0"], where["v100"]
    if rankdir in ("LR", "RL"):
        assert first[1] > output[1]  # y grows upwards in -Tplain
        rows = [where[f"v{k}"][1] for k in (0, 5, 13, 21, 100)]
        assert rows == sorted(rows, reverse=True)
    else:
        assert first[0] < output[0]
        columns = [where[f"v{k}"][0] for k in (0, 5, 13, 21, 100)]
        assert columns == sorted(columns)


@needs_dot
def test_folding_renders_random_narrow_graphs():
    # Graphs with skip connections across rows, drawn whole, in part and with local grads:
    # dot must lay every one out without an error.
    rng = random.Random(0)
    folded = 0
    for _ in range(6):
        values = [Value(rng.uniform(0.5, 1.5), label=f"x{i}") for i in range(2)]
        for _ in range(rng.randint(40, 120)):
            a, b = values[-1], rng.choice(values[-10:])
            values.append(rng.choice([a + b, a * 0.5 + b * 0.5, a.tanh(), a + 1.0]))
        for kwargs in ({}, {"max_nodes": 60}, {"show_local_grads": True, "rankdir": "TB"}):
            source = draw_dot(values[-1], **kwargs).source
            folded += "folded" in source
            node_positions(source)
    assert folded >= 6


def test_D03_deep_chain_without_limit_builds_every_node():
    x = Value(1.0)
    y = x
    for _ in range(5000):
        y = y + 1.0
    source = draw_dot(y, max_nodes=None).source
    assert len(value_nodes(source)) == 5001
    assert "more values not drawn" not in source


# -- structure -----------------------------------------------------------------------------------


def build_expression():
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    d = e + c
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    L.backward()
    return L


def test_same_graph_gives_identical_dot_text():
    first = draw_dot(build_expression(), show_local_grads=True).source
    second = draw_dot(build_expression(), show_local_grads=True).source
    assert first == second
    root = build_expression()
    assert draw_dot(root).source == draw_dot(root).source


def test_one_dot_node_per_value_however_many_paths_reach_it():
    x = Value(1.0, label="x")
    a = x * 2.0
    b = x + 3.0
    y = a * b + a
    source = draw_dot(y).source
    assert len(value_nodes(source)) == len(autograd.topological_order(y)) == 5
    assert source.count('label="{x|') == 1


def test_record_shows_label_data_and_grad():
    root = build_expression()
    source = draw_dot(root).source
    assert 'v6 [label="{L|data -8.0|grad 1.0}"' in source
    assert 'label="{a|data 2.0|grad 6.0}"' in source
    no_grad = draw_dot(root, show_grad=False).source
    assert "grad" not in no_grad
    assert 'label="{a|data 2.0}"' in no_grad


def test_unlabelled_values_are_named_by_their_node_id():
    x = Value(3.0)
    y = x * x
    source = draw_dot(y).source
    assert 'v0 [label="{v0|data 3.0' in source
    assert 'v1 [label="{v1|data 9.0' in source


def test_top_to_bottom_layout_stacks_fields():
    source = draw_dot(build_expression(), rankdir="TB").source
    assert "rankdir=TB" in source
    assert 'label="a|data 2.0|grad 6.0"' in source


def test_constants_are_small_nodes_of_their_own_colour():
    x = Value(3.0, label="x")
    y = x * 2.0
    source = draw_dot(y).source
    constant = re.search(r"^\s*(c1_1) \[(.*)\]$", source, flags=re.M)
    assert constant is not None
    assert "label=2.0" in constant.group(2)
    assert f"fillcolor={COLOURS['constant']}" in constant.group(2)
    assert re.search(r"^\s*c1_1 -> op1", source, flags=re.M)
    # The constant is not a Value: no record node for it.
    assert len(value_nodes(source)) == 2


def test_leaves_parameters_and_computed_values_have_different_colours():
    w = Value(0.5, label="layers.0.weight[0, 0]")
    b = Value(0.1, label="layers.0.bias[0]")
    x = Value(2.0, label="x")
    wx = w * x
    y = (wx + b).tanh()
    source = draw_dot(y).source
    ids = {v: i for i, v in enumerate(autograd.topological_order(y))}

    def fill(label: str) -> str:
        line = next(s for s in source.splitlines() if f'label="{{{label}|' in s)
        return re.search(r"fillcolor=(\w+)", line).group(1)

    assert fill("x") == COLOURS["leaf"]
    assert fill(r"layers.0.weight[0, 0]") == COLOURS["parameter"]
    assert fill("layers.0.bias[0]") == COLOURS["parameter"]
    assert fill(f"v{ids[wx]}") == COLOURS["computed"]
    # An explicit set of parameters overrides the label rule.
    explicit = draw_dot(y, parameters=[x]).source
    x_line = next(s for s in explicit.splitlines() if 'label="{x|' in s)
    assert f"fillcolor={COLOURS['parameter']}" in x_line
    w_line = next(s for s in explicit.splitlines() if "weight" in s)
    assert f"fillcolor={COLOURS['leaf']}" in w_line


def test_local_grads_label_the_edges():
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = a * b
    source = draw_dot(c, show_local_grads=True).source
    assert "v0 -> op2 [label=-3.0 fontcolor=blue4]" in source  # dc/da = b
    assert "v1 -> op2 [label=2.0 fontcolor=blue4]" in source  # dc/db = a
    assert "label=-3.0" not in draw_dot(c).source


def test_highlight_marks_the_value():
    root = build_expression()
    a = autograd.topological_order(root)[0]
    source = draw_dot(root, highlight=[a]).source
    line = next(s for s in source.splitlines() if 'label="{a|' in s)
    assert "fillcolor=gold" in line and "color=red" in line


def test_multiple_roots_in_one_picture():
    x = Value(1.0, label="x")
    outs = [x * 2.0, x + 1.0]
    source = draw_dot(outs).source
    assert len(value_nodes(source)) == 3


def test_format_sets_the_render_format():
    assert draw_dot(Value(1.0) * 2.0, format="png").format == "png"


# -- clusters --------------------------------------------------------------------------------


def hand_built_mlp(sizes=(2, 3, 1), use_linear=True, seed=0):
    """An MLP from Values labelled as nn labels its parameters (state-dict names)."""
    rng = random.Random(seed)
    xs = [Value(0.5, label="x[0]"), Value(-0.3, label="x[1]")][: sizes[0]]
    for layer, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        outs = []
        for i in range(n_out):
            w = [
                Value(rng.uniform(-1, 1), label=f"layers.{layer}.weight[{i}, {j}]")
                for j in range(n_in)
            ]
            b = Value(0.0, label=f"layers.{layer}.bias[{i}]")
            if use_linear:
                s = linear(w, xs, b)
            else:
                s = b
                for wj, xj in zip(w, xs):
                    s = s + wj * xj
            outs.append(s.tanh() if layer < len(sizes) - 2 else s)
        xs = outs
    loss = (xs[0] - 1.0) ** 2
    loss.backward()
    return loss


def cluster_body(source: str, name: str) -> str:
    """The text of subgraph `name` up to its closing brace (clusters nest at most twice)."""
    start = source.index(f"subgraph {name} {{")
    depth = 0
    for k in range(start, len(source)):
        if source[k] == "{" and source[k - 1] != "\\":
            depth += 1
        elif source[k] == "}" and source[k - 1] != "\\":
            depth -= 1
            if depth == 0:
                return source[start : k + 1]
    raise AssertionError("unbalanced braces")


@pytest.mark.parametrize("use_linear", [True, False])
def test_cluster_by_label_groups_layers_and_neurons(use_linear):
    loss = hand_built_mlp(use_linear=use_linear)
    source = draw_dot(loss, cluster_by="label").source
    layer0 = cluster_body(source, "cluster_m0")
    assert 'label="layers.0"' in layer0
    neuron1 = cluster_body(source, "cluster_m0_n1")
    assert 'label="neuron 1"' in neuron1
    assert "layers.0.weight[1, 0]" in neuron1 and "layers.0.bias[1]" in neuron1
    assert "layers.0.weight[0, 0]" not in neuron1
    assert "tanh" in neuron1  # the neuron's activation is drawn inside it
    layer1 = cluster_body(source, "cluster_m1")
    assert "layers.1.weight[0, 2]" in layer1
    # The inputs and the loss are outside every cluster.
    for name in ("cluster_m0", "cluster_m1"):
        body = cluster_body(source, name)
        assert "x[0]" not in body and "**" not in body
    if shutil.which("dot"):
        render_svg(source)


def test_no_clusters_by_default():
    assert "subgraph" not in draw_dot(hand_built_mlp()).source


@pytest.mark.parametrize(
    "label, key",
    [
        ("layers.0.weight[3, 1]", ("layers.0", 3)),
        ("layers.12.bias[3]", ("layers.12", 3)),
        ("weight[2, 0]", ("", 2)),
        ("weight[1]", ("", None)),
        ("bias", ("", None)),
        ("encoder.layers.0.weight", ("encoder.layers.0", None)),
        ("x", None),
        ("weights[0]", None),
        ("x.weight_decay", None),
    ],
)
def test_parameter_key(label, key):
    assert parameter_key(label) == key


# -- a big graph -----------------------------------------------------------------------------------


@needs_dot
def test_moons_sized_mlp_renders_to_svg():
    loss = hand_built_mlp(sizes=(2, 16, 16, 1))
    n_values = len(autograd.topological_order(loss))
    assert n_values > 400
    graph = draw_dot(loss, max_nodes=None, cluster_by="label")
    svg = graph.pipe(format="svg", encoding="utf-8")
    assert svg.count('class="node"') > 400
    assert "layers.1.weight[15, 15]" in svg_texts(svg)


# -- helpers, errors and the Jupyter display ------------------------------------------------------


@pytest.mark.parametrize(
    "x, text",
    [(1.0, "1.0"), (-6.0, "-6.0"), (0.70710678, "0.7071"), (1.6993e-17, "1.699e-17"),
     (float("inf"), "inf"), (float("nan"), "nan"), (123456.0, "1.235e+05")],
)  # fmt: skip
def test_format_number(x, text):
    assert format_number(x) == text


def test_record_escape():
    assert record_escape('a{b}|<c>"\\') == 'a\\{b\\}\\|\\<c\\>\\"\\\\'
    assert record_escape("a\nb") == "a\\nb"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rankdir": "XY"}, "rankdir must be one of"),
        ({"format": "bmpx"}, "unknown format 'bmpx'"),
        ({"max_nodes": 0}, "max_nodes must be a positive int"),
        ({"cluster_by": "layer"}, "cluster_by must be None or 'label'"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        draw_dot(Value(1.0) * 2.0, **kwargs)


def test_bad_root_and_highlight_raise_type_error():
    with pytest.raises(TypeError, match="root must be a Value"):
        draw_dot(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="highlight must contain Values"):
        draw_dot(Value(1.0), highlight=[1.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty"):
        draw_dot([])


def test_missing_graphviz_package_says_which_extra_to_install(monkeypatch):
    from autograd import draw

    draw._graph_class.cache_clear()
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    try:
        with pytest.raises(ImportError, match=re.escape('pip install "chainrule[viz]"')):
            draw_dot(Value(1.0))
    finally:
        draw._graph_class.cache_clear()


def test_import_autograd_does_not_import_graphviz_or_ipywidgets():
    code = (
        "import sys, autograd; "
        "assert 'graphviz' not in sys.modules and 'ipywidgets' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_dot
def test_jupyter_display_is_svg():
    bundle = draw_dot(build_expression())._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert "L" in svg_texts(bundle["image/svg+xml"])


def test_jupyter_display_without_dot_falls_back_to_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` to be found
    graph = draw_dot(build_expression())
    bundle = graph._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    hint = bundle["text/plain"]
    assert "apt-get install graphviz" in hint
    assert "brew install graphviz" in hint
    assert "conda install graphviz" in hint
    assert graph._repr_svg_() is None
    assert graph.source.startswith('digraph "computation graph"')
