"""The pure-Python floor: each workload's arithmetic on plain floats, no graph at all.

Forward is the same sequence of float operations the engines perform; backward is reverse
mode written out by hand for each workload (what a person would code without an engine).
It bounds what any object-per-node engine in pure Python can reach, and its results are the
reference the engines' values and gradients are checked against (see `run.py`).

"Nodes" for the floor are the operations the workload applies (an engine's graph nodes,
without boxed constants), so its nodes per second compare with the engines'.
"""

from __future__ import annotations

import itertools
import math
from time import perf_counter

from benchmarks import data
from benchmarks.engines.graph import Run

# -----------------------------------------------------------------------------------------
# W1 and the long chain
# -----------------------------------------------------------------------------------------


def chain(n: int) -> Run:
    """y = y * r + c, n times; dy/dx = r**n accumulated step by step in reverse."""
    r, c = data.CHAIN_FACTOR, data.CHAIN_OFFSET
    t0 = perf_counter()
    y = data.CHAIN_START
    for _ in range(n):
        y = y * r + c
    t1 = perf_counter()
    g = 1.0
    for _ in range(n):
        g = g * r  # through `+ c` the local derivative is 1; through `* r` it is r
    t2 = perf_counter()
    return Run({"build": t1 - t0, "backward": t2 - t1}, {"value": y, "grad": g}, nodes=2 * n)


# -----------------------------------------------------------------------------------------
# W2 (and W4)
# -----------------------------------------------------------------------------------------


def wide_forward(a: list[float], b: list[float]) -> list[list[float]]:
    """The products and every level of the pairwise sum (kept: backward needs the shape)."""
    levels = [[x * y for x, y in zip(a, b)]]
    level = levels[0]
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        levels.append(paired)
        level = paired
    return levels


def wide_backward(
    levels: list[list[float]], a: list[float], b: list[float]
) -> tuple[list[float], list[float]]:
    """Gradients of the pairwise sum: each `+` hands its gradient to both halves."""
    g = [1.0]
    for level in reversed(levels[:-1]):
        # Item i of a level feeds item i // 2 of the level above (a carried odd item too).
        g = [g[i >> 1] for i in range(len(level))]
    return [gi * y for gi, y in zip(g, b)], [gi * x for gi, x in zip(g, a)]


def wide(n: int) -> Run:
    """W2 on floats."""
    a, b = data.vectors(n)
    t0 = perf_counter()
    levels = wide_forward(a, b)
    t1 = perf_counter()
    grad_a, grad_b = wide_backward(levels, a, b)
    t2 = perf_counter()
    outputs = {"value": levels[-1][0], "grad_a": grad_a, "grad_b": grad_b}
    return Run({"build": t1 - t0, "backward": t2 - t1}, outputs, nodes=2 * n - 1)


# -----------------------------------------------------------------------------------------
# W3 and W6
# -----------------------------------------------------------------------------------------

Layers = list[tuple[list[list[float]], list[float]]]


Cache = list[tuple[list[list[float]], list[list[float]]]]


def _mlp_forward(
    layers: Layers, xs: list[list[float]], ys: list[float]
) -> tuple[float, Cache, list[float]]:
    """micrograd's demo loss on floats; also each point's activations and margin for backward."""
    cache: Cache = []
    scores = []
    last_index = len(layers) - 1
    for x in xs:
        acts = [x]
        pres = []
        h = x
        for index, (weight, bias) in enumerate(layers):
            z = []
            for row, b in zip(weight, bias):
                act = b
                for w, xi in zip(row, h):
                    act = act + w * xi
                z.append(act)
            pres.append(z)
            h = z if index == last_index else [v if v > 0.0 else 0.0 for v in z]
            acts.append(h)
        scores.append(h[0])
        cache.append((acts, pres))
    margins = [1 - y * s for y, s in zip(ys, scores)]
    losses = [m if m > 0.0 else 0.0 for m in margins]
    data_loss = sum(losses) * (1.0 / len(losses))
    loss = data_loss + data.L2 * sum(p * p for p in data.flatten(layers))
    return loss, cache, margins


