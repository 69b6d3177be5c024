"""BackwardStepper and backward_steps: stepping gives exactly backward()'s gradients."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import math
import random
import re
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd
from autograd import BackwardStepper, Value, backward_steps, topological_order

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def small_graph():
    """L = (a*b + c) * f, micrograd's first example; returns L and the leaves."""
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return L, (a, b, c, f)


def random_graph(seed: int):
    """A random graph with shared sub-expressions and an operand used twice."""
    rng = random.Random(seed)
    nodes = [Value(rng.uniform(0.5, 2.0), label=f"x{i}") for i in range(4)]
    for _ in range(25):
        a, b = rng.choice(nodes), rng.choice(nodes)
        op = rng.choice(["add", "mul", "tanh", "sub", "square"])
        if op == "add":
            nodes.append(a + b)
        elif op == "mul":
            nodes.append(a * b)
        elif op == "tanh":
            nodes.append(a.tanh())
        elif op == "sub":
            nodes.append(a - 0.5 * b)
        else:
            nodes.append(a * a)
    return autograd.sum(nodes[-6:])


def grads(root: Value) -> list[float]:
    return [v.grad for v in topological_order(root)]


@pytest.mark.parametrize("seed", range(5))
def test_running_to_the_end_equals_backward(seed):
    expected_root = random_graph(seed)
    expected_root.backward()
    root = random_graph(seed)
    stepper = BackwardStepper(root)
    stepper.run()
    assert stepper.done
    assert grads(root) == grads(expected_root)  # exactly, not approximately


def test_backward_steps_to_the_end_equals_backward():
    expected_root = random_graph(7)
    expected_root.backward()
    root = random_graph(7)
    steps = list(backward_steps(root))
    assert len(steps) == len(topological_order(root))
    assert grads(root) == grads(expected_root)


def test_each_step_hands_on_upstream_times_local():
    L, (a, b, c, f) = small_graph()
    steps = list(backward_steps(L))
    # Reverse topological order: the root first, every node after all of its consumers.
    assert steps[0].node is L
    position = {s.node: k for k, s in enumerate(steps)}
    for s in steps:
        assert all(position[child] > position[s.node] for child in s.inputs)
    by_label = {s.node.label: s for s in steps}
    first = steps[0]
    assert first.upstream == 1.0
    assert first.local_grads == (-2.0, 4.0)  # dL/dd = f, dL/df = d
    assert first.contributions == (-2.0, 4.0)
    e_step = by_label["e"]
    assert e_step.upstream == -2.0
    assert e_step.contributions == (-2.0 * -3.0, -2.0 * 2.0)
    assert (a.grad, b.grad, c.grad, f.grad) == (6.0, -4.0, -2.0, 4.0)


def test_backward_step_text_names_unlabelled_nodes_deterministically():
    x = Value(3.0)
    y = x * x
    texts = [str(s) for s in backward_steps(y)]
    assert texts[0] == (
        "step 0: v1 = v0 * v0, dL/dv1 = 1.0\n"
        "  dL/dv0 += dL/dv1 * ∂v1/∂v0 = 1.0 * 3.0 = 3.0\n"
        "  dL/dv0 += dL/dv1 * ∂v1/∂v0 = 1.0 * 3.0 = 3.0"
    )
    assert texts[1] == "step 1: v0 is a leaf; its grad is 6.0"


def test_back_restores_the_grads_exactly():
    root = random_graph(3)
    stepper = BackwardStepper(root)
    snapshots = [grads(root)]
    while not stepper.done:
        stepper.step()
        snapshots.append(grads(root))
    for position in range(len(stepper) - 1, -1, -1):
        stepper.back()
        assert stepper.position == position
        assert grads(root) == snapshots[position]
    stepper.goto(5)
    assert grads(root) == snapshots[5]
    stepper.reset()
    assert stepper.position == 0 and stepper.current is None
    assert grads(root) == snapshots[0] == [0.0] * len(snapshots[0])


def test_zero_grad_false_accumulates_like_backward():
    expected, _ = small_graph()
    expected.backward()
    expected.backward()  # leaves accumulate twice
    root, _ = small_graph()
    root.backward()
    stepper = BackwardStepper(root, zero_grad=False)
    stepper.run()
    assert grads(root) == grads(expected)
    stepper.reset()  # back to the grads it started from: one pass
    once, _ = small_graph()
    once.backward()
    assert [v.grad for v in topological_order(root) if v.is_leaf] == [
        v.grad for v in topological_order(once) if v.is_leaf
    ]


