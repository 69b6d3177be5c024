"""Initialisation schemes: the starting weights of a layer, drawn from a seeded numpy Generator.

Each scheme maps `(fan_in, fan_out, rng)` to a weight array of shape `(fan_out, fan_in)`
(PyTorch's layout) and a bias array of shape `(fan_out,)`:

- `"micrograd"`: weights uniform(-1, 1), bias 0, as in micrograd's `Neuron`;
- `"xavier"`: Glorot & Bengio (2010), weights uniform(-a, a), a = gain * sqrt(6 / (fan_in +
  fan_out)), bias 0 (torch.nn.init.xavier_uniform_);
- `"kaiming"`: what PyTorch's `nn.Linear` does by default: `kaiming_uniform_(a=sqrt(5))`
  (He et al. 2015), which works out to weights uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), and
  the bias uniform over the same interval.

The weights are drawn first, then the bias, so a seed fixes both.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def uniform(
    shape: tuple[int, ...], rng: np.random.Generator, a: float = -1.0, b: float = 1.0
) -> np.ndarray:
    """Numbers drawn uniformly from [a, b) with `rng` (torch.nn.init.uniform_).

    Returns a float64 array of the given shape.
    """
    return rng.uniform(a, b, size=shape)


def xavier_uniform(
    shape: tuple[int, int], rng: np.random.Generator, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
    networks", AISTATS 2010. `shape` is `(fan_out, fan_in)`, as torch.nn.init.xavier_uniform_.
    """
    fan_out, fan_in = shape
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)


def kaiming_uniform(
    shape: tuple[int, int], rng: np.random.Generator, a: float = math.sqrt(5.0)
) -> np.ndarray:
    """Kaiming/He uniform for leaky-relu slope `a`: U(-bound, bound), fan-in mode.

    bound = gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + a**2)) (He, Zhang, Ren & Sun,
    "Delving Deep into Rectifiers", ICCV 2015; torch.nn.init.kaiming_uniform_). The default
    a = sqrt(5) is PyTorch's `nn.Linear` default and gives bound = 1 / sqrt(fan_in).
    `shape` is `(fan_out, fan_in)`.
    """
    fan_in = shape[1]
    gain = math.sqrt(2.0 / (1.0 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape)


def _micrograd(fan_in: int, fan_out: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return uniform((fan_out, fan_in), rng), np.zeros(fan_out)


def _xavier(fan_in: int, fan_out: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return xavier_uniform((fan_out, fan_in), rng), np.zeros(fan_out)


def _kaiming(fan_in: int, fan_out: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    # torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)), then the bias from
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    weight = kaiming_uniform((fan_out, fan_in), rng)
    bound = 1.0 / math.sqrt(fan_in)
    return weight, rng.uniform(-bound, bound, size=fan_out)


#: Scheme name -> function (fan_in, fan_out, rng) -> (weight (fan_out, fan_in), bias (fan_out,)).
SCHEMES: dict[str, Callable[[int, int, np.random.Generator], tuple[np.ndarray, ...]]] = {
    "kaiming": _kaiming,
    "xavier": _xavier,
    "micrograd": _micrograd,
}


def init_linear(
    scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Starting weight `(fan_out, fan_in)` and bias `(fan_out,)` for one layer.

    Args:
        scheme: "kaiming" (PyTorch's nn.Linear default), "xavier" or "micrograd".
        fan_in, fan_out: the layer's input and output sizes.
        rng: the numpy Generator to draw from (weights first, then bias).
    Raises:
        ValueError: for an unknown scheme (the known ones are listed).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init: unknown scheme {scheme!r}; choose one of {sorted(SCHEMES)}")
    weight, bias = SCHEMES[scheme](fan_in, fan_out, rng)
    return weight, bias
