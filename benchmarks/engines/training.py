"""Training runs through `nn`: W6 (moons), and the breast_cancer- and digits-size cases.

One recipe (`data.training`), five ways to run it, each a function `(spec, steps) -> Run`:

- `tape`: chainrule's `autograd.tape`, as `nn.fit` uses it: one sample's loss recorded once
  from an `nn.MLP` and an `nn` loss, replayed over the whole batch with numpy; the weights in
  one flat array, updated by `nn.SGD.update`. The forward and backward passes are one replay,
  reported as the forward phase.
- `values`: chainrule's Value graphs through `nn`, one graph per sample (the reference the
  tape is proven against; what `fit(..., engine="values")` runs).
- `micrograd`: micrograd 0.1.0's `nn.MLP`, its loop, with `exp` and `log` added as
  `micrograd_engine` adds them; a graph of up to 128 samples at a time, so the graph of a
  digits step (about 8.6 million nodes) need not be held at once.
- `torch`: PyTorch float64 on one thread, `nn.Linear` layers and `torch.optim.SGD`.
- `numpy`: numpy written by hand, matrix products and the backward formulas: the floor.

Each run's outputs: the loss before every update, the first step's gradients and the final
parameters, in micrograd's order (per neuron: its weights, then its bias). The slow engines
run `partial` steps of the case (`data.partial_steps`) and their times are extrapolated to
the full run, which the report says.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from benchmarks import data
from benchmarks.engines.graph import Run

Phases = dict[str, float]


def _phases() -> Phases:
    return {"forward": 0.0, "backward": 0.0, "step": 0.0}


def _scaled(phases: Phases, factor: float) -> Phases:
    return {k: v * factor for k, v in phases.items()}


def _flatten_state(state: dict[str, Any], n_layers: int) -> list[float]:
    layers = [
        (state[f"layers.{i}.weight"].tolist(), state[f"layers.{i}.bias"].tolist())
        for i in range(n_layers)
    ]
    return data.flatten(layers)


def _micrograd_order(model: Any) -> Any:
    """Indices that put `model.parameters()` (weights, then biases, per layer) in
    micrograd's order (per neuron: weights, then bias)."""
    import numpy as np

    order: list[int] = []
    offset = 0
    weights = [a for name, a in model.named_parameters() if name.endswith("weight")]
    for arr_w in weights:
        nout, nin = arr_w.shape
        for j in range(nout):
            order.extend(range(offset + j * nin, offset + (j + 1) * nin))
            order.append(offset + nout * nin + j)
        offset += nout * nin + nout
    return np.array(order)


def _nn_model(spec: data.Training) -> Any:
    import numpy as np

    import nn

    model = nn.MLP(spec.sizes[0], list(spec.sizes[1:]))
    state = {}
    for i, (weight, bias) in enumerate(spec.layers):
        state[f"layers.{i}.weight"] = np.array(weight, dtype=np.float64)
        state[f"layers.{i}.bias"] = np.array(bias, dtype=np.float64)
    model.load_state_dict(state)
    return model


def _nn_loss(spec: data.Training, outputs: Any, targets: Any, reduction: str = "mean") -> Any:
    import nn

    if spec.loss == "hinge":
        return nn.hinge_loss(outputs, targets, reduction=reduction)
    if spec.loss == "bce":
        return nn.binary_cross_entropy_with_logits(outputs, targets, reduction=reduction)
    return nn.cross_entropy(outputs, targets, reduction=reduction)


# -----------------------------------------------------------------------------------------
# chainrule: the tape, and Value graphs
# -----------------------------------------------------------------------------------------


