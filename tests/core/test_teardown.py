"""Yield dependencies: order, task, the body's exception, and errors in teardown."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from fda_core import configure, with_fastapi_depends
from fda_core._graph.resolution import SwallowedExceptionError


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    configure(app=app)
    return app


async def test_teardown_in_reverse_order_in_the_task_that_set_up(app: FastAPI, events: Any) -> None:
    tasks: dict[str, Any] = {}

    async def first() -> AsyncIterator[str]:
        tasks["setup"] = asyncio.current_task()
        events.add("first:open")
        yield "1"
        tasks["teardown"] = asyncio.current_task()
        events.add("first:close")

    def second(a: Annotated[str, Depends(first)]) -> Iterator[str]:
        events.add("second:open")
        yield a + "2"
        events.add("second:close")

    async def third(b: Annotated[str, Depends(second)]) -> AsyncIterator[str]:
        events.add("third:open")
        yield b + "3"
        events.add("third:close")

    @with_fastapi_depends
    async def f(*, c: Annotated[str, Depends(third)]) -> str:
        events.add("body")
        return c

    assert await f() == "123"
    assert events == [
        "first:open", "second:open", "third:open", "body",
        "third:close", "second:close", "first:close",
    ]  # fmt: skip
    assert tasks["setup"] is tasks["teardown"]


async def test_the_bodys_exception_is_thrown_into_yield_dependencies(
    app: FastAPI, events: Any
) -> None:
    async def session() -> AsyncIterator[str]:
        try:
            yield "session"
        except ValueError as exc:
            events.add(f"rollback:{exc}")
            raise
        else:
            events.add("commit")

    def sync_session() -> Iterator[str]:
        try:
            yield "sync"
        except ValueError:
            events.add("sync-rollback")
            raise

    @with_fastapi_depends
    async def f(
        fail: bool, *, s: Annotated[str, Depends(session)], t: Annotated[str, Depends(sync_session)]
    ) -> str:
        if fail:
            raise ValueError("boom")
        return s + t

    assert await f(False) == "sessionsync"
    assert events == ["commit"]
    events.clear()
    with pytest.raises(ValueError, match="boom"):
        await f(True)
    assert events == ["sync-rollback", "rollback:boom"]


async def test_an_exception_raised_during_teardown_reaches_the_caller(app: FastAPI) -> None:
    async def broken() -> AsyncIterator[str]:
        yield "x"
        raise OSError("flush failed")

    @with_fastapi_depends
    async def f(*, x: Annotated[str, Depends(broken)]) -> str:
        return x

    with pytest.raises(OSError, match="flush failed"):
        await f()


async def test_a_dependency_swallowing_the_exception_is_reported(app: FastAPI) -> None:
    async def swallows() -> AsyncIterator[str]:
        try:  # noqa: SIM105 - the mistake under test
            yield "x"
        except Exception:
            pass

    @with_fastapi_depends
    async def f(*, x: Annotated[str, Depends(swallows)]) -> str:
        raise KeyError("lost")

    with pytest.raises(SwallowedExceptionError, match="Re-raise") as info:
        await f()
    assert isinstance(info.value.__cause__, KeyError)


async def test_setup_failure_tears_down_what_was_already_entered(app: FastAPI, events: Any) -> None:
    async def opened() -> AsyncIterator[str]:
        try:
            yield "ok"
        except RuntimeError as exc:
            events.add(f"opened:saw:{exc}")
            raise

    async def fails(o: Annotated[str, Depends(opened)]) -> str:
        raise RuntimeError("setup failed")

    @with_fastapi_depends
    async def f(*, x: Annotated[str, Depends(fails)]) -> str:
        events.add("body")
        return x

    with pytest.raises(RuntimeError, match="setup failed"):
        await f()
    assert events == ["opened:saw:setup failed"]


async def test_cancelling_the_caller_tears_down(app: FastAPI, events: Any) -> None:
    started = asyncio.Event()

    async def resource() -> AsyncIterator[str]:
        try:
            yield "r"
        finally:
            events.add("closed")

    @with_fastapi_depends
    async def f(*, r: Annotated[str, Depends(resource)]) -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(f())
    await asyncio.wait_for(started.wait(), 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["closed"]


async def test_teardown_under_cancellation_is_what_fastapis_resolver_does(app: FastAPI) -> None:
    """FastAPI 0.162.7+ shields async-generator teardown from cancellation; earlier
    releases do not. The compiled plan and FastAPI's own resolver must agree."""
    import anyio

    from fda_core import resolve_fastapi_depends

    logs: dict[str, list[str]] = {"plan": [], "fastapi": []}

    def graph(log: list[str], scope: anyio.CancelScope) -> Any:
        async def resource() -> AsyncIterator[str]:
            log.append("open")
            try:
                yield "r"
            finally:
                await asyncio.sleep(0.01)  # teardown that awaits
                log.append("closed cleanly")

        async def job(*, r: Annotated[str, Depends(resource)]) -> None:
            scope.cancel()  # cancelled while the job runs, as by a deadline
            await asyncio.sleep(120)

        return job

    with anyio.CancelScope() as scope:
        await with_fastapi_depends(graph(logs["plan"], scope))()

    with anyio.CancelScope() as scope:
        job = graph(logs["fastapi"], scope)
        async with resolve_fastapi_depends(job) as values:
            await job(**values)

    assert logs["plan"] == logs["fastapi"]
    assert logs["plan"][0] == "open"
