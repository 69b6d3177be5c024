"""`BackwardStepper`: walk through a backward pass one node at a time, in Jupyter or in text.

    >>> from autograd import Value, BackwardStepper
    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> c = a * b; c.label = "c"
    >>> s = BackwardStepper(c)
    >>> _ = s.step(); _ = s.step()   # the root, then its first input
    >>> a.grad
    -3.0

Each `step()` runs one step of `autograd.backward_steps`: the current node hands its gradient
to its inputs (`input.grad += node.grad * ∂node/∂input`). `back()` undoes a step by
replaying the pass from the start, so the grads it leaves are exactly those of the earlier
step (no floating-point drift from subtracting). `explain()` writes the chain rule of the
current step with its numbers; in Jupyter the stepper shows the graph with the current node
highlighted, finished nodes with their final grads and pending ones greyed; `widget()` adds
Play, a slider and previous/next buttons.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from typing import Any

from .draw import DOT_INSTALL_HINT, _draw, format_number
from .engine import BackwardStep, backward_steps, topological_order
from .ops import is_number
from .value import Value

NOTEBOOKS_INSTALL_HINT = 'pip install "chainrule[notebooks]"'


class BackwardStepper:
    """The backward pass of `root`, one node per `step()`.

    Args:
        root: the output Value (a scalar loss).
        gradient: d(loss)/d(root) to start from (1.0 by default), as in `backward`.
        zero_grad: if True (the default), every leaf's grad starts at 0.0, so the pass shows
            one backward pass from scratch. If False, the leaves keep their grads and
            accumulate, exactly as `backward()` would.

    Attributes:
        position: how many steps have run (0 before the first, `len(stepper)` at the end).
        current: the `BackwardStep` just run, or None before the first step.
        order: the nodes in the order the pass visits them (the root first).

    Running to the end (`run()`) leaves exactly the grads `backward(root, gradient)` gives.
    """

    def __init__(self, root: Value, gradient: float = 1.0, *, zero_grad: bool = True) -> None:
        if not isinstance(root, Value):
            raise TypeError(f"BackwardStepper: root must be a Value, got {type(root).__name__}")
        if not is_number(gradient):
            raise TypeError(
                f"BackwardStepper: gradient must be a real number, got {type(gradient).__name__}"
            )
        self.root = root
        self.gradient = float(gradient)
        topo = topological_order(root)
        self.order: list[Value] = topo[::-1]
        self._rank = {v: i for i, v in enumerate(self.order)}
        self._names = {v: v.label or f"v{i}" for i, v in enumerate(topo)}
        # The text writes gradients as dL/dx, with L the root's label when that is a short
        # name ("loss", "o"); a formula such as "tanh(x * w + b)" would not read as dL.
        self.loss_name = root.label if re.fullmatch(r"[A-Za-z_]\w{0,11}", root.label) else "L"
        if zero_grad:
            for v in topo:
                v.grad = 0.0
        # The starting grads: backward resets intermediate nodes, leaves keep theirs.
        self._start = {v: (v.grad if v.is_leaf else 0.0) for v in topo}
        self.position = 0
        self.current: BackwardStep | None = None
        self._steps: Iterator[BackwardStep] | None = None
        self.reset()

    def __len__(self) -> int:
        """The number of steps in the whole pass (one per node)."""
        return len(self.order)

    @property
    def done(self) -> bool:
        """True when every node has been processed."""
        return self.position == len(self.order)

    # -- moving ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Go back to before the first step: the grads the pass started from."""
        for v, g in self._start.items():
            v.grad = g
        self._steps = backward_steps(self.root, self.gradient)
        self.position = 0
        self.current = None

    def step(self) -> BackwardStep:
        """Run the next step and return it.

        Raises:
            RuntimeError: the pass is already finished (use `back()` or `reset()`).
        """
        if self.done or self._steps is None:
            raise RuntimeError(
                f"BackwardStepper: the backward pass is finished ({len(self)} steps); "
                "use back() or reset() to go back"
            )
        self.current = next(self._steps)
        self.position += 1
        return self.current

    def back(self) -> BackwardStep | None:
        """Undo the last step; returns the new current step (None back at the start).

        The pass is replayed from the start up to the previous step, so every grad is
        exactly what it was then.

        Raises:
            RuntimeError: already at the start.
        """
        if self.position == 0:
            raise RuntimeError("BackwardStepper: already at the start; nothing to undo")
        self.goto(self.position - 1)
        return self.current

    def goto(self, position: int) -> BackwardStep | None:
        """Move to just after step `position` (0 = before the first step, len(self) = the end).

        Raises:
            ValueError: position outside 0..len(self).
        """
        if isinstance(position, bool) or not isinstance(position, int):
            raise TypeError(f"goto: position must be an int, got {type(position).__name__}")
        if not 0 <= position <= len(self):
            raise ValueError(f"goto: position must be in 0..{len(self)}, got {position}")
        if position < self.position:
            self.reset()
        while self.position < position:
            self.step()
        return self.current

    def run(self) -> None:
        """Run the remaining steps: the grads are then exactly those of `backward()`."""
        self.goto(len(self))

    # -- explaining ------------------------------------------------------------------------

    def name(self, v: Value) -> str:
        """How the text and the picture name `v`: its label, or `v<i>` (draw_dot's id)."""
        return self._names[v]

    def state(self, v: Value) -> str:
        """The node's state at this step: "done", "current" (the step just run) or "pending"."""
        rank = self._rank[v]
        if rank == self.position - 1:
            return "current"
        return "done" if rank < self.position else "pending"

    def explain(self) -> str:
        """The chain rule of the current step, with its numbers, as text.

        Gradients of the loss are written dL/dx, with L the root's label if it is a short
        name, else "L"; a node's local derivative is written with the partial sign, ∂c/∂a,
        so the two factors of the chain rule never share a symbol. Numbers are shown to 4
        significant digits. E.g. for c = a * b with dL/dc = 2.0:

            step 2 of 4: c = a * b, and dL/dc = 2.0 is complete
              dL/da += dL/dc * ∂c/∂a = 2.0 * -3.0 = -6.0    (∂c/∂a = b)
              dL/db += dL/dc * ∂c/∂b = 2.0 * 2.0 = 4.0    (∂c/∂b = a)
        """
        total = len(self)
        if self.current is None:
            return (
                f"step 0 of {total}: nothing done yet. The first step seeds "
                f"d{self.loss_name}/d{self.name(self.root)} = {format_number(self.gradient)}."
            )
        s = self.current
        node = self.name(s.node)
        L = self.loss_name
        head = f"step {self.position} of {total}: "
        if not s.inputs:
            return (
                f"{head}{node} is a leaf: d{L}/d{node} = {format_number(s.upstream)} is final, "
                "nothing to hand on"
            )
        names = [self.name(v) for v in s.inputs]
        where = (
            " (the seed: the output's gradient with respect to itself)"
            if s.node is self.root
            else " is complete"
        )
        lines = [
            f"{head}{node} = {_expression(s.node, names)}, and d{L}/d{node} = "
            f"{format_number(s.upstream)}{where}"
        ]
        for i, (child, local, contribution) in enumerate(
            zip(names, s.local_grads, s.contributions)
        ):
            formula = _local_formula(s.node, names, i)
            # The local derivative gets the partial sign: it is a property of this one
            # node (∂c/∂a), not a gradient of the loss (dL/da) like the other two factors.
            partial = f"∂{node}/∂{child}"
            why = f"    ({partial} = {formula})" if formula else ""
            lines.append(
                f"  d{L}/d{child} += d{L}/d{node} * {partial} = {format_number(s.upstream)} "
                f"* {format_number(local)} = {format_number(contribution)}{why}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BackwardStepper at step {self.position} of {len(self)}>\n{self.explain()}"

    # -- pictures --------------------------------------------------------------------------

    def draw(self, **kwargs: Any) -> Any:
        """The graph at this step (a graphviz Digraph): the current node highlighted, done
        nodes with their final grads, pending ones greyed with their grad so far.

        Keyword arguments go to `draw_dot` (rankdir, show_local_grads, max_nodes, ...).
        """
        title = self.explain().splitlines()[0]
        return _draw(self.root, state=self.state, title=title, **kwargs)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kw: Any) -> dict:
        """Jupyter's display: the explanation and the picture (text alone without graphviz)."""
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        with contextlib.suppress(ImportError):  # no graphviz package: the text says it all
            bundle["text/html"] = self._html()
        return bundle

    def _html(self) -> str:
        """The picture and the explanation as one HTML fragment (for the widget and Jupyter)."""
        import graphviz

        try:
            svg = self.draw().pipe(format="svg", encoding="utf-8")
            svg = svg[svg.find("<svg") :]  # drop the XML prolog: it is not valid inside HTML
        except graphviz.ExecutableNotFound:
            svg = f"<p>{html.escape(DOT_INSTALL_HINT)}</p>"
        return f"<pre>{html.escape(self.explain())}</pre>\n<div>{svg}</div>"

    def widget(self, interval_ms: int = 1000) -> Any:
        """An ipywidgets control: Play, a step slider, previous/next buttons, and the picture.

        Moving any control moves the stepper (`goto`) and redraws the picture in place.

        Args:
            interval_ms: time between steps while playing.
        Returns:
            An `ipywidgets.VBox`; its `.children[0].children` are (play, previous, slider,
            next) and `.children[1]` the HTML picture.
        Raises:
            ImportError: ipywidgets is missing (`pip install "chainrule[notebooks]"`).
        """
        try:
            import ipywidgets as widgets
        except ImportError as error:
            raise ImportError(
                f"BackwardStepper.widget needs ipywidgets: {NOTEBOOKS_INSTALL_HINT}"
            ) from error

        total = len(self)
        play = widgets.Play(value=self.position, min=0, max=total, step=1, interval=interval_ms)
        slider = widgets.IntSlider(value=self.position, min=0, max=total, description="step")
        previous = widgets.Button(description="previous", icon="step-backward")
        following = widgets.Button(description="next", icon="step-forward")
        picture = widgets.HTML(value=self._html())
        # A kernel-side link (not jslink), so setting either value from Python moves both.
        widgets.link((play, "value"), (slider, "value"))

        def on_change(change: dict[str, Any]) -> None:
            self.goto(change["new"])
            picture.value = self._html()

        slider.observe(on_change, names="value")
        previous.on_click(lambda _: setattr(slider, "value", max(0, slider.value - 1)))
        following.on_click(lambda _: setattr(slider, "value", min(total, slider.value + 1)))
        return widgets.VBox([widgets.HBox([play, previous, slider, following]), picture])


def _expression(v: Value, names: list[str]) -> str:
    """How v was computed, e.g. `a * b`, `tanh(e)`, `w·x+b(b, w0, w1, x0, x1)`."""
    assert v.op is not None
    it = iter(names)
    parts = [next(it) if isinstance(a, Value) else format_number(float(a)) for a in v.args]
    symbol = v.op.symbol
    if v.op.arity == 2 and not symbol.isalpha():  # + - * / ** between their operands
        return f"{parts[0]} {symbol} {parts[1]}"
    if v.op.arity == 1 and not symbol.isalpha():  # unary minus
        return f"{symbol}{parts[0]}"
    return f"{v.op.name}({', '.join(parts)})"


def _local_formula(v: Value, names: list[str], i: int) -> str:
    """The local derivative d(v)/d(input i) as the derivative table writes it, e.g. "b" for
    d(a*b)/da (`ops.Op.local_formula`); names are the names of v's input Values."""
    assert v.op is not None
    it = iter(names)
    texts = [next(it) if isinstance(a, Value) else format_number(float(a)) for a in v.args]
    positions = [k for k, a in enumerate(v.args) if isinstance(a, Value)]
    return v.op.local_formula(texts, positions[i], "out")
