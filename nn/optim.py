"""Optimisers (SGD, Adam) and learning-rate schedules (StepLR, LinearLR, CosineAnnealingLR).

The update rules are PyTorch's (`torch.optim.SGD`, `torch.optim.Adam`, `torch.optim.lr_scheduler`)
step for step, each written once, in `update(data, grad)` on float64 arrays of all the
parameters at once: `step()` gathers the parameters' `.data` and `.grad` into arrays, calls
it, and writes the new values into `.data`. The parameters stay the same leaf objects, and
no graph is built. numpy's + - * / and sqrt round exactly as Python's float arithmetic does,
so the update is the one the rule gives on each float; `fit`'s tape engine calls `update` on
its flat array of weights directly.

A training step is always:

    optimizer.zero_grad()   # gradients accumulate, so clear last step's
    loss.backward()
    optimizer.step()
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from autograd import Value, no_grad
from autograd.ops import is_number


def _check_params(params: Iterable[Value], where: str) -> list[Value]:
    ps = list(params)
    if not ps:
        raise ValueError(f"{where}: got an empty parameter list")
    for i, p in enumerate(ps):
        if not isinstance(p, Value):
            raise TypeError(f"{where}: parameter {i} is a {type(p).__name__}, not a Value")
    return ps


def _check_nonneg(where: str, **values: float) -> None:
    for name, v in values.items():
        if not (is_number(v) and v >= 0.0):
            raise ValueError(f"{where}: {name} must be a number >= 0, got {v!r}")


class Optimizer:
    """Base class: holds the parameters and the learning rate `lr`.

    Schedules change `lr` between steps; `initial_lr` keeps the starting value.
    """

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params = _check_params(params, type(self).__name__)
        _check_nonneg(type(self).__name__, lr=lr)
        self.lr = float(lr)
        self.initial_lr = self.lr

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0.0."""
        for p in self.params:
            p.grad = 0.0

    @no_grad()
    def step(self) -> None:
        """Update every parameter from its `.grad`: `update` on arrays of all of them."""
        n = len(self.params)
        data = np.fromiter((p.data for p in self.params), dtype=np.float64, count=n)
        grad = np.fromiter((p.grad for p in self.params), dtype=np.float64, count=n)
        for p, value in zip(self.params, self.update(data, grad).tolist()):
            p.data = value

    def update(self, data: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The rule: new parameter values from the values `data` and gradients `grad`
        (float64 arrays in `params` order), advancing the optimiser's state by one step.
        Implemented by subclasses; a subclass may instead override `step()` alone."""
        raise NotImplementedError(f"{type(self).__name__} does not define update()")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    torch.optim.SGD's rule, for each parameter p with gradient g:

        g = g + weight_decay * p
        b = g                                   on the first step (if momentum != 0)
        b = momentum * b + (1 - dampening) * g  afterwards
        g = g + momentum * b  (nesterov)   or   g = b
        p = p - lr * g

    Raises:
        ValueError: a negative lr, momentum or weight_decay; nesterov without momentum or
            with dampening (as PyTorch); an empty parameter list.
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        _check_nonneg("SGD", momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = nesterov
        self.weight_decay = float(weight_decay)
        # One momentum value per parameter; None before the first step.
        self.momentum_buffer: np.ndarray | None = None

    def update(self, data: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One SGD step on arrays (see the class docstring for the rule)."""
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        g = grad
        if wd:
            g = g + wd * data
        if mu:
            buf = self.momentum_buffer
            buf = g.copy() if buf is None else mu * buf + (1.0 - self.dampening) * g
            self.momentum_buffer = buf
            g = g + mu * buf if self.nesterov else buf
        return data - lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015).

    torch.optim.Adam's rule (L2 weight decay added to the gradient, not AdamW), at step t:

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Raises:
        ValueError: lr, eps or weight_decay negative, a beta outside [0, 1).
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        _check_nonneg("Adam", eps=eps, weight_decay=weight_decay)
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Adam: betas[{i}] must be in [0, 1), got {b!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.t = 0
        self.exp_avg = np.zeros(len(self.params))
        self.exp_avg_sq = np.zeros(len(self.params))

    def update(self, data: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One Adam step on arrays (see the class docstring for the rule)."""
        self.t += 1
        beta1, beta2 = self.betas
        bias_correction1 = 1.0 - beta1**self.t
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**self.t)
        step_size = self.lr / bias_correction1
        g = grad
        if self.weight_decay:
            g = g + self.weight_decay * data
        m = self.exp_avg = beta1 * self.exp_avg + (1.0 - beta1) * g
        v = self.exp_avg_sq = beta2 * self.exp_avg_sq + (1.0 - beta2) * g * g
        return data - step_size * m / (np.sqrt(v) / bias_correction2_sqrt + self.eps)


# -----------------------------------------------------------------------------------------
# Learning-rate schedules: call `scheduler.step()` once per epoch (or per step), after
# `optimizer.step()`, as in PyTorch. Each sets `optimizer.lr` from the closed form.
# -----------------------------------------------------------------------------------------


class LRScheduler:
    """Base class: `step()` advances `last_epoch` and sets `optimizer.lr = get_lr()`."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.initial_lr
        self.last_epoch = 0
        optimizer.lr = self.get_lr()

    def get_lr(self) -> float:
        """The learning rate for epoch `last_epoch` (implemented by subclasses)."""
        raise NotImplementedError

    def get_last_lr(self) -> float:
        """The learning rate the optimiser uses now."""
        return self.optimizer.lr

    def step(self) -> None:
        """Move to the next epoch and update the optimiser's learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()


class StepLR(LRScheduler):
    """Multiply the rate by `gamma` every `step_size` epochs: lr = base * gamma**(e // step_size).

    torch.optim.lr_scheduler.StepLR.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size = step_size
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class LinearLR(LRScheduler):
    """Change the rate linearly from `start_factor * base` to `end_factor * base` over
    `total_iters` epochs, then hold it (torch.optim.lr_scheduler.LinearLR, closed form):

        lr = base * (start + (end - start) * min(e, total_iters) / total_iters)

    micrograd's demo, lr = 1.0 - 0.9 * k / 100, is `LinearLR(SGD(lr=1.0), 1.0, 0.1, 100)`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        if not 0.0 < start_factor <= 1.0 or not 0.0 <= end_factor <= 1.0:
            raise ValueError(
                "LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got "
                f"{start_factor!r} and {end_factor!r}"
            )
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive int, got {total_iters!r}")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = total_iters
        super().__init__(optimizer)

    def get_lr(self) -> float:
        frac = min(self.last_epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the base rate to `eta_min` over `T_max` epochs (closed form of
    torch.optim.lr_scheduler.CosineAnnealingLR; Loshchilov & Hutter, SGDR, ICLR 2017):

        lr = eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + cos) / 2.0
