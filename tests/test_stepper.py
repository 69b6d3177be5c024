"""BackwardStepper and backward_steps: stepping gives exactly backward()'s gradients."""

from __future__ import annotations

import random
import re
import shutil
import sys

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
    assert "<svg" in bundle["text/html"] and "step 1 of 7" in bundle["text/html"]
    assert "<?xml" not in bundle["text/html"]


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