def _mlp_backward(layers: Layers, cache: Cache, margins: list[float], ys: list[float]) -> Layers:
    """d(loss)/d(parameter) by reverse mode written out, nested like `layers`."""
    scale = 1.0 / len(margins)
    last_index = len(layers) - 1
    grads = [([[0.0] * len(row) for row in weight], [0.0] * len(bias)) for weight, bias in layers]
    for (acts, pres), m, y in zip(cache, margins, ys):
        if not m > 0.0:
            continue  # relu'(m) = 0: this point adds nothing
        dh = [-scale * y]  # d(loss)/d(score) = d/ds of scale * (1 - y*s)
        for index in range(last_index, -1, -1):
            weight, _ = layers[index]
            gw, gb = grads[index]
            z, h_in = pres[index], acts[index]
            dz = dh if index == last_index else [d if zj > 0.0 else 0.0 for d, zj in zip(dh, z)]
            din = [0.0] * len(h_in)
            for j, (row, dzj) in enumerate(zip(weight, dz)):
                if dzj == 0.0:
                    continue
                gb[j] += dzj
                gw_row = gw[j]
                for i, w in enumerate(row):
                    gw_row[i] += dzj * h_in[i]
                    din[i] += dzj * w
            dh = din
    # The L2 term: d/dp of L2 * p * p = 2 * L2 * p.
    for (weight, bias), (gw, gb) in zip(layers, grads):
        for row, gw_row in zip(weight, gw):
            for i, w in enumerate(row):
                gw_row[i] += 2.0 * data.L2 * w
        for j, b in enumerate(bias):
            gb[j] += 2.0 * data.L2 * b
    return grads


def mlp_ops(points: int) -> int:
    """Operations in one step of W3's loss: what an engine builds as nodes."""
    sizes = data.MLP_SIZES
    per_point = 3  # y * score, 1 - ..., relu
    for index, (nin, nout) in enumerate(itertools.pairwise(sizes)):
        relu = 0 if index == len(sizes) - 2 else 1
        per_point += nout * (2 * nin + relu)
    n_params = len(data.flatten(data.mlp_weights()))
    # sum of losses, * (1/n), p * p and their sum, * L2, data + reg
    return points * per_point + points + 1 + 2 * n_params + 1 + 1


def mlp(points: int, steps: int) -> Run:
    """W3 (and W6) on floats: forward, hand-written backward, SGD step."""
    xs, ys = data.moons(points)
    layers = data.mlp_weights()
    phases = {"forward": 0.0, "backward": 0.0, "step": 0.0}
    losses: list[float] = []
    first_grads: list[float] = []
    for k in range(steps):
        t0 = perf_counter()
        loss, cache, margins = _mlp_forward(layers, xs, ys)
        t1 = perf_counter()
        grads = _mlp_backward(layers, cache, margins, ys)
        t2 = perf_counter()
        lr = data.learning_rate(k)
        for (weight, bias), (gw, gb) in zip(layers, grads):
            for row, gw_row in zip(weight, gw):
                for i, g in enumerate(gw_row):
                    row[i] -= lr * g
            for j, g in enumerate(gb):
                bias[j] -= lr * g
        t3 = perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["step"] += t3 - t2
        losses.append(loss)
        if k == 0:
            first_grads = data.flatten(grads)
    outputs = {"loss": losses, "grads": first_grads, "params": data.flatten(layers)}
    return Run(phases, outputs, nodes=mlp_ops(points) * steps)


# -----------------------------------------------------------------------------------------
# W5
# -----------------------------------------------------------------------------------------


def transcendental(n: int) -> Run:
    """W5 on floats: the terms, then d/dx by the chain rule written out."""
    xs = data.transcendental_inputs(n)
    exp, log, tanh = math.exp, math.log, math.tanh
    t0 = perf_counter()
    cache = []
    total = 0.0
    for x in xs:
        t = tanh(x)
        e = exp(t)
        s = 1.0 / (1.0 + exp(-x))
        u = e + s**2 + 1
        total = total + log(u)
        cache.append((t, e, s, u))
    t1 = perf_counter()
    grads = []
    for t, e, s, u in cache:
        gu = 1.0 / u  # d log(u)
        grads.append(gu * e * (1.0 - t * t) + gu * 2.0 * s * s * (1.0 - s))
    t2 = perf_counter()
    return Run(
        {"build": t1 - t0, "backward": t2 - t1}, {"value": total, "grad": grads}, nodes=8 * n
    )
