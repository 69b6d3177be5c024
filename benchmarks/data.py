"""The inputs every engine receives: plain floats from seeded generators.

Each engine runs in its own process, so every input is regenerated from a fixed seed there;
the same seed gives the same floats in every process, so the engines compute the very same
arithmetic and their results can be compared to a tight tolerance.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


# -----------------------------------------------------------------------------------------
# Training through nn: W6, and the breast_cancer- and digits-size cases
# -----------------------------------------------------------------------------------------

DATASETS = Path(__file__).resolve().parent.parent / "nn" / "datasets"
#: The real-data cases: SGD with weight decay 1e-4 (added to the gradient, as torch.optim.SGD
#: does) at a constant learning rate 0.1, full batch.
TRAIN_LR = 0.1
TRAIN_WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class Training:
    """One training recipe, the same in every engine.

    Attributes:
        sizes: the MLP's layer sizes (ReLU between layers, linear output).
        loss: "hinge" (labels -1/+1), "bce" (labels 0/1, logits) or "cross_entropy" (class
            indices); each the mean over the samples.
        l2: a penalty l2 * sum(p**2) added to the loss (micrograd's demo; W6).
        weight_decay: added to the gradient as weight_decay * p (torch.optim.SGD).
        lr: the learning rate of step k.
        X, y: the samples and labels; layers: the initial weights, per layer (W, b).
    """

    sizes: tuple[int, ...]
    loss: str
    l2: float
    weight_decay: float
    lr: Callable[[int], float]
    X: list[list[float]]
    y: list[float]
    layers: list[Layer]


def _constant_lr(step: int) -> float:
    return TRAIN_LR


def kaiming_weights(sizes: tuple[int, ...], seed: int = SEED) -> list[Layer]:
    """Initial weights as torch.nn.Linear draws them: weights and biases uniform in
    [-1/sqrt(fan_in), 1/sqrt(fan_in)]."""
    rng = random.Random(seed + 11)
    layers: list[Layer] = []
    for nin, nout in itertools.pairwise(sizes):
        bound = 1.0 / math.sqrt(nin)
        weight = [[rng.uniform(-bound, bound) for _ in range(nin)] for _ in range(nout)]
        layers.append((weight, [rng.uniform(-bound, bound) for _ in range(nout)]))
    return layers


def real_data(name: str, n: int | None = None) -> tuple[list[list[float]], list[float]]:
    """A bundled CSV (`nn/datasets/`), its features standardised (column mean 0, standard
    deviation 1; a constant column is left at 0), the first `n` rows.

    breast_cancer's labels are 1.0 for malignant and 0.0 for benign; digits' the digit.
    """
    with open(DATASETS / f"{name}.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    if n is not None:
        rows = rows[:n]
    X = [[float(c) for c in r[:-1]] for r in rows]
    if name == "breast_cancer":
        y = [1.0 if r[-1] == "malignant" else 0.0 for r in rows]
    else:
        y = [float(r[-1]) for r in rows]
    columns = list(zip(*X))
    means = [math.fsum(c) / len(c) for c in columns]
    stds = [math.sqrt(math.fsum((v - m) ** 2 for v in c) / len(c)) for c, m in zip(columns, means)]
    X = [[(v - m) / s if s > 0 else 0.0 for v, m, s in zip(r, means, stds)] for r in X]
    return X, y


#: The real-data cases: name -> (data set, MLP sizes, loss).
REAL_CASES = {
    "BC": ("breast_cancer", (30, 16, 16, 1), "bce"),
    "DIGITS": ("digits", (64, 32, 10), "cross_entropy"),
}

#: Steps the slow engines actually run at full size; their times are scaled to the full run.
PARTIAL = {
    ("BC", "micrograd"): 1,
    ("DIGITS", "micrograd"): 1,
    ("BC", "values"): 10,
    ("DIGITS", "values"): 2,
}
#: Samples micrograd's one digits step runs on (a whole step would build 8.6 million nodes,
#: about 6 GB); its time is scaled by samples too. The cost per sample is the same for every
#: sample, and micrograd slows as its graph grows, so the scaled time is a lower bound.
PARTIAL_SAMPLES = {("DIGITS", "micrograd"): 200}


def partial_steps(case: str, engine: str, steps: int) -> int:
    """How many of a case's `steps` `engine` runs (the rest are extrapolated)."""
    return min(steps, PARTIAL.get((case, engine), steps))


def partial_samples(case: str, engine: str, samples: int) -> int:
    """How many of a case's samples `engine` runs on (the rest are extrapolated)."""
    return min(samples, PARTIAL_SAMPLES.get((case, engine), samples))


def training(case: str, n: int) -> Training:
    """The recipe of a training case ("W6", "BC", "DIGITS") on its first `n` samples."""
    if case == "W6":
        xs, ys = moons(n)
        return Training(MLP_SIZES, "hinge", L2, 0.0, learning_rate, xs, ys, mlp_weights())
    name, sizes, loss = REAL_CASES[case]
    X, y = real_data(name, n)
    return Training(
        sizes, loss, 0.0, TRAIN_WEIGHT_DECAY, _constant_lr, X, y, kaiming_weights(sizes)
    )
