"""Backpropagation: sort the graph by creation number (every node is made after its inputs),
then from the output back hand each node's gradient to its arguments: `arg.grad += node.grad
* local`. `backward` writes `.grad`, `backward_steps` is that pass one node at a time, `grad`
writes nothing (with `create_graph=True` it re-derives each local derivative as a Value from
the same rule). No recursion anywhere. This file reads only a node's fields, so it imports
nothing from `value.py`, which imports it. Read next: `functions.py`, `func.py`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .grad_mode import enable_grad, no_grad
from .ops import is_number


def topological_order(roots: Any, *, include_leaves: bool = True) -> list[Any]:
    """Every node reachable from `roots` (a Value or a sequence) once, each after its inputs:
    found by a work list (the list, read while it grows), sorted by creation number. Leaves
    (left out if `include_leaves` is False: backward has nothing to do there) come first."""
    found = [roots] if hasattr(roots, "args") else list(dict.fromkeys(roots))
    seen = set(found)
    for node in found:
        for arg in node.args:
            # args hold Values and floats (apply makes every plain number a float).
            wanted = not isinstance(arg, float) and (include_leaves or arg.op is not None)
            if wanted and arg not in seen:
                seen.add(arg)
                found.append(arg)
    found.sort(key=_serial)  # found roughly newest first, so this sort is cheap
    return found


_serial = operator.attrgetter("serial")


def chain_rule(nodes: Any) -> None:
    """For each node in turn, hand its grad to its arguments: arg.grad += node.grad * local."""
    for node in nodes:
        g = node.grad
        if g == 0.0:  # a zero factor contributes exactly zero, even times an inf or NaN
            continue
        for arg, local in zip(node.args, node.local_grads):
            if local:  # not None (a plain number: nothing to hand on), not a zero factor
                arg.grad += g * local


def _start(root: Any, gradient: Any, where: str, include_leaves: bool) -> list[Any]:
    """The nodes in backward order (root first), intermediate grads reset, root seeded."""
    if not is_number(gradient):
        raise TypeError(f"{where}: gradient must be a real number, got {type(gradient).__name__}")
    order = topological_order(root, include_leaves=include_leaves)
    for node in order:
        if node.op is not None:  # intermediate nodes hold the latest pass; leaves accumulate
            node.grad = 0.0
    root.grad += float(gradient)
    order.reverse()
    return order


def backward(root: Any, gradient: float = 1.0) -> None:
    """Set `.grad` of every node `root` depends on to d(root)/d(node) times `gradient` (a
    number, else TypeError). Leaves accumulate across calls, as in PyTorch (`zero_grad()`
    between steps); intermediate nodes hold this pass only."""
    chain_rule(_start(root, gradient, "backward", include_leaves=False))


@dataclass(frozen=True)
class BackwardStep:
    """One node's chain rule, written out: its `upstream` gradient and, per input Value,
    where it stands in `node.args` (`positions`), its local derivative and `contributions`
    (upstream * local, exactly 0.0 where a factor is zero). `name`s are labels or `v<i>`,
    i the position in topological order; `index` counts the steps from 0 (the root)."""

    index: int
    node: Any
    upstream: float
    inputs: tuple[Any, ...]
    local_grads: tuple[float, ...]
    contributions: tuple[float, ...]
    name: str = ""
    input_names: tuple[str, ...] = ()
    positions: tuple[int, ...] = ()

    def __str__(self) -> str:
        if not self.inputs:
            return f"step {self.index}: {self.name} is a leaf; its grad is {self.upstream!r}"
        parts = [repr(a) for a in self.node.args]
        for position, input_name in zip(self.positions, self.input_names):
            parts[position] = input_name
        symbol, n = self.node.op.symbol, self.name
        infix = len(parts) == 2 and not symbol.isalpha()
        text = f"{parts[0]} {symbol} {parts[1]}" if infix else f"{symbol}({', '.join(parts)})"
        lines = [f"step {self.index}: {n} = {text}, dL/d{n} = {self.upstream!r}"]
        for c, local, contribution in zip(self.input_names, self.local_grads, self.contributions):
            lines.append(f"  dL/d{c} += dL/d{n} * ∂{n}/∂{c} = {self.upstream!r} * {local!r} = "
                         f"{contribution!r}")  # fmt: skip
        return "\n".join(lines)


def backward_steps(root: Any, gradient: float = 1.0) -> Iterator[BackwardStep]:
    """`backward(root, gradient)` one node at a time, root first, leaves too: run to the end,
    it leaves exactly the grads `backward` gives."""
    order = _start(root, gradient, "backward_steps", include_leaves=True)
    names = {node: node.label or f"v{i}" for i, node in enumerate(reversed(order))}
    for index, node in enumerate(order):
        g = node.grad
        positions = tuple(i for i, local in enumerate(node.local_grads) if local is not None)
        inputs = tuple(node.args[i] for i in positions)
        local_grads = tuple(node.local_grads[i] for i in positions)
        contributions = tuple(0.0 if not (local and g) else g * local for local in local_grads)
        chain_rule((node,))  # the step is done when it is seen
        yield BackwardStep(index, node, g, inputs, local_grads, contributions, names[node],
                           tuple(names[a] for a in inputs), positions)  # fmt: skip


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """d(outputs)/d(inputs) (each a Value or a sequence), writing no `.grad`: safe from many
    threads on one graph (PyTorch's `torch.autograd.grad`). `grad_outputs`: numbers or Values
    (1.0 each). `create_graph=True` gives Values with graphs (higher derivatives; none with
    respect to a plain number is computed), else floats. An unused input raises ValueError
    (None if `allow_unused`); a non-Value output or input, or a bad seed, TypeError."""
    out_list, in_list = _nodes(outputs, "outputs"), _nodes(inputs, "inputs")
    grads: dict[Any, Any] = {}
    for out, seed in zip(out_list, _seeds(grad_outputs, len(out_list))):
        grads[out] = grads[out] + seed if out in grads else seed
    with enable_grad() if create_graph else no_grad():
        for node in reversed(topological_order(out_list)):
            g = grads.get(node)
            for i, (arg, local) in enumerate(zip(node.args, node.local_grads)):
                if g is None or local is None:
                    continue
                if create_graph:  # the same rule on Values: a derivative with a graph
                    local = node.op.local_grad(i, node, node.args)
                contribution = _times(g, local)
                grads[arg] = grads[arg] + contribution if arg in grads else contribution
    result = []
    for i, x in enumerate(in_list):
        g = grads.get(x)
        if g is None and not allow_unused:
            raise ValueError(f"grad: input {i}{f' {x.label!r}' if x.label else ''} (data="
                             f"{x.data!r}) is not used by the outputs; pass allow_unused=True "
                             "to get None for it")  # fmt: skip
        if create_graph and is_number(g):  # a constant, d(x + y)/dx: as a new leaf Value
            g, constant = x.detach(), g  # detach makes a leaf (this file imports no Value)
            g.data, g.label = float(constant), ""
        elif not create_graph and g is not None and not is_number(g):
            g = g.data  # a Value grad_output made a Value (a leaf, under no_grad)
        result.append(g)
    return tuple(result)


def _times(g: Any, local: Any) -> Any:
    """g * local, but 0.0 for a plain zero factor, or a zero Value times an inf or NaN."""
    gv, lv = (x if is_number(x) else x.data for x in (g, local))
    if gv == 0.0 and (is_number(g) or not math.isfinite(lv)):
        return 0.0
    if lv == 0.0 and (is_number(local) or not math.isfinite(gv)):
        return 0.0
    return g * local


def _nodes(x: Any, what: str) -> list[Any]:
    items = [x] if hasattr(x, "local_grads") else list(x) if hasattr(x, "__iter__") else [x]
    for item in items:
        if not hasattr(item, "local_grads"):
            raise TypeError(f"grad: {what} must be Values, got {type(item).__name__}")
    if not items:
        raise ValueError(f"grad: {what} is empty")
    return items


def _seeds(grad_outputs: Any, n: int) -> list[Any]:
    single = not hasattr(grad_outputs, "__iter__") or hasattr(grad_outputs, "local_grads")
    seeds = [1.0] * n if grad_outputs is None else [grad_outputs] if single else list(grad_outputs)
    if len(seeds) != n:
        raise ValueError(f"grad: {n} outputs but {len(seeds)} grad_outputs")
    for s in seeds:
        if not (is_number(s) or hasattr(s, "local_grads")):
            raise TypeError(f"grad: grad_outputs must be numbers or Values, got {type(s).__name__}")
    return [s if hasattr(s, "local_grads") else float(s) for s in seeds]
