"""Neuron, Layer, MLP: the building blocks of a network, smallest first.

A `Neuron` computes `activation(b + sum_i w_i * x_i)`. By default the weighted sum is ONE
graph node (`autograd.linear`), which has the same value and gradients as the chain of `*`
and `+` it stands for and keeps training fast; `expand=True` builds that chain instead, so
a picture of the graph shows every multiplication (for teaching).

A `Layer` is `nout` neurons reading the same inputs; its parameters are PyTorch's
`weight` (shape `(nout, nin)`, one row per neuron) and `bias` (shape `(nout,)`). An `MLP`
is a list of layers; its state dict uses `nn.Linear`'s names (`layers.0.weight`), so it
loads into `torch.nn.ModuleList([nn.Linear(...), ...])` with functional activations.

Read next: `losses.py`, then `optim.py` and `train.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

import autograd
from autograd import Value
from autograd.ops import is_number

from .init import init_linear
from .module import Module

# -----------------------------------------------------------------------------------------
# Activations
# -----------------------------------------------------------------------------------------


# Named functions, not lambdas, so a module (and its activations) can be pickled.


def _np_relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def _np_leaky_relu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, 0.01 * z)


def _np_sigmoid(z: np.ndarray) -> np.ndarray:
    # Two branches so exp never overflows, like the engine's sigmoid.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_np_erfc = np.vectorize(math.erfc, otypes=[float])


def _np_gelu(z: np.ndarray) -> np.ndarray:
    # Exact GELU, x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2, as the engine computes it.
    return z * (0.5 * _np_erfc(-z / math.sqrt(2.0)))


@dataclass(frozen=True)
class Activation:
    """An activation function in three forms.

    Attributes:
        name: its name ("relu", ...), or the callable's `__name__`.
        value: on one `Value` (or float), returning a `Value`: used in training.
        numpy: on a float64 array, elementwise: used for fast plots and predictions.
    """

    name: str
    value: Callable[[Any], Any]
    numpy: Callable[[np.ndarray], np.ndarray]

    def __reduce__(self) -> str | tuple[Any, ...]:
        # A named activation unpickles as the very entry of ACTIVATIONS, so `MLP.config()`
        # still recognises it (it checks identity) and the model can still be saved.
        if ACTIVATIONS.get(self.name) is self:
            return (get_activation, (self.name,))
        return (Activation, (self.name, self.value, self.numpy))


def _identity(x: Any) -> Any:
    return x


#: The named activations. `leaky_relu` uses PyTorch's default slope 0.01; `gelu` is exact.
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", autograd.relu, _np_relu),
    "tanh": Activation("tanh", autograd.tanh, np.tanh),
    "sigmoid": Activation("sigmoid", autograd.sigmoid, _np_sigmoid),
    "leaky_relu": Activation("leaky_relu", autograd.leaky_relu, _np_leaky_relu),
    "gelu": Activation("gelu", autograd.gelu, _np_gelu),
    "linear": Activation("linear", _identity, _identity),
}


def get_activation(activation: str | Callable[[Any], Any] | None) -> Activation:
    """Look up an activation by name, or wrap a callable; None means "linear".

    A callable gets a Value and returns a Value; for numpy it is applied element by element
    to floats (so it should accept floats too, as `autograd.tanh` etc. do).

    Raises:
        ValueError: an unknown name (the known ones are listed).
        TypeError: neither a string, a callable nor None.
    """
    if activation is None:
        return ACTIVATIONS["linear"]
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: unknown name {activation!r}; choose one of {sorted(ACTIVATIONS)}"
            )
        return ACTIVATIONS[activation]
    if callable(activation):
        name = getattr(activation, "__name__", type(activation).__name__)
        return Activation(name, activation, np.vectorize(activation, otypes=[float]))
    raise TypeError(f"activation: expected a name or a callable, got {type(activation).__name__}")


# -----------------------------------------------------------------------------------------
# Inputs
# -----------------------------------------------------------------------------------------


def _as_inputs(x: Any, nin: int, where: str) -> list[Any]:
    """The inputs as a list of floats/Values of length `nin`; a bare scalar when nin == 1."""
    if isinstance(x, Value) or is_number(x):
        xs: list[Any] = [x]
    elif isinstance(x, np.ndarray):
        if x.ndim > 1:
            raise ValueError(f"{where}: expected one sample (a 1-D input), got shape {x.shape}")
        # tolist() turns numpy scalars into Python floats: the cheapest operands there are.
        xs = x.reshape(-1).tolist()
    elif isinstance(x, (Set, Mapping)):
        # A set (or dict) has no order that says which input is x[0]: list() would
        # silently pick one.
        raise TypeError(
            f"{where}: expected an ordered sequence of {nin} numbers or Values, got "
            f"{type(x).__name__}, which is unordered"
        )
    else:
        try:
            xs = list(x)
        except TypeError:
            raise TypeError(
                f"{where}: expected a sequence of {nin} numbers or Values, got {type(x).__name__}"
            ) from None
    if len(xs) != nin:
        raise ValueError(f"{where}: expected {nin} inputs (nin={nin}), got {len(xs)}")
    return xs


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# -----------------------------------------------------------------------------------------
# Neuron, Layer, MLP
# -----------------------------------------------------------------------------------------


class Neuron(Module):
    """One neuron: `activation(b + sum_i w_i * x_i)`.

    Args:
        nin: number of inputs.
        activation: a name ("relu", "tanh", "sigmoid", "leaky_relu", "gelu", "linear"),
            a callable Value -> Value, or None (linear).
        init: "kaiming" (PyTorch's nn.Linear default), "xavier" or "micrograd"; see `nn.init`.
        seed: an int or a numpy Generator, for reproducible weights.
        expand: build the weighted sum from single `*` and `+` nodes (for pictures) instead
            of one `linear` node. Values and gradients are the same either way.

    Parameters (state dict): `weight` of shape (1, nin) and `bias` of shape (1,), the same as
    `torch.nn.Linear(nin, 1)`.
    """

    def __init__(
        self,
        nin: int,
        activation: str | Callable[[Any], Any] | None = "relu",
        init: str = "kaiming",
        seed: int | np.random.Generator | None = None,
        expand: bool = False,
    ) -> None:
        if not isinstance(nin, int) or isinstance(nin, bool) or nin < 1:
            raise ValueError(f"Neuron: nin must be a positive int, got {nin!r}")
        weight, bias = init_linear(init, nin, 1, _rng(seed))
        self._setup(weight[0], float(bias[0]), activation, expand)
        self._label_parameters()

    @classmethod
    def _from_weights(
        cls,
        weight: np.ndarray,
        bias: float,
        activation: str | Callable[[Any], Any] | None,
        expand: bool,
    ) -> Neuron:
        neuron = cls.__new__(cls)
        neuron._setup(weight, bias, activation, expand)
        return neuron

    def _setup(
        self,
        weight: np.ndarray,
        bias: float,
        activation: str | Callable[[Any], Any] | None,
        expand: bool,
    ) -> None:
        self.nin = len(weight)
        self.weight = [Value(float(w)) for w in weight]
        self.bias = Value(bias)
        self.activation = get_activation(activation)
        self.expand = expand

    def _parameter_arrays(self) -> dict[str, np.ndarray]:
        weight = np.empty((1, self.nin), dtype=object)
        weight[0, :] = self.weight
        bias = np.empty(1, dtype=object)
        bias[0] = self.bias
        return {"weight": weight, "bias": bias}

    def _forward(self, xs: Sequence[Any]) -> Any:
        if self.expand:
            # micrograd's form: one node per product and per addition.
            z: Any = self.bias
            for w, x in zip(self.weight, xs):
                z = z + w * x
        else:
            z = autograd.linear(self.weight, xs, self.bias)
        return self.activation.value(z)

    def __call__(self, x: Any) -> Any:
        """The neuron's output Value for one sample `x` (a sequence of nin numbers/Values).

        Raises:
            ValueError: when `x` does not have `nin` elements (both lengths named).
        """
        return self._forward(_as_inputs(x, self.nin, "Neuron"))

    def extra_repr(self) -> str:
        return f"in_features={self.nin}, activation={self.activation.name}"


class Layer(Module):
    """`nout` neurons that read the same `nin` inputs; returns a list of `nout` Values.

    Args: as `Neuron`, plus `nout`. Parameters (state dict): `weight` of shape (nout, nin)
    (row i is neuron i's weights) and `bias` of shape (nout,), as `torch.nn.Linear(nin, nout)`.
    """

    def __init__(
        self,
        nin: int,
        nout: int,
        activation: str | Callable[[Any], Any] | None = "relu",
        init: str = "kaiming",
        seed: int | np.random.Generator | None = None,
        expand: bool = False,
    ) -> None:
        for name, n in (("nin", nin), ("nout", nout)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Layer: {name} must be a positive int, got {n!r}")
        self.nin = nin
        self.nout = nout
        weight, bias = init_linear(init, nin, nout, _rng(seed))
        self.neurons = [
            Neuron._from_weights(weight[i], float(bias[i]), activation, expand) for i in range(nout)
        ]
        self.activation = self.neurons[0].activation
        self._label_parameters()

    def named_children(self) -> Iterator[tuple[str, Module]]:
        # The neurons are the rows of this layer's weight, not separate modules: the state
        # dict says `weight`, as nn.Linear does, not `neurons.0.weight`.
        return iter(())

    def _parameter_arrays(self) -> dict[str, np.ndarray]:
        weight = np.empty((self.nout, self.nin), dtype=object)
        bias = np.empty(self.nout, dtype=object)
        for i, n in enumerate(self.neurons):
            weight[i, :] = n.weight
            bias[i] = n.bias
        return {"weight": weight, "bias": bias}

    @property
    def expand(self) -> bool:
        """Whether the neurons build their weighted sums from single `*` and `+` nodes."""
        return self.neurons[0].expand

    @expand.setter
    def expand(self, value: bool) -> None:
        for n in self.neurons:
            n.expand = value

    def _forward(self, xs: Sequence[Any]) -> list[Any]:
        return [n._forward(xs) for n in self.neurons]

    def __call__(self, x: Any) -> list[Any]:
        """The layer's `nout` output Values (always a list, even for one neuron).

        Raises:
            ValueError: when `x` does not have `nin` elements (both lengths named).
        """
        return self._forward(_as_inputs(x, self.nin, "Layer"))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.nin}, out_features={self.nout}, activation={self.activation.name}"
        )


class MLP(Module):
    """A multi-layer perceptron: layers of sizes `nouts`, reading `nin` inputs.

    Args:
        nin: number of inputs.
        nouts: the sizes of the layers, e.g. `[16, 16, 1]`.
        activation: for every layer but the last (a name, a callable, or None).
        output_activation: for the last layer; None means linear (logits or scores, which
            is what the losses expect).
        init: "kaiming" (PyTorch's nn.Linear default), "xavier" or "micrograd".
        seed: an int or a numpy Generator; the same seed gives the same weights.
        expand: build weighted sums from single `*` and `+` nodes (for pictures).

    Calling it on one sample returns a single Value when the last layer has one neuron,
    else a list of Values. A bare number is accepted when `nin == 1`.

    The state dict (`layers.0.weight`, `layers.0.bias`, ...) loads into
    `torch.nn.ModuleList([nn.Linear(nin, nouts[0]), ...])` with the same activations.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str | Callable[[Any], Any] | None = "relu",
        output_activation: str | Callable[[Any], Any] | None = None,
        init: str = "kaiming",
        seed: int | np.random.Generator | None = None,
        expand: bool = False,
    ) -> None:
        nouts = list(nouts)
        if not nouts:
            raise ValueError("MLP: nouts must list at least one layer size, got []")
        rng = _rng(seed)
        sizes = [nin, *nouts]
        self.nin = nin
        self.nouts = nouts
        self.init = init
        self.layers = [
            Layer(
                sizes[i],
                sizes[i + 1],
                activation=activation if i < len(nouts) - 1 else output_activation,
                init=init,
                seed=rng,
                expand=expand,
            )
            for i in range(len(nouts))
        ]
        self.activation = get_activation(activation)
        self.output_activation = get_activation(output_activation)
        self._label_parameters()

    @property
    def expand(self) -> bool:
        """Whether neurons build their weighted sums from single `*` and `+` nodes."""
        return self.layers[0].expand

    @expand.setter
    def expand(self, value: bool) -> None:
        for layer in self.layers:
            layer.expand = value

    def __call__(self, x: Any) -> Any:
        """The network's output for one sample: one Value if the last layer has one neuron,
        else a list of Values.

        Raises:
            ValueError: when `x` does not have `nin` elements (both lengths named).
        """
        xs: list[Any] = _as_inputs(x, self.nin, "MLP")
        for layer in self.layers:
            xs = layer._forward(xs)
        return xs[0] if len(xs) == 1 else xs

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this architecture (for saving).

        Raises:
            ValueError: when an activation is a callable, which cannot be saved by name.
        """
        for role, act in (
            ("activation", self.activation),
            ("output_activation", self.output_activation),
        ):
            if act.name not in ACTIVATIONS or ACTIVATIONS[act.name] is not act:
                raise ValueError(
                    f"MLP.config: {role} {act.name!r} is a callable; only named activations "
                    f"({sorted(ACTIVATIONS)}) can be saved"
                )
        return {
            "nin": self.nin,
            "nouts": list(self.nouts),
            "activation": self.activation.name,
            "output_activation": self.output_activation.name,
        }

    def forward_numpy(self, X: Any) -> np.ndarray:
        """The network on a batch with numpy, no Values: fast, for plots and predictions.

        Args:
            X: array-like of shape (n_samples, nin).
        Returns:
            A float64 array of shape (n_samples, nouts[-1]).
        """
        h = np.asarray(X, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != self.nin:
            raise ValueError(
                f"MLP.forward_numpy: expected shape (n_samples, {self.nin}), got {h.shape}"
            )
        state = self.state_dict()
        for i, layer in enumerate(self.layers):
            h = layer.activation.numpy(
                h @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
            )
        return h

    def extra_repr(self) -> str:
        return ""
