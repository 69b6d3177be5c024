"""`Module`: the base class of every network piece, as in PyTorch's `torch.nn.Module`.

A module owns parameters (scalar `Value`s grouped into named arrays, PyTorch's tensors) and
child modules. From those two things it derives everything else:

- `named_parameters()`: `("layers.0.weight", array of Values of shape (out, in))`, ...;
- `parameters()`: every parameter `Value`, flat, in that same order (what an optimiser takes);
- `state_dict()` / `load_state_dict()`: the weights as numpy float64 arrays under PyTorch's
  names, so a trained MLP loads into the equivalent `torch.nn` module unchanged;
- `zero_grad()`, `train()` / `eval()` and a PyTorch-like `repr`.

A subclass says what it owns by overriding `_parameter_arrays()` (its own parameters) and, if
the automatic discovery is not what it wants, `named_children()`. Read next: `layers.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from autograd import Value
from autograd.ops import is_number


def real_array(value: Any, name: str) -> np.ndarray:
    """`value` (nested lists/tuples of numbers, or an array) as a float64 array, checked.

    Every entry must be a finite real number: bool is refused even though numpy would read
    `True` as 1.0 (a weight of `true` in a model file is corruption, not a weight), and so
    are NaN and infinities, strings and None.

    Args:
        value: nested lists or tuples of numbers, a numpy array, or anything `np.asarray`
            reads with a real dtype (a torch tensor, say).
        name: the parameter's name, for messages (e.g. "layers.0.weight").
    Returns:
        A new float64 array of the same shape.
    Raises:
        ValueError: a ragged nesting, or an entry that is not a finite real number (the
            parameter, the index and the entry are named).
    """
    if isinstance(value, (list, tuple)):
        # Walk the nesting ourselves: np.asarray([1.0, True]) would quietly give [1.0, 1.0].
        stack: list[tuple[tuple[int, ...], Any]] = [((), value)]
        while stack:
            index, item = stack.pop()
            if isinstance(item, (list, tuple)):
                # Reversed, so entries are checked in order and the first bad one is named.
                stack.extend(reversed([((*index, i), x) for i, x in enumerate(item)]))
            elif not is_number(item):
                raise ValueError(
                    f"{name}[{', '.join(map(str, index))}] is {item!r} "
                    f"({type(item).__name__}), expected a real number"
                )
    elif not is_number(value):
        probe = np.asarray(value)
        if probe.dtype.kind == "O":
            for index, item in np.ndenumerate(probe):
                if not is_number(item):
                    raise ValueError(
                        f"{name}[{', '.join(map(str, index))}] is {item!r} "
                        f"({type(item).__name__}), expected a real number"
                    )
        elif probe.dtype.kind not in "iuf":
            raise ValueError(f"{name} has dtype {probe.dtype}, expected real numbers")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{name} is not an array of real numbers ({e})") from None
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name}[{', '.join(map(str, index))}] is {float(arr[index])!r}, "
            "expected a finite number"
        )
    return arr


class Module:
    """Base class: parameters, children, state dict, train/eval mode.

    Children are found automatically: any attribute that is a `Module`, or a list or tuple
    of `Module`s (named `attr.0`, `attr.1`, ... like PyTorch's `ModuleList`).
    """

    training: bool = True

    # -- what a module owns ----------------------------------------------------------------

    def _parameter_arrays(self) -> dict[str, np.ndarray]:
        """This module's own parameters: name -> numpy object array of `Value`s.

        The default owns none. Subclasses return fresh arrays whose elements are the very
        `Value` objects they use in `__call__` (so updates to `.data` are seen by both).
        """
        return {}

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules as `(name, module)`, in attribute order."""
        for name, attr in vars(self).items():
            if isinstance(attr, Module):
                yield name, attr
            elif (
                isinstance(attr, (list, tuple))
                and attr
                and all(isinstance(m, Module) for m in attr)
            ):
                for i, m in enumerate(attr):
                    yield f"{name}.{i}", m

    def children(self) -> Iterator[Module]:
        """Direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def __call__(self, x: Any) -> Any:
        """The module's output for input `x` (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} does not define __call__")

    # -- parameters ------------------------------------------------------------------------

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """Every parameter array with its PyTorch-style name (`"layers.0.weight"`).

        Yields:
            `(name, array)`, where `array` is a numpy object array of `Value`s: a weight has
            shape `(out_features, in_features)`, a bias `(out_features,)`.
        """
        for name, arr in self._parameter_arrays().items():
            yield prefix + name, arr
        for child_name, child in self.named_children():
            yield from child.named_parameters(prefix + child_name + ".")

    def parameters(self) -> list[Value]:
        """Every parameter `Value`, flat: the arrays of `named_parameters()` in row-major order."""
        return [v for _, arr in self.named_parameters() for v in arr.flat]

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to 0.0 (call before each `backward()`)."""
        for p in self.parameters():
            p.grad = 0.0

    def _label_parameters(self) -> None:
        """Label each parameter with its name and index, e.g. `layers.0.weight[3, 1]`.

        Graph pictures and `backward_steps` show labels, so a learner sees which weight
        a node is. Constructors call this once the module is complete.
        """
        for name, arr in self.named_parameters():
            for index, v in np.ndenumerate(arr):
                v.label = f"{name}[{', '.join(str(i) for i in index)}]"

    # -- state dict ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights as `{name: float64 array}`, copies, under PyTorch's names and shapes."""
        return {
            name: np.array([v.data for v in arr.flat], dtype=np.float64).reshape(arr.shape)
            for name, arr in self.named_parameters()
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy weights from `state_dict` into this module's parameters.

        Every name and shape is checked before anything changes: on any mismatch this
        raises and the module keeps its old weights.

        Args:
            state_dict: `{name: array-like of real numbers}`, as `state_dict()` returns.
        Raises:
            ValueError: a missing or unexpected name (all listed), a shape that differs
                (name and both shapes), or an entry that is not a finite real number
                (NaN, inf, bool, text; the parameter and index are named).
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise ValueError(f"load_state_dict: {'; '.join(parts)}")
        arrays: dict[str, np.ndarray] = {}
        for name, params in own.items():
            try:
                arr = real_array(state_dict[name], name)
            except ValueError as e:
                raise ValueError(f"load_state_dict: {e}") from None
            if arr.shape != params.shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {arr.shape}, "
                    f"the model expects {params.shape}"
                )
            arrays[name] = arr
        # Everything checked: now change the model.
        for name, params in own.items():
            for v, x in zip(params.flat, arrays[name].flat):
                v.data = float(x)

    # -- modes -------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all below it (PyTorch's `train()`)."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Set evaluation mode (`train(False)`)."""
        return self.train(False)

    # -- display -------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in `repr` (override in subclasses)."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        if self.extra_repr():
            lines.append("  " + self.extra_repr())
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
