"""`BackwardStepper`: walk through a backward pass one node at a time, in Jupyter, on a web
page, or in text.

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
current step with its numbers.

For the browser the pass is recorded once, when the stepper is made: every step's
explanation and the gradients it writes. The graph is laid out once by Graphviz, every node
and edge given an id; a step then only changes classes and texts in the browser, so nodes
never move and stepping needs no kernel round trip. `widget()` (an anywidget) and
`save_html(path)` (one self-contained page) show that record with the same front-end module,
`stepper_web/stepper.js` and `stepper.css`: read them next.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import html
import json
import re
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .draw import DOT_INSTALL_HINT, _draw, format_number, parameter_key
from .engine import BackwardStep, backward_steps, topological_order
from .files import atomic_write
from .ops import is_number
from .value import Value

NOTEBOOKS_INSTALL_HINT = 'pip install "chainrule[notebooks]"'

#: The front-end module (an anywidget ES module and its CSS), shared by widget and page.
WEB_DIR = Path(__file__).with_name("stepper_web")

#: A graph of more values than this is not drawn whole: Graphviz takes minutes over it and
#: no one can read it. The browser then shows each step's neighbourhood (the current node,
#: its inputs and its consumers) only, and says so.
PICTURE_LIMIT = 1500

#: Above this many values the layout limits Graphviz's slowest pass (see _layout_svg).
FAST_LAYOUT_OVER = 500

#: Seconds the stepper must stand still before a widget's static picture is redrawn.
FALLBACK_DELAY_S = 0.5

#: The most values the browser is sent at all (every step's state goes in one message).
BROWSER_LIMIT = 20_000

_SVG_NS = "http://www.w3.org/2000/svg"
ET.register_namespace("", _SVG_NS)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")


def _plain(x: float) -> float:
    """x, with -0.0 turned into 0.0: a learner reads "-0.0" as a bug."""
    return 0.0 if x == 0.0 else float(x)


def _num(x: float) -> list[str]:
    """A number for the browser: [4 significant digits, full precision for the hover]."""
    x = _plain(x)
    return [format_number(x), repr(x)]


@dataclass(frozen=True)
class _Edge:
    """One contribution of a step: `child.grad` goes from `before` to `after`."""

    child: Value
    position: int  # the argument position in node.args (constants count)
    local: float
    contribution: float
    before: float
    after: float
    running: bool  # child had a gradient already: the text shows the running sum


class BackwardStepper:
    """The backward pass of `root`, one node per `step()`.

    Args:
        root: the output Value (a scalar loss), made by an operation.
        gradient: d(loss)/d(root) to start from (1.0 by default), as in `backward`.
        zero_grad: if True (the default), every leaf's grad starts at 0.0, so the pass shows
            one backward pass from scratch. If False, the leaves keep their grads and
            accumulate, exactly as `backward()` would.

    Attributes:
        position: how many steps have run (0 before the first, `len(stepper)` at the end).
        current: the `BackwardStep` just run, or None before the first step.
        order: the nodes in the order the pass visits them (the root first).
        loss_name: how the text and the picture name the root ("L" unless its label is a
            short name such as "loss" or "o").
        neighbourhood_only: True for a graph of more than PICTURE_LIMIT values: the browser
            then shows each step's neighbourhood instead of the whole picture.

    Raises:
        TypeError: root is not a Value, or gradient is not a real number.
        ValueError: root is a leaf (no operation made it: there is no pass to step through).

    Running to the end (`run()`) leaves exactly the grads `backward(root, gradient)` gives.
    Every widget showing this stepper follows `step()`, `back()`, `goto()` and `reset()`,
    and moving a widget moves the stepper.
    """

    def __init__(self, root: Value, gradient: float = 1.0, *, zero_grad: bool = True) -> None:
        if not isinstance(root, Value):
            raise TypeError(f"BackwardStepper: root must be a Value, got {type(root).__name__}")
        if not is_number(gradient):
            raise TypeError(
                f"BackwardStepper: gradient must be a real number, got {type(gradient).__name__}"
            )
        if root.is_leaf:
            name = root.label or "the root"
            raise ValueError(
                f"BackwardStepper: {name} is a leaf (no operation made it), so there is no "
                "backward pass to step through; step through a Value computed from it, "
                "e.g. BackwardStepper(x * 2)"
            )
        self.root = root
        self.gradient = float(gradient)
        topo = topological_order(root)
        self._topo = topo
        self._index = {v: i for i, v in enumerate(topo)}
        self.order: list[Value] = topo[::-1]
        self._rank = {v: i for i, v in enumerate(self.order)}
        # The text writes gradients as dL/dx, with L the root's label when that is a short
        # name ("loss", "o"); a formula such as "tanh(x * w + b)" would not read as dL. The
        # root is called L in the text, so the picture calls it L too.
        self.loss_name = root.label if re.fullmatch(r"[A-Za-z_]\w{0,11}", root.label) else "L"
        self._names = {v: v.label or f"v{i}" for i, v in enumerate(topo)}
        self._names[root] = self.loss_name
        self.neighbourhood_only = len(topo) > PICTURE_LIMIT
        if zero_grad:
            for v in topo:
                v.grad = 0.0
        # The starting grads: backward resets intermediate nodes, leaves keep theirs.
        self._start = {v: (v.grad if v.is_leaf else 0.0) for v in topo}
        self._record = self._record_pass()
        self.position = 0
        self.current: BackwardStep | None = None
        self._steps: Iterator[BackwardStep] | None = None
        self._widgets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._svg: str | None = None
        self._reset()

    def __len__(self) -> int:
        """The number of steps in the whole pass (one per node)."""
        return len(self.order)

    @property
    def done(self) -> bool:
        """True when every node has been processed."""
        return self.position == len(self.order)

    def _record_pass(self) -> list[tuple[float, list[_Edge]]]:
        """Run the whole pass once and record each step: (upstream, edges); then undo it.

        The browser gets this record in one message. `after` is the grad the engine leaves;
        for an input used twice by one node (x * x) the first of its two contributions is
        added here by the same `+=` the engine does, so the numbers are the engine's.
        """
        for v, g in self._start.items():
            v.grad = g
        current = dict(self._start)
        touched: set[Value] = {v for v, g in self._start.items() if g != 0.0}
        record = []
        for s in backward_steps(self.root, self.gradient):
            positions = s.positions
            edges = []
            for child, position, local, contribution in zip(
                s.inputs, positions, s.local_grads, s.contributions
            ):
                before = current[child]
                after = before + contribution
                edges.append(
                    _Edge(child, position, local, contribution, before, after, child in touched)
                )
                current[child] = after
                touched.add(child)
            # The engine's own sums, exactly: the last contribution to each input.
            last: dict[Value, int] = {e.child: k for k, e in enumerate(edges)}
            for child, k in last.items():
                edges[k] = dataclasses.replace(edges[k], after=child.grad)
                current[child] = child.grad
            record.append((s.upstream, edges))
        for v, g in self._start.items():
            v.grad = g
        return record

    # -- moving ------------------------------------------------------------------------------

    def _reset(self) -> None:
        for v, g in self._start.items():
            v.grad = g
        self._steps = backward_steps(self.root, self.gradient)
        self.position = 0
        self.current = None

    def _step(self) -> BackwardStep:
        if self.done or self._steps is None:
            raise RuntimeError(
                f"BackwardStepper: the backward pass is finished ({len(self)} steps); "
                "use back() or reset() to go back"
            )
        self.current = next(self._steps)
        self.position += 1
        return self.current

    def _goto(self, position: int) -> None:
        if isinstance(position, bool) or not isinstance(position, int):
            raise TypeError(f"goto: position must be an int, got {type(position).__name__}")
        if not 0 <= position <= len(self):
            raise ValueError(f"goto: position must be in 0..{len(self)}, got {position}")
        if position < self.position:
            self._reset()
        while self.position < position:
            self._step()

    def _moved(self) -> None:
        """Tell every widget showing this stepper where it is now."""
        for w in list(self._widgets):
            w._follow(self.position)

    def reset(self) -> None:
        """Go back to before the first step: the grads the pass started from."""
        self._reset()
        self._moved()

    def step(self) -> BackwardStep:
        """Run the next step and return it.

        Raises:
            RuntimeError: the pass is already finished (use `back()` or `reset()`).
        """
        current = self._step()
        self._moved()
        return current

    def back(self) -> BackwardStep | None:
        """Undo the last step; returns the new current step (None back at the start).

        The pass is replayed from the start up to the previous step, so every grad is
        exactly what it was then.

        Raises:
            RuntimeError: already at the start.
        """
        if self.position == 0:
            raise RuntimeError("BackwardStepper: already at the start; nothing to undo")
        return self.goto(self.position - 1)

    def goto(self, position: int) -> BackwardStep | None:
        """Move to just after step `position` (0 = before the first step, len(self) = the end).

        Raises:
            TypeError: position is not an int.
            ValueError: position outside 0..len(self).
        """
        self._goto(position)
        self._moved()
        return self.current

    def run(self) -> None:
        """Run the remaining steps: the grads are then exactly those of `backward()`."""
        self.goto(len(self))

    # -- explaining ------------------------------------------------------------------------

    def name(self, v: Value) -> str:
        """How the text and the picture name `v`: the root's `loss_name`, else its label,
        else `v<i>` (draw_dot's id)."""
        return self._names[v]

    @staticmethod
    def _bracketed(name: str) -> str:
        """`name` in brackets if it is a formula (`x + 1`, `-x`: labels `chainrule step`
        gives), so that `dL/d(x + 1)` and `(x + 1) * y` read as meant; a single name, such
        as the parameter `layers.1.weight[3, 0]`, stays as it is."""
        outside_indices = re.sub(r"\[[^\]]*\]", "", name)
        return f"({name})" if re.search(r"[-+*/ ()]", outside_indices) else name

    def state(self, v: Value) -> str:
        """The node's state at this step: "done", "current" (the step just run) or "pending"."""
        rank = self._rank[v]
        if rank == self.position - 1:
            return "current"
        return "done" if rank < self.position else "pending"

    def _lines(self, position: int) -> list[list[Any]]:
        """The explanation of the state after `position` steps, as lines of segments.

        A segment is text (a str) or a number ([4 significant digits, full precision]), so
        that the browser can show the full number on hover; `explain()` joins the short
        forms. One source for the text, the widget and the page.
        """
        total = len(self)
        L = self.loss_name
        root = self._bracketed(self.name(self.root))
        if position == 0:
            return [
                [
                    f"step 0 of {total}: nothing done yet. The first step seeds d{L}/d{root} = ",
                    _num(self.gradient),
                    ".",
                ]
            ]
        node = self.order[position - 1]
        upstream, edges = self._record[position - 1]
        # The node as the picture titles it (left of "="); elsewhere a formula is bracketed.
        title = self.name(node)
        name = self._bracketed(title)
        head = f"step {position} of {total}: "
        if node.op is None:
            return [
                [
                    f"{head}{title} is a leaf: d{L}/d{name} = ",
                    _num(upstream),
                    " is final, nothing to hand on",
                ]
            ]
        names = [self._bracketed(self.name(e.child)) for e in edges]
        where = (
            " (the seed: the output's gradient with respect to itself)"
            if node is self.root
            else " is complete"
        )
        lines: list[list[Any]] = [
            [
                f"{head}{title} = {_expression(node, names)}, and d{L}/d{name} = ",
                _num(upstream),
                where,
            ]
        ]
        for i, (child, e) in enumerate(zip(names, edges)):
            formula = _local_formula(node, names, i, name)
            # The local derivative gets the partial sign: it is a property of this one node
            # (∂c/∂a), not a gradient of the loss (dL/da) like the other two factors.
            partial = f"∂{name}/∂{child}"
            line: list[Any] = [
                f"  d{L}/d{child} += d{L}/d{name} * {partial} = ",
                _num(upstream),
                " * ",
                _num(e.local),
                " = ",
                _num(e.contribution),
            ]
            if formula:
                line.append(f"    ({partial} = {formula})")
            if e.running:
                line += ["    running sum: ", _num(e.before), " + ", _num(e.contribution)]
                line += [" = ", _num(e.after)]
            lines.append(line)
        return lines

    def explain(self) -> str:
        """The chain rule of the current step, with its numbers, as text.

        Gradients of the loss are written dL/dx, with L the root's label if it is a short
        name, else "L"; a node's local derivative is written with the partial sign, ∂c/∂a,
        so the two factors of the chain rule never share a symbol. Numbers are shown to 4
        significant digits, and never as -0.0. Where an input gets its second contribution,
        the line ends with the running sum. E.g. for c = a * b with dL/dc = 2.0:

            step 2 of 4: c = a * b, and dL/dc = 2.0 is complete
              dL/da += dL/dc * ∂c/∂a = 2.0 * -3.0 = -6.0    (∂c/∂a = b)
              dL/db += dL/dc * ∂c/∂b = 2.0 * 2.0 = 4.0    (∂c/∂b = a)
        """
        return "\n".join(_join(line) for line in self._lines(self.position))

    def __repr__(self) -> str:
        return f"<BackwardStepper at step {self.position} of {len(self)}>\n{self.explain()}"

    # -- pictures --------------------------------------------------------------------------

    def _cluster_by(self) -> str | None:
        """Box neurons and layers when the graph has nn's parameter names."""
        labelled = any(v.is_leaf and parameter_key(v.label) for v in self._topo)
        return "label" if labelled else None

    def draw(self, **kwargs: Any) -> Any:
        """The graph at this step (a graphviz Digraph): the current node highlighted, done
        nodes with their final grads, pending ones greyed with their grad so far.

        Keyword arguments go to `draw_dot` (rankdir, show_local_grads, max_nodes, ...).
        """
        title = self.explain().splitlines()[0]
        return _draw(self.root, state=self.state, title=title, names=self.name, **kwargs)

    def _layout_svg(self) -> str:
        """The graph laid out once for the browser (SVG text, made on first use).

        Every node group has the id draw_dot gives it (v3, op3, c3_1, ...) and the class
        "done"; the edges into op3 are e3_0, e3_1 (by argument position) and op3 -> v3 is
        o3. Each grad field is laid out for the widest text it will hold, so that changing
        the text in the browser never needs a new layout.

        Raises:
            graphviz.ExecutableNotFound: Graphviz's `dot` is not installed.
        """
        if self._svg is None:
            widest = self._widest_grads()
            graph = _draw(
                self.root,
                # Drawn as done (each kind's colour); the browser's CSS greys pending nodes.
                state=lambda v: "done",
                names=self.name,
                grad_text=lambda v: f"grad {widest[v]}",
                svg_ids=True,
                stacked=True,
                max_nodes=None,
                cluster_by=self._cluster_by(),
            )
            if len(self._topo) > FAST_LAYOUT_OVER:
                # Fewer network-simplex passes for x coordinates: a 981-value graph (an MLP
                # 2-16-16-1 with expand=True) lays out in 5 s instead of 27, as large.
                graph.attr(nslimit="2")
            svg = graph.pipe(format="svg", encoding="utf-8")
            self._svg = svg[svg.find("<svg") :]  # the XML prolog is not valid inside HTML
        return self._svg

    def _widest_grads(self) -> dict[Value, str]:
        """The longest grad text each node shows during the pass."""
        widest = {v: format_number(_plain(g)) for v, g in self._start.items()}
        seed = format_number(_plain(self._record[0][0]))
        if len(seed) >= len(widest[self.root]):
            widest[self.root] = seed
        for _, edges in self._record:
            for e in edges:
                text = format_number(_plain(e.after))
                if len(text) >= len(widest[e.child]):
                    widest[e.child] = text
        return widest

    def _payload(self) -> dict[str, Any]:
        """Everything the browser needs, sent once: the SVG, the values, every step.

        Raises:
            ValueError: the graph has more than BROWSER_LIMIT values.
        """
        if len(self._topo) > BROWSER_LIMIT:
            raise ValueError(
                f"BackwardStepper: the graph has {len(self._topo)} values, more than the "
                f"{BROWSER_LIMIT} the browser view takes; step through it in Python "
                "(step(), explain()) or through an intermediate value"
            )
        index = self._index
        consumers: dict[Value, list[int]] = {v: [] for v in self._topo}
        for v in self._topo:
            for a in v.inputs:
                if index[v] not in consumers[a]:
                    consumers[a].append(index[v])
        by_label = self._cluster_by() is not None
        values = []
        for v in self._topo:
            values.append(
                {
                    "name": self.name(v),
                    "data": _num(v.data),
                    "grad0": _num(self._start[v]),
                    "kind": _kind(v, by_label),
                    "op": None if v.op is None else v.op.symbol,
                    "inputs": [index[a] for a in v.inputs],
                    "consumers": consumers[v],
                }
            )
        steps = []
        for k, node in enumerate(self.order):
            sets: list[list[Any]] = []
            upstream, record = self._record[k]
            if node is self.root:
                sets.append([index[node], _num(upstream)])
            edges = [[index[e.child], e.position, _num(e.after), _num(e.local)] for e in record]
            steps.append({"node": index[node], "sets": sets, "edges": edges})
        svg = None
        if not self.neighbourhood_only:
            svg = self._layout_svg()
        return {
            "total": len(self),
            "loss": self.loss_name,
            "root": index[self.root],
            "values": values,
            "steps": steps,
            "lines": [self._lines(p) for p in range(len(self) + 1)],
            "svg": svg,
            "picture_limit": PICTURE_LIMIT,
        }

    def _static_svg(self, position: int) -> str:
        """The laid-out picture at `position`, coloured with attributes (no CSS, no script),
        for places that run neither: a saved notebook on GitHub, a restarted kernel."""
        tree = ET.fromstring(self._layout_svg())
        states = {}
        grads = {i: g for i, g in ((self._index[v], g) for v, g in self._start.items())}
        for k in range(position):
            node = self.order[k]
            upstream, record = self._record[k]
            if node is self.root:
                grads[self._index[node]] = upstream
            for e in record:
                grads[self._index[e.child]] = e.after
        for k, node in enumerate(self.order):
            i = self._index[node]
            states[i] = "current" if k == position - 1 else "done" if k < position else "pending"
        fills = {"current": ("gold", "red"), "pending": ("#ececec", "#999999")}
        for g in tree.iter(f"{{{_SVG_NS}}}g"):
            owner = _owner(g.get("id", ""))
            if owner is None or owner not in states:
                continue
            state = states[owner]
            g.set("class", f"node {state}")
            for shape in g:
                tag = shape.tag.split("}")[-1]
                if tag in ("polygon", "ellipse", "path") and state in fills:
                    fill, stroke = fills[state]
                    if shape.get("fill") not in (None, "none"):
                        shape.set("fill", fill)
                    shape.set("stroke", stroke)
                if tag == "text" and (shape.text or "").startswith("grad "):
                    shape.text = f"grad {format_number(_plain(grads[owner]))}"
                if tag == "text" and state == "pending":
                    shape.set("fill", "#666666")
        return ET.tostring(tree, encoding="unicode")

    def _static_html(self, position: int | None = None, uid: str = "") -> str:
        """The picture and the explanation at `position` as one HTML fragment, no script."""
        import graphviz

        position = self.position if position is None else position
        text = "\n".join(_join(line) for line in self._lines(position))
        if self.neighbourhood_only:
            picture = (
                f"<p>(a graph of {len(self._topo)} values, more than {PICTURE_LIMIT}: "
                "no whole picture; the widget shows each step's neighbourhood)</p>"
            )
        else:
            try:
                svg = self._static_svg(position)
            except graphviz.ExecutableNotFound:
                picture = f"<p>{html.escape(DOT_INSTALL_HINT)}</p>"
            else:
                # An <img> of the SVG, not inline SVG: the HTML sanitisers of untrusted
                # notebooks (JupyterLab, GitHub) remove inline SVG but keep images.
                data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
                alt = html.escape(text.splitlines()[0], quote=True)
                picture = f'<img src="data:image/svg+xml;base64,{data}" alt="{alt}">'
        attr = f' data-stepper="{html.escape(uid)}"' if uid else ""
        return (
            f'<div class="chainrule-stepper-fallback"{attr}>'
            f"<pre>{html.escape(text)}</pre>\n<div>{picture}</div></div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kw: Any) -> dict:
        """Jupyter's display: the explanation and the picture (text alone without graphviz)."""
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        with contextlib.suppress(ImportError):  # no graphviz package: the text says it all
            bundle["text/html"] = self._static_html()
        return bundle

    def _html(self) -> str:
        """The static picture and explanation of this step (an HTML fragment)."""
        return self._static_html()

    # -- the browser ----------------------------------------------------------------------

    def widget(self, interval_ms: int = 1000) -> Any:
        """The interactive stepper for Jupyter (an anywidget), at this stepper's position.

        The picture fits the output's width, follows the current node (zoom with the
        buttons, the wheel or a pinch; drag to pan), and every step is shown without a
        round trip to the kernel. Buttons, a slider, a speed control and the keys
        (left/right arrows, space, Home/End once the stepper has focus; a click gives it)
        move it. The widget and this stepper stay in step both ways: `stepper.step()` in
        another cell moves the widget, moving the widget moves the stepper. A saved
        notebook shows a static picture and text of the latest step where widgets cannot
        run (GitHub, nbviewer, a restarted kernel).

        Args:
            interval_ms: time between steps while playing (the speed control changes it).
        Returns:
            A `StepperWidget` (anywidget.AnyWidget); its `position` is the step shown.
        Raises:
            ImportError: anywidget is missing (`pip install "chainrule[notebooks]"`).
            ValueError: the graph is over BROWSER_LIMIT values, or interval_ms < 1.
            graphviz.ExecutableNotFound: Graphviz's `dot` is not installed.
        """
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms < 1:
            raise ValueError(f"widget: interval_ms must be a positive int, got {interval_ms!r}")
        widget_class = _widget_class()
        payload = json.dumps(self._payload(), ensure_ascii=False)
        w = widget_class(
            payload=payload,
            position=self.position,
            interval_ms=interval_ms,
            uid=uuid.uuid4().hex,
        )
        w._stepper = self
        self._widgets.add(w)
        return w

    def save_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write the stepper as one self-contained web page: the SVG, every step and the
        script inline, no network and no kernel needed; the same controls as the widget.

        The page is written to a temporary file beside `path` and renamed over it, so
        `path` is either the whole new page or as it was.

        Args:
            path: the file to write (e.g. "steps.html").
            title: the page's title (default: "Backward pass of <root>").
        Returns:
            The path written.
        Raises:
            OSError: the directory is missing or not writable (the message names the path).
            ValueError: the graph is over BROWSER_LIMIT values.
            graphviz.ExecutableNotFound: Graphviz's `dot` is not installed.
        """
        path = Path(path)
        page = self.page_html(title=title)
        try:
            atomic_write(path, lambda f: f.write(page.encode("utf-8")))
        except OSError as error:
            reason = error.strerror or str(error)
            raise OSError(error.errno, f"save_html: cannot write {str(path)!r}: {reason}") from None
        return path

    def page_html(self, *, title: str | None = None) -> str:
        """The text of the page `save_html` writes (see there)."""
        title = title or f"Backward pass of {self.root.label or self.loss_name}"
        payload = json.dumps(self._payload(), ensure_ascii=False)
        script = (WEB_DIR / "stepper.js").read_text(encoding="utf-8")
        css = (WEB_DIR / "stepper.css").read_text(encoding="utf-8")
        # Inside <script>, "</" would end the element early: JSON and JS both read "<\/" as "</".
        data = payload.replace("</", "<\\/")
        module = json.dumps(script).replace("</", "<\\/")
        return _PAGE.format(
            title=html.escape(title),
            css=css.replace("</", "<\\/"),
            data=data,
            module=module,
            fallback=html.escape(self.explain()),
        )


def _join(line: list[Any]) -> str:
    """A line of segments as text: numbers in their short form."""
    return "".join(s if isinstance(s, str) else s[0] for s in line)


def _owner(svg_id: str) -> int | None:
    """The value index an SVG node group belongs to: v3, op3, c3_1, link3_0 -> 3."""
    match = re.fullmatch(r"(?:v|op)(\d+)|c(\d+)_\d+|link(\d+)_\d+", svg_id)
    if match is None:
        return None
    return int(next(g for g in match.groups() if g is not None))


def _kind(v: Value, by_label: bool) -> str:
    if v.op is not None:
        return "computed"
    return "parameter" if by_label and parameter_key(v.label) is not None else "leaf"


def _expression(v: Value, names: list[str]) -> str:
    """How v was computed, in the table's symbols: `a * b`, `tanh(e)`, `w·x+b: ...`."""
    assert v.op is not None
    it = iter(names)
    parts = [next(it) if isinstance(a, Value) else format_number(float(a)) for a in v.args]
    symbol = v.op.symbol
    if v.op.arity == 2 and not symbol.isalpha():  # + - * / ** between their operands
        return f"{parts[0]} {symbol} {parts[1]}"
    if v.op.arity == 1 and not symbol.isalpha():  # unary minus
        return f"{symbol}{parts[0]}"
    if v.op.name == "linear":
        n = (len(parts) - 1) // 2
        terms = [f"{w}*{x}" for w, x in zip(parts[1 : n + 1], parts[n + 1 :])]
        if n > 4:  # a wide neuron: its first two terms, the last one, and how many
            terms = [*terms[:2], f"... ({n} terms)", terms[-1]]
        return f"{symbol}: {' + '.join([*terms, parts[0]])}"
    return f"{symbol}({', '.join(parts)})"


def _local_formula(v: Value, names: list[str], i: int, out: str = "out") -> str:
    """The local derivative d(v)/d(input i) as the derivative table writes it, e.g. "b" for
    d(a*b)/da (`ops.Op.local_formula`).

    Args:
        v: the node; names: how to write each of its input Values, in order; i: which
            input; out: how to write v itself (its name), for rules such as exp's "out".
    """
    assert v.op is not None
    it = iter(names)
    texts = [next(it) if isinstance(a, Value) else format_number(float(a)) for a in v.args]
    positions = [k for k, a in enumerate(v.args) if isinstance(a, Value)]
    return v.op.local_formula(texts, positions[i], out)


# -- the widget ---------------------------------------------------------------------------


def _widget_class() -> type:
    """The anywidget class (made on first use: anywidget is imported lazily)."""
    global _WIDGET_CLASS
    if _WIDGET_CLASS is not None:
        return _WIDGET_CLASS
    try:
        import anywidget
        import traitlets
    except ImportError as error:
        raise ImportError(
            f"BackwardStepper.widget needs anywidget: {NOTEBOOKS_INSTALL_HINT}"
        ) from error

    class StepperWidget(anywidget.AnyWidget):
        """The stepper in Jupyter. `position` is the step shown, synced both ways."""

        _esm = WEB_DIR / "stepper.js"
        _css = WEB_DIR / "stepper.css"
        payload = traitlets.Unicode("").tag(sync=True)
        position = traitlets.Int(0).tag(sync=True)
        interval_ms = traitlets.Int(1000).tag(sync=True)
        uid = traitlets.Unicode("").tag(sync=True)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._stepper: BackwardStepper | None = None
            self._fallbacks: list[Any] = []
            self._pending: asyncio.TimerHandle | None = None
            self._following = False
            self.observe(self._on_position, names="position")

        def __repr__(self) -> str:
            # The text a viewer without widgets shows under the static picture.
            total = len(self._stepper) if self._stepper is not None else "?"
            return f"<BackwardStepper widget at step {self.position} of {total}>"

        def _on_position(self, change: dict[str, Any]) -> None:
            stepper = self._stepper
            if stepper is None or self._following:
                return
            if stepper.position != change["new"]:
                stepper.goto(change["new"])  # moves every other widget too
            self._update_fallbacks()

        def _follow(self, position: int) -> None:
            """The stepper moved (from Python or another widget): show its position."""
            self._following = True
            try:
                self.position = position
            finally:
                self._following = False
            self._update_fallbacks()

        def _update_fallbacks(self) -> None:
            """Redraw the static picture once the stepper has stood still for a moment.

            While playing, the widget moves several times a second, and the static
            picture of a big graph is a megabyte: it is sent once the stepping pauses
            (FALLBACK_DELAY_S), on the kernel's event loop; without a running loop, now.
            """
            if self._stepper is None or not self._fallbacks:
                return
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._send_fallbacks()
                return
            self._pending = loop.call_later(FALLBACK_DELAY_S, self._send_fallbacks)

        def _send_fallbacks(self) -> None:
            from IPython.display import HTML

            self._pending = None
            assert self._stepper is not None
            fallback = HTML(self._stepper._static_html(self.position, self.uid))
            for handle in self._fallbacks:
                handle.update(fallback)

        def _ipython_display_(self) -> None:
            """Show a static picture (for viewers without widgets), then the widget.

            The widget hides the static picture when it runs. The picture is updated as
            the stepper moves, so a saved notebook shows the step it was left at.
            """
            from IPython.display import HTML, display

            assert self._stepper is not None
            fallback = HTML(self._stepper._static_html(self.position, self.uid))
            handle = display(fallback, display_id=True)
            if handle is not None:
                self._fallbacks.append(handle)
            bundle = self._repr_mimebundle_()
            data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
            display(data, metadata=metadata, raw=True)

    _WIDGET_CLASS = StepperWidget
    return StepperWidget


_WIDGET_CLASS: type | None = None


# -- the page -----------------------------------------------------------------------------

# The page: the module's source is imported from a blob: URL (no file, no network), and
# given a small model with the anywidget API (get, set, on, save_changes) over the payload.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  margin: 1rem; }}
{css}
</style>
</head>
<body>
<div id="stepper"><noscript><pre>{fallback}</pre></noscript></div>
<script type="application/json" id="stepper-data">{data}</script>
<script type="module">
const source = {module};
const url = URL.createObjectURL(new Blob([source], {{ type: "text/javascript" }}));
const widget = (await import(url)).default;
const state = {{
  payload: document.getElementById("stepper-data").textContent,
  position: 0,
  interval_ms: 1000,
  uid: "",
}};
const listeners = {{}};
const model = {{
  get: (key) => state[key],
  set: (key, value) => {{
    const old = state[key];
    state[key] = value;
    if (old !== value) (listeners["change:" + key] || []).forEach((f) => f());
  }},
  save_changes: () => {{}},
  on: (name, f) => {{ (listeners[name] = listeners[name] || []).push(f); }},
  off: (name, f) => {{
    listeners[name] = (listeners[name] || []).filter((g) => g !== f);
  }},
}};
const el = document.getElementById("stepper");
el.textContent = "";
widget.render({{ model, el }});
</script>
</body>
</html>
"""