def test_gradient_argument_scales_like_backward():
    expected, _ = small_graph()
    expected.backward(gradient=0.5)
    root, _ = small_graph()
    BackwardStepper(root, gradient=0.5).run()
    assert grads(root) == grads(expected)


def test_gradient_argument_takes_numpy_reals_and_rejects_the_rest():
    np = pytest.importorskip("numpy")
    root, _ = small_graph()
    assert BackwardStepper(root, gradient=np.int64(2)).gradient == 2.0
    with pytest.raises(TypeError, match="gradient must be a real number, got str"):
        BackwardStepper(root, gradient="2")  # type: ignore[arg-type]


def test_explain_a_multiplication_names_both_factors():
    a = Value(4.0, label="a")
    b = Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = c * 2.0
    L.label = "L"
    stepper = BackwardStepper(L)
    assert stepper.explain() == "step 0 of 4: nothing done yet. The first step seeds dL/dL = 1.0."
    stepper.step()
    stepper.step()
    text = stepper.explain()
    assert text.splitlines()[0] == "step 2 of 4: c = a * b, and dL/dc = 2.0 is complete"
    assert "dL/da += dL/dc * ∂c/∂a = 2.0 * -3.0 = -6.0    (∂c/∂a = b)" in text
    assert "dL/db += dL/dc * ∂c/∂b = 2.0 * 4.0 = 8.0    (∂c/∂b = a)" in text
    stepper.step()
    assert stepper.explain() == "step 3 of 4: b is a leaf: dL/db = 8.0 is final, nothing to hand on"
    stepper.step()
    assert "a is a leaf: dL/da = -6.0 is final" in stepper.explain()


def test_explain_first_step_mentions_the_seed_and_constants():
    x = Value(1.0, label="x")
    y = (x * 2.0).tanh()
    y.label = "y"
    stepper = BackwardStepper(y)
    stepper.step()
    assert "y = tanh(v1), and dy/dy = 1.0 (the seed" in stepper.explain()
    assert "y = tanh(v1)" in stepper.explain()
    assert "(∂y/∂v1 = 1 - tanh(v1)**2)" in stepper.explain()
    stepper.step()
    assert "v1 = x * 2.0" in stepper.explain()
    assert "(∂v1/∂x = 2.0)" in stepper.explain()


def test_at_the_root_the_local_factor_is_not_written_as_a_gradient():
    # L = d * f: dL/dd = dL/dL * ∂L/∂d. Writing the local factor as "dL/dd" too would
    # make the line circular (dL/dd += dL/dL * dL/dd).
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    assert "seeds dL/dL = 1.0" in stepper.explain()
    stepper.step()
    lines = stepper.explain().splitlines()
    assert lines[1] == "  dL/dd += dL/dL * ∂L/∂d = 1.0 * -2.0 = -2.0    (∂L/∂d = f)"
    assert lines[2] == "  dL/df += dL/dL * ∂L/∂f = 1.0 * 4.0 = 4.0    (∂L/∂f = d)"
    engine_text = str(next(backward_steps(L)))
    assert "  dL/dd += dL/dL * ∂L/∂d = 1.0 * -2.0 = -2.0" in engine_text
    # In every step, the factor after "*" is a partial derivative, never a gradient dL/d.
    stepper.reset()
    while not stepper.done:
        stepper.step()
        for line in stepper.explain().splitlines()[1:]:
            assert re.fullmatch(r"  dL/d\w+ \+= dL/d\w+ \* ∂\w+/∂\w+ = .*", line), line


def test_gradients_are_named_after_a_short_root_label():
    x = Value(1.0, label="x")
    for label, name in [("loss", "loss"), ("", "L"), ("tanh(x * 2.0)", "L")]:
        y = (x * 2.0).tanh()
        y.label = label
        stepper = BackwardStepper(y)
        stepper.step()
        stepper.step()
        assert f"d{name}/dx += d{name}/dv1 * ∂v1/∂x = " in stepper.explain()


