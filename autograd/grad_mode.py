"""Gradient recording on and off: `no_grad`, `enable_grad`, `is_grad_enabled`.

Inside `with no_grad():` operations on Values build no graph: every result is a leaf.
This is what an optimiser's update or an evaluation pass wants (PyTorch's `torch.no_grad`).

The switch lives in a `contextvars.ContextVar`, not a global, so one thread or one
asyncio task turning recording off never turns it off for another.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
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


# The values each `with` replaced, innermost last: per context (per thread, per asyncio task),
# so one no_grad() object can be shared by threads, and nested, and entered again.
_saved: contextvars.ContextVar[tuple[bool, ...]] = contextvars.ContextVar(
    "chainrule_grad_saved", default=()
)


class _GradMode:
    """Context manager and decorator that sets recording to `enabled` and restores it."""

    enabled: bool

    def __enter__(self) -> None:
        _saved.set((*_saved.get(), _grad_enabled.get()))
        _grad_enabled.set(self.enabled)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        *outer, previous = _saved.get()
        _saved.set(tuple(outer))
        _grad_enabled.set(previous)

    def __call__(self, func: F) -> F:
        """Decorate a function (or an async function) to run with recording set.

        Raises:
            TypeError: `func` is a generator or async generator function: the mode would
                be left at its first `yield` while the body goes on, silently recording.
        """
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"{type(self).__name__}() cannot decorate the generator {func.__qualname__}: "
                f"use `with {type(self).__name__}():` inside its body instead"
            )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.__class__():  # around the awaits too: the task's own context
                    return await func(*args, **kwargs)

            return coroutine_wrapper  # type: ignore[return-value]

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
