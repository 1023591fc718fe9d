"""What the decorators of the async and the sync API do alike.

Each public decorator works bare (``@with_fastapi_depends``) or with options
(``@with_fastapi_depends(app=app)``): ``bare_or_with_options`` gives both forms from the
function that decorates. What a decorator cannot decorate is refused at once, naming the one to use
(``reject_generators``); a ``staticmethod`` or ``classmethod`` stays one around the
decorated function. The sync API's wrappers and the runners block and return the result:
``mark_blocking`` tells ``is_async_callable`` so (their ``__wrapped__`` may be an
``async def``), and ``BlockingDecorator`` is what such a decorator with options returns.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast, overload

from fda_core import _compat
from fda_core._describe import describe

__all__ = [
    "BLOCKING",
    "BlockingDecorator",
    "bare_or_with_options",
    "decorating",
    "is_async_callable",
    "mark_blocking",
    "reject_generators",
    "typed_as",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class BlockingDecorator(Protocol):
    """What a blocking decorator called with options returns (``@runnify_with_fastapi_depends
    (app=...)``, the sync API's decorators): a decorator, generic in the decorated
    function's return type, ``def`` or ``async def``."""

    @overload
    def __call__(self, func: Callable[..., Awaitable[T]], /) -> Callable[..., T]: ...
    @overload
    def __call__(self, func: Callable[..., T], /) -> Callable[..., T]: ...


#: Set on the sync API's wrappers: they block and return the result, whatever they wrap.
BLOCKING = "__fda_blocking__"


def mark_blocking(wrapper: Callable[..., Any]) -> None:
    """Tell ``is_async_callable`` that ``wrapper`` returns its result, not an awaitable
    (its ``__wrapped__`` may be an ``async def``)."""
    setattr(wrapper, BLOCKING, True)


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether the body's result is awaited: as a route of the installed FastAPI decides
    for its endpoint (partials, objects with an ``async def __call__``, ``AsyncMock``,
    and from 0.123.6 ``functools.wraps`` wrappers of ``async def`` functions).

    The sync API's wrappers block, whatever they wrap (``mark_blocking``).
    """
    if inspect.iscoroutinefunction(func):
        return True
    if getattr(func, BLOCKING, False):
        return False
    return _compat.awaited_by_route(func)


def bare_or_with_options(func: Any, decorate: Callable[[Any], Any], name: str) -> Any:
    """``@name`` used bare (``func`` given: it is decorated now) or with options (``func``
    is ``None``: a decorator is returned)."""

    def apply(f: Any) -> Any:
        return decorating(f, decorate, name)

    return apply if func is None else apply(func)


def decorating(func: Any, decorate: Callable[[Any], Any], decorator: str) -> Any:
    """``decorate(func)``, refusing what is not callable at once; a ``staticmethod`` or
    ``classmethod`` object stays one, around the decorated function."""
    if isinstance(func, (staticmethod, classmethod)):
        method = cast(Any, func)
        return type(method)(decorating(method.__func__, decorate, decorator))
    if not callable(func):
        raise TypeError(
            f"@{decorator} decorates a function or another callable, got {func!r} "
            f"({type(func).__name__})."
        )
    return decorate(func)


def reject_generators(func: Callable[..., Any], decorator: str) -> None:
    """Refuse a generator function, naming the decorator made for it."""
    if inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{describe(func)} is an async generator: use @aiter_with_fastapi_depends "
            f"instead of @{decorator}."
        )
    if inspect.isgeneratorfunction(func):
        raise TypeError(
            f"{describe(func)} is a generator: use "
            f"`fastapi_depends_anywhere.sync.iter_with_fastapi_depends` instead of @{decorator}."
        )


def typed_as(model: F) -> Callable[[Callable[..., Any]], F]:
    """Declare that the decorated function takes and returns what ``model`` does (all its
    overloads): for a public function with another's signature and types, declared once."""

    def declare(function: Callable[..., Any]) -> F:
        return cast("F", function)

    return declare
