"""Gradient recording on and off: `no_grad`, `enable_grad`, `is_grad_enabled`.

Inside `with no_grad():` operations on Values build no graph: every result is a leaf.
This is what an optimiser's update or an evaluation pass wants (PyTorch's `torch.no_grad`).

The switch lives in a `contextvars.ContextVar`, not a global, so one thread or one
asyncio task turning recording off never turns it off for another.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "chainrule_grad_enabled", default=True
)

F = TypeVar("F", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """Return True when operations on Values record a graph (the default)."""
    return _grad_enabled.get()


class _GradMode:
    """Context manager and decorator that sets recording to `enabled` and restores it."""

    enabled: bool

    def __init__(self) -> None:
        self._tokens: list[contextvars.Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(_grad_enabled.set(self.enabled))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _grad_enabled.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Build no graph inside the block: results of operations are leaves.

    Use as `with no_grad(): ...` or as a decorator `@no_grad()`, as in PyTorch.
    """

    enabled = False


class enable_grad(_GradMode):
    """Record a graph inside the block, even within an enclosing `no_grad()`."""

    enabled = True
