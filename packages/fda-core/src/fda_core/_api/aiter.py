"""``aiter_with_fastapi_depends``: an async generator whose dependencies stay open while it runs.

The generator's body and its dependencies live in one task of their own (a ``TaskHeld``):
the consumer may be finished by another task (the loop's async-generator finalizer, say),
and FastAPI requires teardown in the task that resolved them. The sync API's
``iter_with_fastapi_depends`` holds an ``async def`` generator the same way
(``generator_with_dependencies``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, overload

from fastapi import FastAPI

from fda_core._api.decorating import bare_or_with_options
from fda_core._describe import describe
from fda_core._graph.injector import MAKE_MANAGER, Injector
from fda_core._runtime.holder import TaskHeld

__all__ = [
    "AsyncGeneratorDecorator",
    "aiter_with_fastapi_depends",
    "generator_with_dependencies",
    "running_generator",
]

T = TypeVar("T")


class AsyncGeneratorDecorator(Protocol):
    """What ``@aiter_with_fastapi_depends(...)`` with options returns."""

    def __call__(
        self, func: Callable[..., AsyncIterator[T]], /
    ) -> Callable[..., AsyncGenerator[T, None]]: ...


@asynccontextmanager
async def generator_with_dependencies(
    injector: Injector,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call_scope: Mapping[str, Any] | None,
    manager: Any = MAKE_MANAGER,
) -> AsyncGenerator[AsyncGenerator[Any, Any], None]:
    """The decorated async generator, called with its dependencies: closed, then they are
    torn down, when the block exits. ``manager``: as for ``Injector.values``."""
    async with (
        injector.values(args, kwargs, call_scope, manager) as values,
        running_generator(injector.func, args, {**kwargs, **values}) as generator,
    ):
        yield generator


@asynccontextmanager
async def running_generator(
    func: Callable[..., AsyncGenerator[Any, Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> AsyncGenerator[AsyncGenerator[Any, Any], None]:
    """``func(*args, **kwargs)``, closed when the block exits (whatever the block raised
    reaches the dependencies, not the generator: they are what it was thrown into)."""
    generator = func(*args, **kwargs)
    try:
        yield generator
    finally:
        await generator.aclose()


def _aiter(
    func: Callable[..., AsyncIterator[Any]],
    scope: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    app: FastAPI | None,
) -> Callable[..., AsyncGenerator[Any, None]]:
    if not inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{describe(func)} is not an async generator function: "
            "@aiter_with_fastapi_depends decorates `async def ...: yield ...`."
        )
    injector = Injector(func, scope=scope, context=context, app=app)

    async def wrapper(
        *args: Any, _scope: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        args, kwargs = injector.arrange_call(args, kwargs, _scope)
        held = TaskHeld(generator_with_dependencies(injector, args, kwargs, _scope))
        generator = await held.enter()
        error: BaseException | None = None
        # Delegating as ``yield from`` would: what is sent or thrown in reaches the body.
        method: Callable[[Any], Awaitable[Any]] = generator.asend
        argument: Any = None
        try:
            while True:
                try:
                    item = await held.run(functools.partial(method, argument))
                except StopAsyncIteration:
                    break
                try:
                    argument = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    method, argument = generator.athrow, exc
                else:
                    method = generator.asend
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            await held.exit(error)

    injector.wraps(wrapper)
    return wrapper


@overload
def aiter_with_fastapi_depends(
    func: Callable[..., AsyncIterator[T]],
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Callable[..., AsyncGenerator[T, None]]: ...
@overload
def aiter_with_fastapi_depends(
    func: None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> AsyncGeneratorDecorator: ...
def aiter_with_fastapi_depends(
    func: Callable[..., AsyncIterator[Any]] | None = None,
    *,
    scope: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
) -> Any:
    """Resolve an async generator's dependencies; they stay open while it is iterated.

    Teardown runs on exhaustion, on ``aclose()`` and when the body raises.
    """
    return bare_or_with_options(
        func, lambda f: _aiter(f, scope, context, app), "aiter_with_fastapi_depends"
    )