def test_stepping_errors_say_what_to_do():
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    with pytest.raises(RuntimeError, match="already at the start"):
        stepper.back()
    stepper.run()
    with pytest.raises(RuntimeError, match=r"finished \(7 steps\); use back\(\) or reset\(\)"):
        stepper.step()
    with pytest.raises(ValueError, match=r"position must be in 0\.\.7, got 8"):
        stepper.goto(8)
    with pytest.raises(TypeError, match="root must be a Value"):
        BackwardStepper(1.0)  # type: ignore[arg-type]


def test_picture_marks_current_done_and_pending():
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    e = next(v for v in stepper.order if v.label == "e")
    position = stepper.order.index(e) + 1
    stepper.goto(position)  # e's step has just run
    states = [stepper.state(v) for v in stepper.order]
    assert states == ["done"] * (position - 1) + ["current"] + ["pending"] * (7 - position)
    assert {stepper.state(v) for v in e.inputs} == {"pending"}  # a and b come after e
    source = stepper.draw().source
    e_line = next(s for s in source.splitlines() if 'label="{e|' in s)
    assert "fillcolor=gold" in e_line
    d_line = next(s for s in source.splitlines() if 'label="{d|' in s)
    assert "grad -2.0}" in d_line and "gray" not in d_line
    a_line = next(s for s in source.splitlines() if 'label="{a|' in s)
    assert "grad so far 6.0" in a_line and "fillcolor=gray92" in a_line
    assert f"step {position} of 7: e = a * b" in source  # the title


@needs_dot
def test_jupyter_display_shows_the_explanation_and_the_svg():
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    stepper.step()
    bundle = stepper._repr_mimebundle_()
    assert "step 1 of 7" in bundle["text/plain"]
    assert "step 1 of 7" in bundle["text/html"]
    svg = picture_of(bundle["text/html"])
    assert svg.startswith("<svg") and "<?xml" not in svg


def picture_of(fragment: str) -> str:
    """The SVG inside a static fragment's <img> (a data: URI, which sanitisers keep)."""
    found = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', fragment)
    assert found, fragment[:200]
    return base64.b64decode(found.group(1)).decode("utf-8")


def test_jupyter_display_without_dot_shows_the_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    html = stepper._repr_mimebundle_()["text/html"]
    assert "apt-get install graphviz" in html and "<svg" not in html


def test_widget_and_stepper_stay_in_step_both_ways():
    pytest.importorskip("anywidget")
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    w = stepper.widget()
    other = stepper.widget()
    assert w.position == 0 and other.position == 0  # starts at step 0
    w.position = 3  # the browser moved: the stepper and every other widget follow
    assert stepper.position == 3 and other.position == 3
    assert "step 3 of 7" in stepper.explain()
    stepper.step()  # Python moved: every widget follows
    assert w.position == 4 and other.position == 4
    stepper.back()
    stepper.back()
    assert w.position == 2 and other.position == 2
    stepper.reset()
    assert w.position == 0 and grads(L) == [0.0] * 7
    w.position = 7
    expected, _ = small_graph()
    expected.backward()
    assert grads(L) == grads(expected)


def test_widget_opens_at_the_steppers_position_and_checks_its_interval():
    pytest.importorskip("anywidget")
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    stepper.goto(2)
    assert stepper.widget().position == 2
    with pytest.raises(ValueError, match="interval_ms must be a positive int, got 0"):
        stepper.widget(interval_ms=0)


def test_widget_without_anywidget_says_which_extra_to_install(monkeypatch):
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    monkeypatch.setitem(sys.modules, "anywidget", None)
    monkeypatch.setattr(autograd.stepper, "_WIDGET_CLASS", None)
    hint = 'needs anywidget: pip install "chainrule[notebooks]"'
    with pytest.raises(ImportError, match=re.escape(hint)):
        stepper.widget()


# -- property: on any graph, stepping is backward() ----------------------------------------------

SAFE_UNARY = ["tanh", "sin", "cos", "sigmoid", "softplus", "gelu"]


@st.composite
def graph_recipes(draw):
    """A recipe for a graph: leaf values, then ops on earlier nodes (reuse included)."""
    leaves = draw(st.lists(st.floats(-3, 3), min_size=1, max_size=4))
    steps = []
    for k in range(draw(st.integers(1, 15))):
        n = len(leaves) + k
        kind = draw(st.sampled_from(["unary", "add", "mul", "sub", "const"]))
        steps.append((kind, draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)),
                      draw(st.sampled_from(SAFE_UNARY))))  # fmt: skip
    return leaves, steps


