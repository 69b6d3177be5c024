"""chainrule's neural-network library, built only on `autograd`'s public API.

Read in this order: `module.py` (Module), `layers.py` (Neuron, Layer, MLP), `init.py`,
`losses.py`, `optim.py`, `data.py`, `train.py` (fit), `serialization.py`, `plot.py`, `run_dir.py`
(the folder `chainrule train --out` commits), `cli.py`.

    >>> import nn
    >>> model = nn.MLP(2, [16, 16, 1], seed=0)
    >>> X, y = nn.make_moons(100, noise=0.1, seed=0)
    >>> opt = nn.SGD(model.parameters(), lr=0.5)
    >>> history = nn.fit(model, X, y, "hinge", opt, epochs=5, progress=False)
"""

from . import init
from .data import (
    Dataset,
    StandardScaler,
    load_csv,
    load_dataset,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    train_test_split,
)
from .layers import MLP, Layer, Neuron
from .losses import binary_cross_entropy_with_logits, cross_entropy, hinge_loss, mse_loss
from .module import Module
from .optim import SGD, Adam, CosineAnnealingLR, LinearLR, StepLR
from .serialization import load, save
from .train import DivergenceError, History, evaluate, fit, predict, predict_proba

__all__ = [
    "MLP",
    "SGD",
    "Adam",
    "CosineAnnealingLR",
    "Dataset",
    "DivergenceError",
    "History",
    "Layer",
    "LinearLR",
    "Module",
    "Neuron",
    "StandardScaler",
    "StepLR",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "evaluate",
    "fit",
    "hinge_loss",
    "init",
    "load",
    "load_csv",
    "load_dataset",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_spirals",
    "make_xor",
    "mse_loss",
    "predict",
    "predict_proba",
    "save",
    "train_test_split",
]
