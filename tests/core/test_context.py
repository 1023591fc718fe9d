"""``context_factory``: the context manager entered around each decorated call."""

import contextvars
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, nullcontext
from typing import Annotated, Any

import pytest
from context_logging import Context, current_context
from fastapi import Depends, FastAPI

from fda_core import aiter_with_fastapi_depends, configure, with_fastapi_depends

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@contextmanager
def sync_factory(ctx: Mapping[str, Any]) -> Iterator[None]:
    token = request_id.set(ctx.get("request_id"))
    try:
        yield
    finally:
        request_id.reset(token)


@asynccontextmanager
async def async_factory(ctx: Mapping[str, Any]) -> AsyncIterator[None]:
    with sync_factory(ctx):
        yield


@pytest.mark.parametrize("factory", [sync_factory, async_factory], ids=["sync", "async"])
async def test_dependencies_body_and_teardown_see_the_context(factory: Any) -> None:
    configure(app=FastAPI(), context_factory=factory)
    seen: list[str | None] = []

    async def dep() -> AsyncIterator[None]:
        seen.append(request_id.get())
        yield
        seen.append(request_id.get())

    @with_fastapi_depends(context={"request_id": "abc123"})
    async def f(*, _: Annotated[None, Depends(dep)]) -> None:
        seen.append(request_id.get())

    await f()
    assert seen == ["abc123", "abc123", "abc123"]
    assert request_id.get() is None


async def test_the_factory_is_called_on_each_call_with_the_mapping() -> None:
    calls: list[dict[str, Any]] = []

    def factory(ctx: Mapping[str, Any]) -> Any:
        calls.append(dict(ctx))
        return sync_factory(ctx)

    configure(app=FastAPI(), context_factory=factory)

    @with_fastapi_depends(context={"job": "sync"})
    async def f() -> None: ...

    await f()
    await f()
    assert calls == [{"job": "sync"}, {"job": "sync"}]


async def test_context_logging_context_as_in_the_spec() -> None:
    app = FastAPI()
    configure(app=app, context_factory=lambda ctx: Context(**ctx))

    async def dep() -> Any:
        return dict(current_context)

    @with_fastapi_depends(context={"request_id": "abc123"})
    async def my_function(*, db: Annotated[dict[str, Any], Depends(dep)]) -> tuple[Any, Any]:
        return db.get("request_id"), current_context.get("request_id")

    assert await my_function() == ("abc123", "abc123")
    assert current_context.get("request_id") is None


async def test_async_generators_run_in_the_context() -> None:
    configure(app=FastAPI(), context_factory=sync_factory)

    @aiter_with_fastapi_depends(context={"request_id": "gen"})
    async def stream() -> AsyncIterator[str | None]:
        yield request_id.get()

    assert [x async for x in stream()] == ["gen"]


async def test_a_factory_returning_no_context_manager_is_a_clear_error() -> None:
    configure(app=FastAPI(), context_factory=lambda ctx: 42)

    @with_fastapi_depends(context={"request_id": "abc"})
    async def f() -> None: ...

    with pytest.raises(TypeError, match="not a context manager"):
        await f()


@pytest.mark.parametrize("context", [None, {}])
async def test_without_a_context_the_factory_is_not_called(context: Any) -> None:
    """As in 1.x: a factory may read its keys (``ctx["request_id"]``), so a decorator
    given no context (or an empty one) enters none."""
    called: list[Any] = []

    def factory(ctx: Any) -> Any:
        called.append(ctx)
        return nullcontext()

    configure(app=FastAPI(), context_factory=factory)

    @with_fastapi_depends(context=context)
    async def f() -> str:
        return "body"

    assert await f() == "body"
    assert called == []