def tape(spec: data.Training, steps: int) -> Run:
    """The recipe on chainrule's tape (see the module docstring)."""
    import numpy as np

    import nn
    from autograd.tape import one_blas_thread, record

    model = _nn_model(spec)
    params = model.parameters()
    d = spec.sizes[0]
    X = np.array(spec.X, dtype=np.float64)
    if spec.loss == "cross_entropy":
        labels = np.eye(spec.sizes[-1])[np.array(spec.y, dtype=np.int64)]
    else:
        labels = np.array(spec.y, dtype=np.float64)[:, None]
    inputs = np.hstack([X, labels])
    n = len(inputs)

    def per_sample(v: list[Any]) -> Any:
        target = v[d:] if spec.loss == "cross_entropy" else v[d]
        return _nn_loss(spec, model(v[:d]), target, reduction="sum")

    picks = sorted(set(np.linspace(0, n - 1, min(n, 8)).astype(int).tolist()))
    t = record(per_sample, *inputs[picks], params=params)
    flat = np.array([p.data for p in params])
    optimizer = nn.SGD(params, lr=spec.lr(0), weight_decay=spec.weight_decay)
    order = _micrograd_order(model)
    phases = _phases()
    losses: list[float] = []
    grad0: list[float] = []
    with one_blas_thread():
        for k in range(steps):
            t0 = perf_counter()
            run = t.run(inputs, flat, seed=1.0 / n)
            loss = float(run.outputs[:, 0].sum()) / n
            grads = run.param_grads
            if spec.l2:
                # The L2 term of micrograd's demo loss, on the flat array of weights.
                loss += spec.l2 * float(flat @ flat)
                grads = grads + 2.0 * spec.l2 * flat
            t1 = perf_counter()
            optimizer.lr = spec.lr(k)
            flat = optimizer.update(flat, grads)
            t2 = perf_counter()
            phases["forward"] += t1 - t0
            phases["step"] += t2 - t1
            losses.append(loss)
            if k == 0:
                grad0 = grads[order].tolist()
    del phases["backward"]
    outputs = {"loss": losses, "grad0": grad0, "params": flat[order].tolist()}
    return Run(phases, outputs, nodes=None)


def values(spec: data.Training, steps: int) -> Run:
    """The recipe on chainrule's Value graphs through `nn` (one graph per sample)."""
    import autograd
    import nn

    model = _nn_model(spec)
    params = model.parameters()
    optimizer = nn.SGD(params, lr=spec.lr(0), weight_decay=spec.weight_decay)
    order = _micrograd_order(model).tolist()
    phases = _phases()
    losses: list[float] = []
    grad0: list[float] = []
    loss = None
    for k in range(steps):
        t0 = perf_counter()
        loss = _nn_loss(spec, [model(x) for x in spec.X], spec.y)
        if spec.l2:
            loss = loss + spec.l2 * autograd.sum(p * p for p in params)
        t1 = perf_counter()
        model.zero_grad()
        loss.backward()
        t2 = perf_counter()
        optimizer.lr = spec.lr(k)
        optimizer.step()
        t3 = perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["step"] += t3 - t2
        losses.append(float(loss.data))
        if k == 0:
            grad0 = [params[i].grad for i in order]
    outputs = {"loss": losses, "grad0": grad0, "params": [params[i].data for i in order]}
    return Run(phases, outputs, [loss], params, graphs=steps)


# -----------------------------------------------------------------------------------------
# micrograd
# -----------------------------------------------------------------------------------------


