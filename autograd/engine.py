"""Backpropagation: order the graph, then apply the chain rule node by node.

Every node is made after its inputs, so sorting the nodes by creation number gives a
topological order. Walking it from the output back, each node hands its gradient to its
arguments, multiplied by the local derivative stored at forward time:

    arg.grad += node.grad * local

- `backward(root)` does this with floats and writes `.grad`; `backward_steps(root)` is the
  same pass one node at a time (the stepper shows it);
- `grad(outputs, inputs, create_graph=...)` returns gradients and writes nothing (PyTorch's
  `torch.autograd.grad`); with `create_graph=True` it re-derives each local derivative as a
  Value from the same rule, so gradients can be differentiated again.

No recursion anywhere: a chain of a million nodes works at the default recursion limit.
This file reads only the fields of a node (`args`, `local_grads`, `grad`, `op`, `serial`),
so it imports nothing from `value.py`. Read next: `func.py` for grad(f) and hessian(f).
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
    """Every node reachable from `roots` (a Value or a sequence), each after its inputs.

    A work list finds them, no recursion: the list of found nodes, read while it grows.
    Then the creation number sorts them. A node reached by many paths appears once; leaves
    (left out if `include_leaves` is False: backward has nothing to do at a leaf) come
    first, the roots last.
    """
    found = [roots] if hasattr(roots, "args") else list(dict.fromkeys(roots))
    seen = set(found)
    for node in found:
        for arg in node.args:
            # args hold Values and floats (apply makes every plain number a float).
            is_new = not isinstance(arg, float) and arg not in seen
            if is_new and (include_leaves or arg.op is not None):
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
    """Set `.grad` of every node `root` depends on to d(root)/d(node), times `gradient`.

    Leaves accumulate (`+=`) across calls, as in PyTorch: call `zero_grad()` between steps.
    Intermediate nodes are reset first, so they hold this pass only.

    Raises:
        TypeError: `gradient` is not a real number (`ops.is_number`).
    """
    chain_rule(_start(root, gradient, "backward", include_leaves=False))


@dataclass(frozen=True)
class BackwardStep:
    """What backward does at one node: the chain rule, written out.

    Attributes:
        index: 0 for the first node processed (the root), counting up.
        node: the Value whose gradient is handed on; upstream: its complete gradient.
        inputs: the node's input Values; positions: where each stands in `node.args`.
        local_grads: d(node)/d(input) for each input; contributions: upstream * local,
            what is added to each input's grad (exactly 0.0 where a factor is zero).
        name, input_names: the label, or `v<i>` with i the position in topological order.
    """

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
        symbol = self.node.op.symbol
        infix = len(parts) == 2 and not symbol.isalpha()
        text = f"{parts[0]} {symbol} {parts[1]}" if infix else f"{symbol}({', '.join(parts)})"
        lines = [f"step {self.index}: {self.name} = {text}, dL/d{self.name} = {self.upstream!r}"]
        for c, local, contribution in zip(self.input_names, self.local_grads, self.contributions):
            lines.append(
                f"  dL/d{c} += dL/d{self.name} * ∂{self.name}/∂{c} = "
                f"{self.upstream!r} * {local!r} = {contribution!r}"
            )
        return "\n".join(lines)


def backward_steps(root: Any, gradient: float = 1.0) -> Iterator[BackwardStep]:
    """`backward(root, gradient)` one node at a time, yielding a `BackwardStep` per node.

    The same pass: run to the end, it leaves exactly the grads `backward` gives. Nodes come
    root first; leaves are yielded too (nothing to hand on).
    """
    order = _start(root, gradient, "backward_steps", include_leaves=True)
    names = {node: node.label or f"v{i}" for i, node in enumerate(reversed(order))}
    for index, node in enumerate(order):
        positions = tuple(i for i, local in enumerate(node.local_grads) if local is not None)
        inputs = tuple(node.args[i] for i in positions)
        local_grads = tuple(node.local_grads[i] for i in positions)
        contributions = tuple(
            0.0 if local == 0.0 or node.grad == 0.0 else node.grad * local for local in local_grads
        )
        step = BackwardStep(
            index, node, node.grad, inputs, local_grads, contributions, names[node],
            tuple(names[a] for a in inputs), positions,
        )  # fmt: skip
        chain_rule((node,))
        yield step


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """Gradients of `outputs` with respect to `inputs`, writing no `.grad` (thread-safe).

    PyTorch's `torch.autograd.grad` signature and semantics, for scalar Values.

    Args:
        outputs, inputs: a Value or a sequence of Values.
        grad_outputs: d(loss)/d(output) per output: numbers or Values (default 1.0 each).
        create_graph: if True, the gradients are Values with a graph of their own, built
            from the same rules (higher derivatives); derivatives with respect to plain
            numbers are never computed. If False they are floats.
        allow_unused: if False, an input no output depends on raises; if True it gets None.
    Returns:
        One gradient per input: floats, or Values when `create_graph=True`.
    Raises:
        TypeError: an output or input is not a Value, or a grad_output not a number/Value.
        ValueError: lengths of outputs and grad_outputs differ, or an input is unused.
    """
    out_list, in_list = _nodes(outputs, "outputs"), _nodes(inputs, "inputs")
    grads: dict[Any, Any] = {}
    for out, seed in zip(out_list, _seeds(grad_outputs, len(out_list))):
        grads[out] = grads[out] + seed if out in grads else seed
    with enable_grad() if create_graph else no_grad():
        for node in reversed(topological_order(out_list)):
            g = grads.get(node)
            if g is None:
                continue
            for i, (arg, local) in enumerate(zip(node.args, node.local_grads)):
                if local is None:
                    continue
                if create_graph:  # the same rule, on Values: a derivative with a graph
                    local = node.op.local_grad(i, node, node.args)
                contribution = _times(g, local)
                grads[arg] = grads[arg] + contribution if arg in grads else contribution
    result: list[Any] = []
    for i, x in enumerate(in_list):
        g = grads.get(x)
        if g is None and not allow_unused:
            name = f" {x.label!r}" if x.label else ""
            raise ValueError(
                f"grad: input {i}{name} (data={x.data!r}) is not used by the outputs; "
                "pass allow_unused=True to get None for it"
            )
        if g is not None and create_graph and is_number(g):
            g = _constant(g, like=x)
        elif g is not None and not create_graph and not is_number(g):
            g = g.data  # a Value grad_output gave a Value, recorded as a leaf (no_grad)
        result.append(g)
    return tuple(result)


def _times(g: Any, local: Any) -> Any:
    """g * local, but exactly 0.0 where a factor is zero and the product would lose that:
    a plain zero, or a zero Value times an inf or NaN (a zero Value times a finite number
    keeps its graph: its own derivative need not be zero)."""
    gv, lv = _value(g), _value(local)
    if gv == 0.0 and (is_number(g) or not math.isfinite(lv)):
        return 0.0
    if lv == 0.0 and (is_number(local) or not math.isfinite(gv)):
        return 0.0
    return g * local


def _constant(g: float, like: Any) -> Any:
    """A constant gradient (d(x + y)/dx = 1.0) as a new leaf Value, made by `detach`."""
    leaf = like.detach()
    leaf.data, leaf.label = float(g), ""
    return leaf


def _value(x: Any) -> float:
    return x if is_number(x) else x.data


def _nodes(x: Any, what: str) -> list[Any]:
    if not (hasattr(x, "local_grads") or hasattr(x, "__iter__")):
        raise TypeError(
            f"grad: {what} must be a Value or a sequence of Values, got {type(x).__name__}"
        )
    items = [x] if hasattr(x, "local_grads") else list(x)
    for item in items:
        if not hasattr(item, "local_grads"):
            raise TypeError(f"grad: {what} must be Values, got {type(item).__name__}")
    if not items:
        raise ValueError(f"grad: {what} is empty")
    return items


def _seeds(grad_outputs: Any, n: int) -> list[Any]:
    if grad_outputs is None:
        return [1.0] * n
    single = is_number(grad_outputs) or hasattr(grad_outputs, "local_grads")
    seeds = (
        [grad_outputs] if single or not hasattr(grad_outputs, "__iter__") else list(grad_outputs)
    )
    if len(seeds) != n:
        raise ValueError(f"grad: {n} outputs but {len(seeds)} grad_outputs")
    for s in seeds:
        if not (is_number(s) or hasattr(s, "local_grads")):
            raise TypeError(f"grad: grad_outputs must be numbers or Values, got {type(s).__name__}")
    return [s if hasattr(s, "local_grads") else float(s) for s in seeds]