def build(recipe):
    leaves, steps = recipe
    nodes = [Value(x, label=f"x{i}") for i, x in enumerate(leaves)]
    for kind, i, j, unary in steps:
        a, b = nodes[i], nodes[j]
        if kind == "unary":
            nodes.append(getattr(a, unary)())
        elif kind == "add":
            nodes.append(a + b)
        elif kind == "mul":
            nodes.append(a * b)
        elif kind == "sub":
            nodes.append(a - b)
        else:
            nodes.append(a * 0.5 + 1.0)
    return nodes[-1]


@settings(max_examples=60, deadline=None)
@given(recipe=graph_recipes(), data=st.data())
def test_property_stepping_equals_backward_and_back_is_exact(recipe, data):
    expected = build(recipe)
    expected.backward()
    root = build(recipe)
    stepper = BackwardStepper(root)
    middle = data.draw(st.integers(0, len(stepper)))
    stepper.goto(middle)
    at_middle = grads(root)
    stepper.run()
    assert grads(root) == grads(expected)
    stepper.goto(middle)
    assert grads(root) == at_middle


# -- the browser's record, the picture, the page --------------------------------------------


def payload_of(stepper):
    return stepper._payload()


def test_a_leaf_or_a_non_value_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match=r"x is a leaf .* no backward pass to step through"):
        BackwardStepper(Value(1.0, label="x"))
    with pytest.raises(TypeError, match="root must be a Value, got list"):
        BackwardStepper([Value(1.0)])  # type: ignore[arg-type]


def test_the_root_is_named_in_the_picture_as_the_text_names_it():
    x = Value(1.0, label="x")
    y = (x * 2.0).tanh()  # unlabelled: the text calls it L
    stepper = BackwardStepper(y)
    assert stepper.name(y) == "L" and "dL/dL" in stepper.explain()
    assert 'label="{L|' in stepper.draw().source
    y.label = "tanh(x * 2.0)"  # a formula is no name: L again, in both
    stepper = BackwardStepper(y)
    assert stepper.name(y) == "L" and 'label="{L|' in stepper.draw().source


def test_numbers_never_show_negative_zero():
    x = Value(0.0, label="x")
    y = x * -1.0  # dy/dx = -1, and y.data = -0.0
    z = y * 0.0
    z.label = "z"
    stepper = BackwardStepper(z)
    stepper.run()
    texts = [stepper._lines(p) for p in range(len(stepper) + 1)]
    flat = json.dumps(texts)
    assert "-0.0" not in flat and "-0" not in re.sub(r"-0\.\d*[1-9]", "", flat)
    assert "-0.0" not in json.dumps(payload_of(stepper)["values"])
    assert autograd.draw.format_number(-0.0) == "0.0"


def test_a_second_contribution_shows_the_running_sum():
    x = Value(3.0, label="x")
    y = x * x  # x gets two contributions in one step
    y.label = "y"
    stepper = BackwardStepper(y)
    stepper.step()
    lines = stepper.explain().splitlines()
    assert lines[1] == "  dy/dx += dy/dy * ∂y/∂x = 1.0 * 3.0 = 3.0    (∂y/∂x = x)"
    assert lines[2] == (
        "  dy/dx += dy/dy * ∂y/∂x = 1.0 * 3.0 = 3.0    (∂y/∂x = x)    running sum: 3.0 + 3.0 = 6.0"
    )
    # Across steps too: a = x + x*2 reaches x from two nodes.
    x = Value(1.5, label="x")
    t = x * 2.0
    t.label = "t"
    a = x + t
    a.label = "a"
    stepper = BackwardStepper(a)
    stepper.goto(2)  # a, then t (x already has 1.0 from a)
    assert stepper.explain().splitlines()[1].endswith("running sum: 1.0 + 2.0 = 3.0")


