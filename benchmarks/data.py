"""The inputs every engine receives: plain floats from seeded generators.

Each engine runs in its own process, so every input is regenerated from a fixed seed there;
the same seed gives the same floats in every process, so the engines compute the very same
arithmetic and their results can be compared to a tight tolerance.
"""

from __future__ import annotations

import itertools
import math
import random

SEED = 1234

#: The chain's starting leaf (W1 and the million-node chain).
CHAIN_START = 0.3
#: W1's step: y = y * CHAIN_FACTOR + CHAIN_OFFSET.
CHAIN_FACTOR = 1.0001
CHAIN_OFFSET = 0.5

#: W3/W6's network: MLP(2, [16, 16, 1]), ReLU on the hidden layers, linear output.
MLP_SIZES = (2, 16, 16, 1)
#: W3/W6's loss: mean(relu(1 - y * score)) + L2 * sum(p * p) (micrograd's demo notebook).
L2 = 1e-4


def learning_rate(step: int) -> float:
    """SGD's learning rate at `step` (0-based): 1.0 - 0.9 * step / 100 (micrograd's demo)."""
    return 1.0 - 0.9 * step / 100


def vectors(n: int, seed: int = SEED) -> tuple[list[float], list[float]]:
    """W2's operands: two lists of `n` floats drawn uniformly from [-1, 1]."""
    rng = random.Random(seed)
    a = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    b = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    return a, b


def transcendental_inputs(n: int, seed: int = SEED) -> list[float]:
    """W5's leaves: `n` floats drawn uniformly from [-3, 3]."""
    rng = random.Random(seed + 5)
    return [rng.uniform(-3.0, 3.0) for _ in range(n)]


Layer = tuple[list[list[float]], list[float]]


def mlp_weights(sizes: tuple[int, ...] = MLP_SIZES, seed: int = SEED) -> list[Layer]:
    """Initial weights of an MLP as floats: per layer (W[out][in], b[out]).

    Weights uniform in [-1, 1] and biases 0, as micrograd's `Neuron` initialises them.
    """
    rng = random.Random(seed + 3)
    layers: list[Layer] = []
    for nin, nout in itertools.pairwise(sizes):
        weight = [[rng.uniform(-1.0, 1.0) for _ in range(nin)] for _ in range(nout)]
        layers.append((weight, [0.0] * nout))
    return layers


def flatten(layers: list[Layer]) -> list[float]:
    """Parameters in micrograd's order: for each layer, each neuron's weights then its bias."""
    flat: list[float] = []
    for weight, bias in layers:
        for row, b in zip(weight, bias):
            flat.extend(row)
            flat.append(b)
    return flat


def moons(n: int, noise: float = 0.1, seed: int = SEED) -> tuple[list[list[float]], list[float]]:
    """Two interleaving half circles, labels -1 and +1 (W3 and W6's data).

    The formula of scikit-learn's `make_moons` (outer arc (cos t, sin t), inner arc
    (1 - cos t, 1 - sin t - 0.5), t evenly spaced over [0, pi], Gaussian noise), written out so
    the benchmarks need no scikit-learn; not shuffled.

    Returns:
        (X, y): X a list of `n` [x0, x1] points, y a list of `n` labels in {-1.0, +1.0}.
    """
    rng = random.Random(seed + 7)
    n_outer = n // 2
    n_inner = n - n_outer
    xs: list[list[float]] = []
    ys: list[float] = []
    for k in range(n_outer):
        t = math.pi * k / max(n_outer - 1, 1)
        xs.append([math.cos(t), math.sin(t)])
        ys.append(-1.0)
    for k in range(n_inner):
        t = math.pi * k / max(n_inner - 1, 1)
        xs.append([1.0 - math.cos(t), 1.0 - math.sin(t) - 0.5])
        ys.append(1.0)
    for point in xs:
        point[0] += rng.gauss(0.0, noise)
        point[1] += rng.gauss(0.0, noise)
    return xs, ys
