"""chainrule, this project: its `Value` through the generic workloads, and W6 through `nn`.

Everything is the public API: `autograd.Value`, its operators and methods, `.inputs` (a
node's input Values) to count nodes. Whatever engine is on the branch is what gets measured.
"""

from __future__ import annotations

import importlib
from time import perf_counter
from typing import Any

from benchmarks import data
from benchmarks.engines.graph import GraphEngine, Run


class Skipped(Exception):
    """A case this engine cannot run yet; the message says why."""


def engine() -> GraphEngine:
    """The adapter: every op is the engine's own primitive (one node each)."""
    from autograd import Value

    return GraphEngine(
        name="chainrule",
        leaf=Value,
        exp=lambda v: v.exp(),
        log=lambda v: v.log(),
        tanh=lambda v: v.tanh(),
        sigmoid=lambda v: v.sigmoid(),
        children=lambda v: v.inputs,
    )


def train_with_nn(points: int, steps: int) -> Run:
    """W6: `chainrule train`'s default run through the `nn` package.

    The only place the benchmarks use `nn`: `nn.MLP(2, [16, 16, 1])` loaded through
    `load_state_dict` (PyTorch names and shapes), `model(x)` -> one Value, `parameters()`,
    `zero_grad()`, `nn.hinge_loss(scores, targets)` = mean(relu(1 - y * score)),
    `nn.SGD(params, lr=...)` with a settable `lr` and `step()`. Outputs: the loss before
    each update and the final parameters in micrograd's order (per neuron: weights, then
    bias).

    Raises:
        Skipped: `nn` cannot be imported or lacks one of the names above.
    """
    try:
        nn: Any = importlib.import_module("nn")  # here: the other cases run without it
    except ImportError as exc:
        raise Skipped(f"nn not available ({exc})") from exc

    missing = [name for name in ("MLP", "SGD", "hinge_loss") if not hasattr(nn, name)]
    if missing:
        raise Skipped("nn not available (" + ", ".join(f"nn.{m}" for m in missing) + " missing)")
    import numpy as np

    import autograd

    xs, ys = data.moons(points)
    weights = data.mlp_weights()
    model: Any = nn.MLP(data.MLP_SIZES[0], list(data.MLP_SIZES[1:]))
    state = {}
    for index, (weight, bias) in enumerate(weights):
        state[f"layers.{index}.weight"] = np.array(weight, dtype=np.float64)
        state[f"layers.{index}.bias"] = np.array(bias, dtype=np.float64)
    model.load_state_dict(state)
    params = list(model.parameters())
    optimizer: Any = nn.SGD(params, lr=data.learning_rate(0))
    phases = {"forward": 0.0, "backward": 0.0, "step": 0.0}
    losses: list[float] = []
    loss = None
    for k in range(steps):
        t0 = perf_counter()
        scores = [model(x) for x in xs]
        loss = nn.hinge_loss(scores, ys) + data.L2 * autograd.sum(p * p for p in params)
        t1 = perf_counter()
        model.zero_grad()
        loss.backward()
        t2 = perf_counter()
        optimizer.lr = data.learning_rate(k)
        optimizer.step()
        t3 = perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["step"] += t3 - t2
        losses.append(float(loss.data))
    final = model.state_dict()
    layers = [
        (final[f"layers.{i}.weight"].tolist(), final[f"layers.{i}.bias"].tolist())
        for i in range(len(weights))
    ]
    outputs = {"loss": losses, "params": data.flatten(layers)}
    return Run(phases, outputs, [loss], params, graphs=steps)
