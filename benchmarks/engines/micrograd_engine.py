"""micrograd 0.1.0 (from the package index, the `bench` extra), used as its users use it.

micrograd 0.1.0's `Value` has `+ - * / **` (number exponents) and `relu` only. W5 needs
exp, log, tanh and sigmoid, so they are added here the way micrograd's own ops are written
(and as its author adds `tanh` and `exp` in the lecture that introduces it): a new Value with
its children and a `_backward` closure. Exactly:
- `exp`, `log`, `tanh`: one custom node each, local derivatives exp(x), 1/x, 1 - tanh(x)**2;
- `sigmoid`: no custom op, composed from micrograd's primitives and `exp` as a user would:
  `1 / (1 + exp(-x))`, which micrograd turns into `-x` (x * -1), exp, `+`, `** -1` and `*`,
  plus the constants it boxes into Values.
Nothing of micrograd is copied or changed; W6 uses micrograd's own `nn.MLP`.
"""

from __future__ import annotations

import math
from time import perf_counter
from typing import Any

from benchmarks import data
from benchmarks.engines.graph import GraphEngine, Run


def _unary(x: Any, out_data: float, local: float, name: str) -> Any:
    """A micrograd node for a one-input function with local derivative `local`."""
    from micrograd.engine import Value

    out = Value(out_data, (x,), name)

    def _backward() -> None:
        x.grad += local * out.grad

    out._backward = _backward
    return out


def exp(x: Any) -> Any:
    """e**x as one micrograd node."""
    e = math.exp(x.data)
    return _unary(x, e, e, "exp")


def log(x: Any) -> Any:
    """log(x) as one micrograd node."""
    return _unary(x, math.log(x.data), 1.0 / x.data, "log")


def tanh(x: Any) -> Any:
    """tanh(x) as one micrograd node."""
    t = math.tanh(x.data)
    return _unary(x, t, 1.0 - t**2, "tanh")


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) from micrograd's primitives and `exp` above."""
    return 1 / (1 + exp(-x))


def engine() -> GraphEngine:
    """The adapter; micrograd's recursive topological sort needs a raised recursion limit."""
    from micrograd.engine import Value

    return GraphEngine(
        name="micrograd",
        leaf=Value,
        exp=exp,
        log=log,
        tanh=tanh,
        sigmoid=sigmoid,
        children=lambda v: v._prev,
        raise_recursion_limit=True,
    )


def train_with_nn(points: int, steps: int) -> Run:
    """W6 with micrograd's `nn.MLP` and the loop of micrograd's demo notebook.

    Same data, initial weights (assigned to `parameters()`, micrograd's order), loss and
    learning-rate schedule as the other engines.
    """
    from micrograd.engine import Value
    from micrograd.nn import MLP

    xs, ys = data.moons(points)
    model = MLP(data.MLP_SIZES[0], list(data.MLP_SIZES[1:]))
    for p, w in zip(model.parameters(), data.flatten(data.mlp_weights()), strict=True):
        p.data = w
    inputs = [list(map(Value, x)) for x in xs]  # as the demo feeds its points
    phases = {"forward": 0.0, "backward": 0.0, "step": 0.0}
    losses: list[float] = []
    total_loss = None
    for k in range(steps):
        t0 = perf_counter()
        scores = list(map(model, inputs))
        point_losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]
        data_loss = sum(point_losses) * (1.0 / len(point_losses))
        reg_loss = data.L2 * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        t1 = perf_counter()
        model.zero_grad()
        total_loss.backward()
        t2 = perf_counter()
        lr = data.learning_rate(k)
        for p in model.parameters():
            p.data -= lr * p.grad
        t3 = perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["step"] += t3 - t2
        losses.append(float(total_loss.data))
    outputs = {"loss": losses, "params": [float(p.data) for p in model.parameters()]}
    return Run(
        phases,
        outputs,
        [total_loss],
        [*model.parameters(), *(v for x in inputs for v in x)],
        graphs=steps,
    )