def micrograd(spec: data.Training, steps: int) -> Run:
    """The recipe on micrograd 0.1.0's `nn.MLP` (see the module docstring)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

    from benchmarks.engines.micrograd_engine import exp, log

    model = MLP(spec.sizes[0], list(spec.sizes[1:]))
    for p, w in zip(model.parameters(), data.flatten(spec.layers), strict=True):
        p.data = w
    inputs = [list(map(Value, x)) for x in spec.X]
    n = len(inputs)
    params = model.parameters()
    phases = _phases()
    losses: list[float] = []
    grad0: list[float] = []
    chunk = 128
    for k in range(steps):
        model.zero_grad()
        total = 0.0
        for start in range(0, n, chunk):
            t0 = perf_counter()
            terms = []
            for x, y in zip(inputs[start : start + chunk], spec.y[start : start + chunk]):
                out = model(x)
                if spec.loss == "hinge":
                    terms.append((1 + -y * out).relu())
                elif spec.loss == "bce":
                    # softplus(x) - y x, with micrograd's ops and the added exp and log.
                    terms.append(log(1 + exp(out)) - y * out)
                else:
                    terms.append(log(sum((exp(z) for z in out), Value(0.0))) - out[int(y)])
            part = sum(terms) * (1.0 / n)
            if spec.l2 and start == 0:
                part = part + spec.l2 * sum(p * p for p in params)
            t1 = perf_counter()
            part.backward()
            t2 = perf_counter()
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            total += part.data
        t2 = perf_counter()
        lr = spec.lr(k)
        for p in params:
            p.data -= lr * (p.grad + spec.weight_decay * p.data)
        phases["step"] += perf_counter() - t2
        losses.append(total)
        if k == 0:
            grad0 = [p.grad for p in params]
    outputs = {"loss": losses, "grad0": grad0, "params": [p.data for p in params]}
    return Run(phases, outputs, nodes=None)


# -----------------------------------------------------------------------------------------
# torch, and numpy by hand
# -----------------------------------------------------------------------------------------


def torch_run(spec: data.Training, steps: int) -> Run:
    """The recipe on PyTorch, float64, one thread."""
    import torch

    torch.set_num_threads(1)
    F = torch.nn.functional
    layers = torch.nn.ModuleList(
        torch.nn.Linear(i, o, dtype=torch.float64) for i, o in zip(spec.sizes, spec.sizes[1:])
    )
    with torch.no_grad():
        for lin, (weight, bias) in zip(layers, spec.layers):
            lin_: Any = lin
            lin_.weight.copy_(torch.tensor(weight, dtype=torch.float64))
            lin_.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    X = torch.tensor(spec.X, dtype=torch.float64)
    y = torch.tensor(spec.y, dtype=torch.int64 if spec.loss == "cross_entropy" else torch.float64)
    params = list(layers.parameters())
    optimizer = torch.optim.SGD(params, lr=spec.lr(0), weight_decay=spec.weight_decay)
    phases = _phases()
    losses: list[float] = []
    grad0: list[float] = []

    def flat(tensors: list[Any]) -> list[float]:
        out: list[float] = []
        for w, b in zip(tensors[::2], tensors[1::2]):
            for row, bj in zip(w.tolist(), b.tolist()):
                out.extend(row)
                out.append(bj)
        return out

    for k in range(steps):
        t0 = perf_counter()
        h = X
        for i, lin in enumerate(layers):
            h = lin(h)
            if i < len(layers) - 1:
                h = torch.relu(h)
        if spec.loss == "hinge":
            loss = torch.relu(1 - y * h[:, 0]).mean()
        elif spec.loss == "bce":
            loss = F.binary_cross_entropy_with_logits(h[:, 0], y)
        else:
            loss = F.cross_entropy(h, y)
        if spec.l2:
            loss = loss + spec.l2 * sum((p * p).sum() for p in params)
        t1 = perf_counter()
        optimizer.zero_grad()
        loss.backward()
        t2 = perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = spec.lr(k)
        optimizer.step()
        t3 = perf_counter()
        phases["forward"] += t1 - t0
        phases["backward"] += t2 - t1
        phases["step"] += t3 - t2
        losses.append(loss.item())
        if k == 0:
            grad0 = flat([p.grad for p in params])
    outputs = {"loss": losses, "grad0": grad0, "params": flat([p.detach() for p in params])}
    return Run(phases, outputs, nodes=None)


def numpy_run(spec: data.Training, steps: int) -> Run:
    """The recipe in numpy by hand: the floor (matrix products and the backward formulas)."""
    import numpy as np

    from autograd.tape import one_blas_thread

    Ws = [np.array(w, dtype=np.float64) for w, _ in spec.layers]
    bs = [np.array(b, dtype=np.float64) for _, b in spec.layers]
    X = np.array(spec.X, dtype=np.float64)
    y = np.array(spec.y)
    n = len(X)
    phases = _phases()
    losses: list[float] = []
    grad0: list[float] = []

    def flat(ws: list[Any], bs_: list[Any]) -> list[float]:
        return [v for w, b in zip(ws, bs_) for v in np.column_stack([w, b]).ravel().tolist()]

    with one_blas_thread():
        for k in range(steps):
            t0 = perf_counter()
            hs = [X]
            zs = []
            for i, (W, b) in enumerate(zip(Ws, bs)):
                z = hs[-1] @ W.T + b
                zs.append(z)
                hs.append(np.maximum(z, 0.0) if i < len(Ws) - 1 else z)
            out = hs[-1]
            if spec.loss == "hinge":
                margin = 1.0 - y * out[:, 0]
                loss = float(np.maximum(margin, 0.0).mean())
                g = (-(margin > 0.0).astype(np.float64) * y / n)[:, None]
            elif spec.loss == "bce":
                z = out[:, 0]
                loss = float((np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))).mean())
                s = np.where(z >= 0, 1 / (1 + np.exp(-z)), np.exp(z) / (1 + np.exp(z)))
                g = ((s - y) / n)[:, None]
            else:
                m = out.max(axis=1, keepdims=True)
                e = np.exp(out - m)
                lse = m[:, 0] + np.log(e.sum(axis=1))
                loss = float((lse - out[np.arange(n), y.astype(int)]).mean())
                g = e / e.sum(axis=1, keepdims=True)
                g[np.arange(n), y.astype(int)] -= 1.0
                g /= n
            if spec.l2:
                loss += spec.l2 * sum(float((W * W).sum() + (b * b).sum()) for W, b in zip(Ws, bs))
            t1 = perf_counter()
            gWs: list[Any] = [None] * len(Ws)
            gbs: list[Any] = [None] * len(Ws)
            for i in reversed(range(len(Ws))):
                gWs[i] = g.T @ hs[i]
                gbs[i] = g.sum(axis=0)
                if i:
                    g = (g @ Ws[i]) * (zs[i - 1] > 0)
            if spec.l2:
                gWs = [gw + 2 * spec.l2 * W for gw, W in zip(gWs, Ws)]
                gbs = [gb + 2 * spec.l2 * b for gb, b in zip(gbs, bs)]
            t2 = perf_counter()
            lr, wd = spec.lr(k), spec.weight_decay
            Ws = [W - lr * (gw + wd * W) for W, gw in zip(Ws, gWs)]
            bs = [b - lr * (gb + wd * b) for b, gb in zip(bs, gbs)]
            t3 = perf_counter()
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["step"] += t3 - t2
            losses.append(loss)
            if k == 0:
                grad0 = flat(gWs, gbs)
    outputs = {"loss": losses, "grad0": grad0, "params": flat(Ws, bs)}
    return Run(phases, outputs, nodes=None)


RUNNERS = {
    "chainrule": tape,
    "values": values,
    "micrograd": micrograd,
    "torch": torch_run,
    "numpy": numpy_run,
}


def run(engine: str, case: str, size: dict[str, int]) -> Run:
    """One timed run of a training case on `engine`; partial runs are extrapolated.

    An engine that runs on fewer samples than the case (`data.partial_samples`) also gets the
    numpy floor's first-step gradients on those samples, as `outputs["grad0_numpy"]`, to be
    checked against (the full run's outputs cannot be compared).
    """
    samples = size["samples"] if "samples" in size else size["points"]
    steps = size["steps"]
    partial = data.partial_steps(case, engine, steps)
    subset = data.partial_samples(case, engine, samples)
    spec = data.training(case, subset)
    result = RUNNERS[engine](spec, partial)
    factor = (steps / partial) * (samples / subset)
    if factor != 1.0:
        result.phases = _scaled(result.phases, factor)
        result.graphs = round(result.graphs * steps / partial)
    if subset < samples:
        result.outputs["grad0_numpy"] = numpy_run(spec, 1).outputs["grad0"]
    return result


def extrapolation_note(case: str, engine: str, size: dict[str, int]) -> str | None:
    """What the report says about a partial run, or None for a full one."""
    samples = size["samples"] if "samples" in size else size["points"]
    steps = size["steps"]
    partial = data.partial_steps(case, engine, steps)
    subset = data.partial_samples(case, engine, samples)
    if (partial, subset) == (steps, samples):
        return None
    on = f" on {subset:,} of the {samples:,} samples" if subset < samples else ""
    return (
        f"{engine} runs {partial} of the {steps} steps{on}; its times are scaled by "
        f"{steps / partial * samples / subset:,.2f} to the full run (extrapolated)"
    )


def value_graph_gradients(case: str, size: dict[str, int]) -> list[float]:
    """The first step's gradients on chainrule's Value graphs (untimed), to check the tape."""
    spec = data.training(case, size["samples"] if "samples" in size else size["points"])
    return values(spec, 1).outputs["grad0"]
