"""What a learner types while following micrograd's lecture runs here unchanged.

Each test uses the lecture's idioms (written for this test from the lecture's description):
`Value(x, label=...)`, `_prev`, `_op`, `o.grad = 1.0` and `node._backward()` by hand, a
`draw_dot` of its own that reads `_prev` and `_op`, and the small MLP training loop, and
checks the numbers the lecture shows.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from autograd import Value


def _expression():
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
    return a, b, c, d, e, f, L


def test_the_first_expression_its_graph_views_and_backprop_by_hand():
    a, b, c, d, e, f, L = _expression()
    assert L.data == -8.0
    assert d._prev == {e, c} and d._op == "+" and e._op == "*" and a._op == "" and a._prev == set()
    # Backprop by hand, node by node: each _backward adds its grad times the local derivative.
    L.grad = 1.0
    L._backward()
    assert (d.grad, f.grad) == (-2.0, 4.0)
    d._backward()
    assert (e.grad, c.grad) == (-2.0, -2.0)
    e._backward()
    assert (a.grad, b.grad) == (6.0, -4.0)
    # One step of "gradient descent" on the leaves makes L less negative: -7.286496.
    for leaf in (a, b, c, f):
        leaf.data += 0.01 * leaf.grad
    e = a * b
    d = e + c
    L = d * f
    assert L.data == pytest.approx(-7.286496, abs=1e-12)


def _trace(root):
    # The lecture's own way to walk the graph: through _prev, recursively.
    nodes, edges = set(), set()

    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)

    build(root)
    return nodes, edges


def test_the_lectures_own_draw_dot_reads_prev_and_op():
    graphviz = pytest.importorskip("graphviz")
    *_, L = _expression()
    L.backward()
    nodes, edges = _trace(L)
    dot = graphviz.Digraph(format="svg", graph_attr={"rankdir": "LR"})
    for n in nodes:
        uid = str(id(n))
        dot.node(name=uid, label="{ %s | data %.4f | grad %.4f }" % (n.label, n.data, n.grad),  # noqa: UP031
                 shape="record")  # fmt: skip
        if n._op:
            dot.node(name=uid + n._op, label=n._op)
            dot.edge(uid + n._op, uid)
    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    assert (len(nodes), len(edges)) == (7, 6)
    for text in ("a | data 2.0000 | grad 6.0000", "b | data -3.0000 | grad -4.0000",
                 "L | data -8.0000 | grad 1.0000", 'label="*"', 'label="+"'):  # fmt: skip
        assert text in dot.source


def _neuron():
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x2w2 = x2 * w2
    x1w1x2w2 = x1w1 + x2w2
    n = x1w1x2w2 + b
    return (x1, x2, w1, w2, b), (x1w1, x2w2, x1w1x2w2, n)


@pytest.mark.parametrize("tanh_by", ["method", "exp"])
def test_the_neuron_by_hand_and_by_backward(tanh_by):
    leaves, (x1w1, x2w2, x1w1x2w2, n) = _neuron()
    x1, x2, w1, w2, b = leaves
    if tanh_by == "method":
        o = n.tanh()
    else:  # the lecture's second version: tanh written out with exp, / and -
        e = (2 * n).exp()
        o = (e - 1) / (e + 1)
    o.label = "o"
    assert o.data == pytest.approx(0.7071067811865476, rel=1e-12)
    o.backward()
    grads = [v.grad for v in (x1, w1, x2, w2, n)]
    assert grads == pytest.approx([-1.5, 1.0, 0.5, 0.0, 0.5], rel=1e-12, abs=1e-12)
    if tanh_by == "method":  # and by hand, in the lecture's order
        for v in (*leaves, x1w1, x2w2, x1w1x2w2, n, o):
            v.grad = 0.0
        o.grad = 1.0
        for node in (o, n, b, x1w1x2w2, x2w2, x1w1):
            node._backward()
        assert [v.grad for v in (x1, w1, x2, w2, n)] == grads


def test_a_node_used_twice_accumulates():
    a = Value(3.0, label="a")
    b = a + a
    b.backward()
    assert a.grad == 2.0
    d, e = Value(-2.0), Value(3.0)
    f = (d * e) * (d + e)
    f.backward()
    assert (d.grad, e.grad) == (-3.0, -8.0)  # e (d + e) + d e, d (d + e) + d e
    assert (Value(2.0) + 1).data == 3.0 and (2 * Value(2.0)).data == 4.0
    assert (Value(2.0) / Value(4.0)).data == 0.5 and (Value(2.0) - 1).data == 1.0
    assert (Value(2.0) ** 3).data == 8.0 and Value(1.0).exp().data == math.e


class Neuron:
    def __init__(self, nin):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(random.uniform(-1, 1))

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh()

    def parameters(self):
        return [*self.w, self.b]


class Layer:
    def __init__(self, nin, nout):
        self.neurons = [Neuron(nin) for _ in range(nout)]

    def __call__(self, x):
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    def __init__(self, nin, nouts):
        sizes = [nin, *nouts]
        self.layers = [Layer(sizes[i], sizes[i + 1]) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def test_the_mlp_training_loop_drives_the_loss_down():
    random.seed(1337)
    model = MLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    assert len(model.parameters()) == 41
    losses = []
    for _ in range(50):
        ypred = [model(x) for x in xs]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(ys, ypred))
        for p in model.parameters():
            p.grad = 0.0
        loss.backward()
        # Check one gradient against a central difference, as the lecture's reader might.
        if not losses:
            p = model.parameters()[0]
            h, saved = 1e-6, p.data
            p.data = saved + h
            up = sum((model(x) - y) ** 2 for x, y in zip(xs, ys)).data
            p.data = saved - h
            down = sum((model(x) - y) ** 2 for x, y in zip(xs, ys)).data
            p.data = saved
            assert p.grad == pytest.approx((up - down) / (2 * h), rel=1e-6)
        for p in model.parameters():
            p.data += -0.1 * p.grad
        losses.append(loss.data)
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert losses[-1] < 0.05 < losses[0]
    predictions = [model(x).data for x in xs]
    assert [math.copysign(1.0, p) for p in predictions] == ys
    print(f"{loss:.4f}")  # formats data