def test_the_record_holds_exactly_the_engines_gradients():
    for seed in range(3):
        root = random_graph(seed)
        stepper = BackwardStepper(root)
        payload = payload_of(stepper)
        stepper.run()
        # Replay the record as the browser does: plain assignments, no arithmetic.
        grads_ = [v["grad0"][1] for v in payload["values"]]
        for s in payload["steps"]:
            for i, g in s["sets"]:
                grads_[i] = g[1]
            for i, _, g, _ in s["edges"]:
                grads_[i] = g[1]
        assert grads_ == [repr(v.grad + 0.0) for v in topological_order(root)]
        assert len(payload["lines"]) == len(stepper) + 1
        assert payload["lines"][3] == stepper._lines(3)


def test_lines_give_short_and_full_precision_numbers():
    x = Value(1.0 / 3.0, label="x")
    y = x * 3.0
    y.label = "y"
    stepper = BackwardStepper(y)
    stepper.step()
    numbers = [seg for line in stepper._lines(1) for seg in line if isinstance(seg, list)]
    assert ["3.0", "3.0"] in numbers and ["1.0", "1.0"] in numbers
    x2 = Value(2.0, label="x")
    z = (x2 / 3.0).tanh()
    z.label = "z"
    stepper = BackwardStepper(z)
    stepper.step()
    local = stepper._lines(1)[1][3]
    want = 1.0 - math.tanh(2.0 / 3.0) ** 2  # 0.66036...
    assert local[0] == "0.6604"
    assert math.isclose(float(local[1]), want, rel_tol=1e-15) and len(local[1]) > 12


@needs_dot
def test_the_layout_is_made_once_with_ids_classes_and_room_for_every_grad():
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    svg = stepper._layout_svg()
    assert stepper._layout_svg() is svg  # laid out once
    ids = re.findall(r'<g id="([^"]+)" class="node done"', svg)
    ops = [f"op{i}" for i, v in enumerate(topological_order(L)) if v.op is not None]
    assert len(ops) == 3 and sorted(ids) == sorted([f"v{i}" for i in range(7)] + ops)
    assert re.findall(r'<g id="(e\d+_\d|o\d+)" class="edge"', svg)
    # Each grad field was laid out for its widest text (here the final one, "grad -4.0" for
    # b, which starts at 0.0), and the browser only changes the text.
    fields = re.findall(r">grad ([^<]*)<", html.unescape(svg))
    assert sorted(fields) == sorted(["6.0", "-4.0", "-2.0", "-2.0", "-2.0", "4.0", "1.0"])


@needs_dot
def test_operand_order_is_drawn_for_sub_div_and_pow():
    a, b = Value(3.0, label="a"), Value(2.0, label="b")
    for out in (a - b, a / b, a**b, a - 1.0):
        source = autograd.draw_dot(out).source
        assert 'label="1st"' in source and 'label="2nd"' in source, source
    source = autograd.draw_dot(a * b).source
    assert "1st" not in source  # order does not matter for *


@needs_dot
def test_the_static_picture_shows_the_step_without_css_or_script():
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    e = next(v for v in stepper.order if v.label == "e")
    stepper.goto(stepper.order.index(e) + 1)  # e's step
    html_ = stepper._static_html(uid="abc")
    assert 'class="chainrule-stepper-fallback" data-stepper="abc"' in html_
    assert f"step {stepper.position} of 7: e = a * b" in html_
    assert "<script" not in html_ and "<style" not in html_
    svg = picture_of(html_)
    assert "<script" not in svg and "<style" not in svg
    e_index = topological_order(L).index(next(v for v in stepper.order if v.label == "e"))
    group = re.search(rf'<g id="v{e_index}" class="node current">(.*?)</g>', svg, re.S)
    assert group and 'fill="gold"' in group.group(1) and "grad -2.0" in group.group(1)


