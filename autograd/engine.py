"""Backpropagation: walk the graph from the output back to the leaves, applying the chain rule.

Two passes share one idea. Order the nodes so that every node comes after its inputs
(a topological order). Then, from the output backwards, each node hands its gradient to
its inputs, multiplied by the local derivative:

    input.grad += node.grad * d(node)/d(input)

- `backward(root)` does this with floats and writes `.grad` on every node.
- `grad(outputs, inputs, create_graph=...)` returns the gradients instead of writing them
  (PyTorch's `torch.autograd.grad`); with `create_graph=True` it does the arithmetic on
  Values, so the gradients are themselves graphs and can be differentiated again.

Both are plain loops over lists of nodes: no recursion, so a chain of a million nodes works
at Python's default recursion limit. Read next: `func.py` for grad(f), hessian(f).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .grad_mode import enable_grad, no_grad
from .ops import is_number
from .value import Value


def topological_order(
    roots: Value | Sequence[Value], *, include_leaves: bool = True
) -> list[Value]:
    """Every node reachable from `roots`, each after all of its inputs.

    Every node is created after its inputs, so creation order is already a topological
    order: find the reachable nodes (an explicit stack, no recursion) and sort them by it.

    Args:
        roots: one Value or a sequence of Values.
        include_leaves: if False, leave out leaves (nodes without inputs), which backward
            never needs to visit: in a wide graph they can be most of the nodes.
    Returns:
        A list of Values: leaves first, the roots last. A node reached by many paths
        appears once.
    """
    if isinstance(roots, Value):
        roots = [roots]
    # `found` is both the work list (a growing queue, read with an index) and the result.
    found = list(dict.fromkeys(roots))
    seen: set[Value] = set(found)
    i = 0
    while i < len(found):
        node = found[i]
        i += 1
        # A node's inputs: slots _a and _b, and _more for n-ary ops (see value.py).
        # Unrolled rather than gathered into a tuple: this loop runs once per node.
        a = node._a
        if a is None:
            continue
        if a not in seen and (include_leaves or a._a is not None):
            seen.add(a)
            found.append(a)
        b = node._b
        if b is None:
            continue
        if b not in seen and (include_leaves or b._a is not None):
            seen.add(b)
            found.append(b)
        if node._more is not None:
            for child in node._more[0]:
                if child not in seen and (include_leaves or child._a is not None):
                    seen.add(child)
                    found.append(child)
    # Found outputs-first, roughly newest first, which makes this sort cheap.
    found.sort(key=_creation_order)
    return found


_creation_order = operator.attrgetter("_id")


def backward(root: Value, gradient: float = 1.0) -> None:
    """Set `.grad` of every node `root` depends on to d(root)/d(node), times `gradient`.

    Leaves accumulate (`+=`) across calls, as in PyTorch, so call `zero_grad()` between
    training steps. Intermediate nodes are reset first, so they hold this pass only.

    Args:
        root: the output Value (usually a scalar loss).
        gradient: d(loss)/d(root) to start from; 1.0 for the loss itself.
    Raises:
        TypeError: when `gradient` is not a real number.
    """
    if not is_number(gradient):
        raise TypeError(f"backward: gradient must be a real number, got {type(gradient).__name__}")
    if root._a is None:  # a leaf: its grad accumulates, and there is nothing to hand on
        root.grad += float(gradient)
        return
    order = _intermediates_newest_first(root)
    root.grad = float(gradient)
    # Apply the chain rule node by node, from the output back to the leaves:
    #     input.grad += node.grad * d(node)/d(input)
    for node in order:
        g = node.grad
        if g == 0.0:
            # A zero upstream gradient contributes exactly zero, even where a local
            # derivative is infinite (0 * inf would be NaN).
            continue
        node._a.grad += g * node._da
        b = node._b
        if b is None:
            continue
        b.grad += g * node._db
        more = node._more
        if more is not None:
            for child, local in zip(more[0], more[1]):
                child.grad += g * local


# Marks a node as found during `_intermediates_newest_first`, in place of its grad.
_FOUND: Any = object()


def _intermediates_newest_first(root: Value) -> list[Value]:
    """The nodes made by an op that `root` depends on, `root` first, newest to oldest.

    The same search as `topological_order(root, include_leaves=False)`, made for backward:
    instead of a set of the nodes seen so far, a found node's `grad` holds the marker
    `_FOUND` until the search ends, and is then set to 0.0 (an intermediate node holds the
    gradient of the latest pass only, so backward resets it anyway). Leaves are never
    marked: their grads accumulate. Marking costs an attribute store where a set costs a
    hash and a table that grows with the graph; backward's time is mostly this search.
    """
    order = [root]
    root.grad = _FOUND
    # While every node is found as the first input of the node before it, the nodes form a
    # chain, each older than the one before: newest first already, no sort needed.
    chain = True
    try:
        # A breadth-first search: the loop also visits the nodes appended while it runs.
        for node in order:
            # Only intermediate nodes are in `order`, so node._a is never None.
            a = node._a
            if a._a is not None and a.grad is not _FOUND:
                a.grad = _FOUND
                order.append(a)
            b = node._b
            if b is None:
                continue
            if b._a is not None and b.grad is not _FOUND:
                b.grad = _FOUND
                order.append(b)
                chain = False
            more = node._more
            if more is not None:
                for child in more[0]:
                    if child._a is not None and child.grad is not _FOUND:
                        child.grad = _FOUND
                        order.append(child)
                        chain = False
    finally:
        # Also on KeyboardInterrupt: no marker may outlive the search.
        for node in order:
            node.grad = 0.0
    if not chain:
        order.sort(key=_creation_order, reverse=True)
    return order


@dataclass(frozen=True)
class BackwardStep:
    """What backward does at one node: the chain rule, written out.

    Attributes:
        index: 0 for the first node processed (the root), counting up.
        node: the Value whose gradient is handed on.
        upstream: d(root)/d(node), complete by the time the node is reached.
        inputs: the node's input Values (empty for a leaf).
        local_grads: d(node)/d(input) for each input.
        contributions: upstream * local_grad for each input: what is added to input.grad.
        name, input_names: how the text names the node and its inputs: the label, or
            `v<i>` with i the position in topological order (draw_dot's node ids).
    """

    index: int
    node: Value
    upstream: float
    inputs: tuple[Value, ...]
    local_grads: tuple[float, ...]
    contributions: tuple[float, ...]
    name: str = ""
    input_names: tuple[str, ...] = ()

    def __str__(self) -> str:
        name = self.name or _name(self.node)
        names = self.input_names or tuple(_name(child) for child in self.inputs)
        if not self.inputs:
            return f"step {self.index}: {name} is a leaf; its grad is {self.upstream!r}"
        lines = [
            f"step {self.index}: {name} = {_describe(self.node, names)}, "
            f"dL/d{name} = {self.upstream!r}"
        ]
        for c, local, contribution in zip(names, self.local_grads, self.contributions):
            # ∂ for the node's local derivative, d for gradients of the loss (see stepper.py).
            lines.append(
                f"  dL/d{c} += dL/d{name} * ∂{name}/∂{c} = "
                f"{self.upstream!r} * {local!r} = {contribution!r}"
            )
        return "\n".join(lines)


def _name(v: Value) -> str:
    return v.label or f"v{id(v) % 10000:04d}"


def _describe(v: Value, input_names: Sequence[str]) -> str:
    assert v.op is not None
    names = iter(input_names)
    parts = [next(names) if isinstance(a, Value) else repr(a) for a in v.args]
    if len(parts) == 2 and not v.op.symbol.isalpha():
        return f"{parts[0]} {v.op.symbol} {parts[1]}"
    return f"{v.op.symbol}({', '.join(parts)})"


def backward_steps(root: Value, gradient: float = 1.0) -> Iterator[BackwardStep]:
    """Run `backward(root)` one node at a time, yielding what each step does.

    The same pass as `backward`: intermediate grads are reset first, leaves accumulate, and
    running the generator to the end leaves exactly the grads `backward` gives. Nodes come
    in reverse topological order, the root first; leaves are yielded too (nothing to hand on).

    Args:
        root: the output Value.
        gradient: d(loss)/d(root) to start from.
    Yields:
        One `BackwardStep` per node; `print(step)` shows the chain rule with its numbers.
    """
    order = topological_order(root)
    names = {node: node.label or f"v{i}" for i, node in enumerate(order)}
    for node in order:
        if node.inputs:
            node.grad = 0.0
    root.grad += float(gradient)
    for index, node in enumerate(reversed(order)):
        g = node.grad
        contributions = tuple(0.0 if g == 0.0 else g * local for local in node.local_grads)
        for child, contribution in zip(node.inputs, contributions):
            child.grad += contribution
        yield BackwardStep(
            index,
            node,
            g,
            node.inputs,
            node.local_grads,
            contributions,
            names[node],
            tuple(names[child] for child in node.inputs),
        )


def grad(
    outputs: Value | Sequence[Value],
    inputs: Value | Sequence[Value],
    grad_outputs: float | Value | Sequence[float | Value] | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """Gradients of `outputs` with respect to `inputs`, without touching any `.grad`.

    PyTorch's `torch.autograd.grad` signature and semantics, for scalar Values.

    Args:
        outputs: a Value or a sequence of Values to differentiate.
        inputs: a Value or a sequence of Values to differentiate with respect to.
        grad_outputs: d(loss)/d(output) for each output (default 1.0 each).
        create_graph: if True, the returned gradients are Values with a graph of their own,
            built from the same derivative table, so they can be differentiated again
            (second and higher derivatives). If False they are floats.
        allow_unused: if False (the default), an input that no output depends on raises
            ValueError; if True its gradient is None.

    Returns:
        A tuple with one gradient per input: floats, or Values when `create_graph=True`
        (a gradient that does not depend on any input, such as d(x + y)/dx, is then a
        constant leaf Value).

    Raises:
        TypeError: an output or input is not a Value.
        ValueError: lengths of outputs and grad_outputs differ, or an input is unused.
    """
    out_list = _as_value_list(outputs, "outputs")
    in_list = _as_value_list(inputs, "inputs")
    seeds = _seeds(grad_outputs, len(out_list))

    grads: dict[Value, Any] = {}
    for out, seed in zip(out_list, seeds):
        grads[out] = grads[out] + seed if out in grads else seed

    order = topological_order(out_list)
    mode = enable_grad() if create_graph else no_grad()
    with mode:
        for node in reversed(order):
            g = grads.get(node)
            if g is None or not node.inputs:
                continue
            if not isinstance(g, Value) and g == 0.0:
                # A zero upstream gradient contributes exactly zero (no 0 * inf = nan), but
                # the inputs are still used by the outputs: their gradient is 0, not "unused".
                for child in node.inputs:
                    grads.setdefault(child, 0.0)
                continue
            if create_graph:
                # Re-derive the local derivatives as Values from the same rule.
                assert node.op is not None
                locals_all = node.op.local_grads(node, *node.args)
                local_grads = tuple(
                    d for a, d in zip(node.args, locals_all) if isinstance(a, Value)
                )
            else:
                local_grads = node.local_grads
            for child, local in zip(node.inputs, local_grads):
                contribution = g * local
                grads[child] = grads[child] + contribution if child in grads else contribution

    result: list[Any] = []
    for i, x in enumerate(in_list):
        if x in grads:
            g = grads[x]
            if create_graph:
                result.append(g if isinstance(g, Value) else Value(g))
            else:
                result.append(g.data if isinstance(g, Value) else g)
        elif allow_unused:
            result.append(None)
        else:
            name = f" {x.label!r}" if x.label else ""
            raise ValueError(
                f"grad: input {i}{name} (data={x.data!r}) is not used by the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(result)


def _as_value_list(x: Value | Sequence[Value], what: str) -> list[Value]:
    if isinstance(x, Value):
        items = [x]
    else:
        try:
            items = list(x)
        except TypeError:  # a bare number: say what was expected, not "not iterable"
            raise TypeError(
                f"grad: {what} must be a Value or a sequence of Values, got {type(x).__name__}"
            ) from None
    for item in items:
        if not isinstance(item, Value):
            raise TypeError(f"grad: {what} must be Values, got {type(item).__name__}")
    if not items:
        raise ValueError(f"grad: {what} is empty")
    return items


def _seeds(grad_outputs: Any, n: int) -> list[Any]:
    if grad_outputs is None:
        return [1.0] * n
    seeds = [grad_outputs] if isinstance(grad_outputs, (int, float, Value)) else list(grad_outputs)
    if len(seeds) != n:
        raise ValueError(f"grad: {n} outputs but {len(seeds)} grad_outputs")
    return [s if isinstance(s, Value) else float(s) for s in seeds]
