"""Pictures of training: loss and accuracy curves, and the decision boundary of a 2-D model.

Drawn with matplotlib's non-interactive Agg backend (works without a display), and the
decision boundary uses a numpy forward pass of the weights (`MLP.forward_numpy`), not Values:
a 200 x 200 grid is 40,000 forward passes, instant in numpy. matplotlib is imported when a
function is called, so `import nn` does not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autograd.files import atomic_write

from .train import History, predict


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> None:
    plt = _pyplot()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)


def plot_history(
    history: History, path: str | Path, title: str = "", val_label: str = "validation"
) -> None:
    """Save the loss (left) and accuracy (right) per epoch, training and validation, as PNG.

    Args:
        history: what `fit` returned.
        path: the PNG file to write (atomically).
        title: a heading for the figure.
        val_label: the legend's name for the validation curves (e.g. "test").
    """
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, history.epochs + 1)
    ax_loss.plot(epochs, history.loss, label="train")
    ax_acc.plot(epochs, history.accuracy, label="train")
    if history.val_loss:
        ax_loss.plot(epochs, history.val_loss, label=val_label)
        ax_acc.plot(epochs, history.val_accuracy, label=val_label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(-0.02, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_decision_boundary(
    model: Any,
    X: Any,
    y: Any,
    path: str | Path,
    loss: str = "hinge",
    transform: Any = None,
    title: str = "",
    resolution: int = 200,
) -> None:
    """Save the model's predicted class over the plane, with the data points on top, as PNG.

    Args:
        model: an MLP with 2 inputs (anything with `forward_numpy`, or a callable on Values).
        X: the points, shape (n, 2), in the coordinates to draw.
        y: their class indices.
        path: the PNG file to write (atomically).
        loss: the loss the model was trained with (decides how outputs become classes).
        transform: applied to grid points before the model (e.g. a fitted scaler's
            `transform`), when the model was trained on transformed features.
        title: a heading.
    Raises:
        ValueError: X does not have two columns.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: needs 2-D points, got shape {X.shape}")
    pad = 0.25 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    z = predict(model, transform(grid) if transform is not None else grid, loss).reshape(xx.shape)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    n_classes = int(max(z.max(), y.max())) + 1
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(
        xx, yy, z, levels=levels, cmap="coolwarm" if n_classes == 2 else "viridis", alpha=0.35
    )
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        s=25,
        edgecolors="k",
        linewidths=0.5,
        cmap="coolwarm" if n_classes == 2 else "viridis",
        vmin=0,
        vmax=n_classes - 1,
    )
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="x0", ylabel="x1")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