@needs_dot
def test_save_html_writes_one_self_contained_page(tmp_path):
    L, _ = small_graph()
    path = BackwardStepper(L).save_html(tmp_path / "steps.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "chainrule-stepper" in page  # the picture and the module, inline
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    assert "import(" in page and 'from "' not in page
    assert [p.name for p in tmp_path.iterdir()] == ["steps.html"]  # no temporary file left


@needs_dot
def test_save_html_to_an_unwritable_path_is_one_clear_error_and_writes_nothing(tmp_path):
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    with pytest.raises(OSError, match=r"save_html: cannot write .*file\.txt/steps\.html"):
        stepper.save_html(not_a_dir / "steps.html")
    target = tmp_path / "a_directory"
    target.mkdir()
    with pytest.raises(OSError, match="save_html: cannot write"):
        stepper.save_html(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_directory", "file.txt"]
    assert list(target.iterdir()) == []
    # An existing page is replaced whole or not at all.
    good = tmp_path / "good.html"
    good.write_text("old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    import os as os_

    real = os_.replace
    try:
        os_.replace = fail  # type: ignore[assignment]
        with pytest.raises(OSError, match="No space left"):
            stepper.save_html(good)
    finally:
        os_.replace = real  # type: ignore[assignment]
    assert good.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_directory", "file.txt", "good.html"]


def test_a_graph_too_big_to_draw_whole_is_stepped_in_neighbourhood_view(monkeypatch):
    monkeypatch.setattr(autograd.stepper, "PICTURE_LIMIT", 5)
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    assert stepper.neighbourhood_only
    payload = payload_of(stepper)
    assert payload["svg"] is None and payload["values"][0]["consumers"]
    assert "more than 5: no whole picture" in stepper._static_html()
    monkeypatch.setattr(autograd.stepper, "BROWSER_LIMIT", 5)
    with pytest.raises(ValueError, match="7 values, more than the 5 the browser view takes"):
        stepper.widget()


def test_big_mlp_samples_record_every_step():
    pytest.importorskip("nn")
    from nn import MLP

    for sizes, expand in (([4, 4, 1], True), ([16, 16, 1], False)):
        model = MLP(2, sizes, seed=0, expand=expand)
        loss = (model([Value(0.5), Value(-1.5)]) - 1.0) ** 2
        stepper = BackwardStepper(loss)
        payload = payload_of(stepper)
        assert len(payload["steps"]) == len(stepper) == len(topological_order(loss))
        stepper.run()
        expected = (MLP(2, sizes, seed=0, expand=expand)([Value(0.5), Value(-1.5)]) - 1.0) ** 2
        expected.backward()
        assert grads(loss) == grads(expected)


def test_the_readme_states_the_picture_limit():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{autograd.stepper.PICTURE_LIMIT:,} values is shown as each step's neighbourhood" in (
        " ".join(readme.split())
    )


class _Handle:
    """Stands in for IPython's DisplayHandle: records what the static picture became."""

    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj.data)


@needs_dot
def test_the_widgets_static_picture_follows_the_stepper():
    pytest.importorskip("anywidget")
    L, _ = small_graph()
    stepper = BackwardStepper(L)
    w = stepper.widget()
    handle = _Handle()
    w._fallbacks = [handle]
    stepper.goto(3)  # no event loop running: redrawn at once
    assert len(handle.updates) == 1 and "step 3 of 7" in handle.updates[0]
    assert f'data-stepper="{w.uid}"' in handle.updates[0]

    async def play():
        for position in (4, 5, 6):
            w.position = position  # as the browser does while playing
        await asyncio.sleep(autograd.stepper.FALLBACK_DELAY_S + 0.3)

    asyncio.run(play())
    # Redrawn once, when the stepping stopped, at the step it stopped at.
    assert len(handle.updates) == 2 and "step 6 of 7" in handle.updates[1]


def test_explain_brackets_a_name_that_is_a_formula():
    # `chainrule step` labels each node with its sub-formula ("x + 1"); written bare,
    # "dL/dx + 1" and "x + 1 * y" would read as other formulas than the ones meant.
    from autograd.expression import parse_expression

    out, _ = parse_expression("(x + 1) * y", {"x": 2.0, "y": 3.0})
    stepper = BackwardStepper(out)
    stepper.step()
    stepper.step()
    text = stepper.explain()
    assert text.splitlines()[0].startswith("step 2 of 4: x + 1 = x + 1.0, and dL/d(x + 1) = 3.0")
    stepper.reset()
    stepper.step()
    first = stepper.explain()
    assert "L = (x + 1) * y" in first
    assert "dL/d(x + 1) += dL/dL * ∂L/∂(x + 1) = 1.0 * 3.0 = 3.0    (∂L/∂(x + 1) = y)" in first
    assert "(∂L/∂y = (x + 1))" in first
    # Parameter names are single names despite their brackets and spaces.
    assert BackwardStepper._bracketed("layers.1.weight[3, 0]") == "layers.1.weight[3, 0]"
    assert BackwardStepper._bracketed("-x") == "(-x)"
