"""The workloads written once for any micrograd-like engine.

An engine is described by a `GraphEngine`: how to make a leaf, the four transcendental
functions (micrograd 0.1.0 lacks them, see `micrograd_engine.py`), and how to walk a node's
children (to count nodes, outside the timed region). Everything else is operator overloads
and `.relu()`, `.backward()`, `.data`, `.grad`, which both engines have.

Each workload returns a `Run`: seconds per phase, the results (values and gradients as
floats) and the graph's roots and input leaves, so the worker can count the nodes built and
time freeing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from benchmarks import data


@dataclass
class GraphEngine:
    """What one engine supplies to the generic workloads."""

    name: str
    leaf: Callable[[float], Any]
    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    tanh: Callable[[Any], Any]
    sigmoid: Callable[[Any], Any]
    children: Callable[[Any], Iterable[Any]]
    #: micrograd's recursive topological sort needs a raised limit for deep graphs.
    raise_recursion_limit: bool = False


@dataclass
class Run:
    """One timed run of a workload on one engine."""

    phases: dict[str, float]
    outputs: dict[str, Any]
    roots: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    #: how many graphs like `roots` the run built (W3 with 10 steps builds 10).
    graphs: int = 1
    #: the node count, when the engine knows it without a graph (the float floor's op count).
    nodes: int | None = None


def count_nodes(engine: GraphEngine, roots: list[Any], inputs: list[Any]) -> int:
    """Nodes reachable from `roots`, not counting the given input leaves.

    Constants an engine boxes into Values (micrograd's `Value(1.0001)`) are counted: they are
    allocated per operation like any node. Iterative, so deep graphs need no recursion.
    """
    seen = {id(v) for v in inputs}
    count = 0
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        count += 1
        stack.extend(engine.children(node))
    return count


# -----------------------------------------------------------------------------------------
# W1 and the long chain
# -----------------------------------------------------------------------------------------


def chain(engine: GraphEngine, n: int) -> Run:
    """W1: y = y * 1.0001 + 0.5, n times from one leaf, then backward."""
    x = engine.leaf(data.CHAIN_START)
    t0 = perf_counter()
    y = x
    for _ in range(n):
        y = y * data.CHAIN_FACTOR + data.CHAIN_OFFSET
    t1 = perf_counter()
    y.backward()
    t2 = perf_counter()
    return Run(
        {"build": t1 - t0, "backward": t2 - t1},
        {"value": float(y.data), "grad": float(x.grad)},
        [y],
        [x],
    )


# -----------------------------------------------------------------------------------------
# W2 (and W4's graph)
# -----------------------------------------------------------------------------------------


def pairwise_sum(items: list[Any]) -> Any:
    """Sum by a balanced binary tree of `+`: level by level, an odd last item carried up."""
    level = items
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def wide_leaves(engine: GraphEngine, n: int) -> tuple[list[Any], list[Any]]:
    """W2's input leaves a_i, b_i."""
    a, b = data.vectors(n)
    return [engine.leaf(v) for v in a], [engine.leaf(v) for v in b]


def wide_build(a: list[Any], b: list[Any]) -> Any:
    """W2's graph: the pairwise sum of a_i * b_i."""
    return pairwise_sum([x * y for x, y in zip(a, b)])


def wide_outputs(total: Any, a: list[Any], b: list[Any]) -> dict[str, Any]:
    """W2's results: the sum and every leaf's gradient."""
    return {
        "value": float(total.data),
        "grad_a": [float(v.grad) for v in a],
        "grad_b": [float(v.grad) for v in b],
    }


def wide(engine: GraphEngine, n: int) -> Run:
    """W2: sum of n products a_i * b_i as a pairwise tree, then backward."""
    a, b = wide_leaves(engine, n)
    t0 = perf_counter()
    total = wide_build(a, b)
    t1 = perf_counter()
    total.backward()
    t2 = perf_counter()
    return Run({"build": t1 - t0, "backward": t2 - t1}, wide_outputs(total, a, b), [total], a + b)


# -----------------------------------------------------------------------------------------
# W3: micrograd's demo training step, from generic `+ * relu`
# -----------------------------------------------------------------------------------------


def mlp_forward(layers: list[tuple[list[list[Any]], list[Any]]], x: list[Any]) -> Any:
    """The MLP's score for one point: each neuron b + w_0 x_0 + w_1 x_1 + ... (in this order,
    as micrograd's `Neuron` sums), ReLU on every layer but the last."""
    for index, (weight, bias) in enumerate(layers):
        last = index == len(layers) - 1
        out = []
        for row, b in zip(weight, bias):
            act = b
            for w, xi in zip(row, x):
                act = act + w * xi
            out.append(act if last else act.relu())
        x = out
    return x[0]


def hinge_l2_loss(scores: list[Any], ys: list[float], params: list[Any]) -> Any:
    """micrograd's demo loss: mean(relu(1 - y * score)) + 1e-4 * sum(p * p), with Python's
    built-in `sum` (a chain of `+`), exactly as the demo notebook writes it."""
    losses = [(1 - y * s).relu() for y, s in zip(ys, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = data.L2 * sum(p * p for p in params)
    return data_loss + reg_loss


def mlp(engine: GraphEngine, points: int, steps: int) -> Run:
    """W3: `steps` full-batch SGD steps of MLP(2, [16, 16, 1]) on `points` moons points.

    Phases, summed over steps: forward (scores and loss), backward (zero_grad, backward),
    step (the SGD update p -= lr * p.grad with micrograd's schedule).
    """
    xs, ys = data.moons(points)
    layers = [
        ([[engine.leaf(w) for w in row] for row in weight], [engine.leaf(b) for b in bias])
        for weight, bias in data.mlp_weights()
    ]
    params = [p for weight, bias in layers for row, b in zip(weight, bias) for p in (*row, b)]
    phases = {"forward": 0.0, "backward": 0.0, "step": 0.0}
    losses: list[float] = []
    first_grads: list[float] = []
    loss = None
    for k in range(steps):
        t0 = perf_counter()
        scores = [mlp_forward(layers, x) for x in xs]
        loss = hinge_l2_loss(scores, ys, params)
        t1 = perf_counter()
        for p in params:
            p.grad = 0.0
        loss.backward()
        t2 = perf_counter()
        lr = data.learning_rate(k)
        for p in params:
            p.data -= lr * p.grad
        t3 = perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["step"] += t3 - t2
        losses.append(float(loss.data))
        if k == 0:
            first_grads = [float(p.grad) for p in params]
    outputs = {"loss": losses, "grads": first_grads, "params": [float(p.data) for p in params]}
    return Run(phases, outputs, [loss], params, graphs=steps)


# -----------------------------------------------------------------------------------------
# W5: transcendental functions
# -----------------------------------------------------------------------------------------


def transcendental(engine: GraphEngine, n: int) -> Run:
    """W5: sum(log(exp(tanh(x)) + sigmoid(x)**2 + 1)) over n leaves, built-in `sum`."""
    xs = [engine.leaf(v) for v in data.transcendental_inputs(n)]
    exp, log, tanh, sigmoid = engine.exp, engine.log, engine.tanh, engine.sigmoid
    t0 = perf_counter()
    total = sum(log(exp(tanh(x)) + sigmoid(x) ** 2 + 1) for x in xs)
    t1 = perf_counter()
    total.backward()
    t2 = perf_counter()
    return Run(
        {"build": t1 - t0, "backward": t2 - t1},
        {"value": float(total.data), "grad": [float(x.grad) for x in xs]},
        [total],
        xs,
    )
