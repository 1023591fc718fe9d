"""``aiter_with_fastapi_depends``: dependencies open while iterating, closed at the end."""

import asyncio
import gc
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

from fda_core import aiter_with_fastapi_depends, configure


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    configure(app=app)
    return app


@pytest.fixture
def db(events: Any) -> Any:
    async def db() -> AsyncIterator[str]:
        events.add("db:open")
        try:
            yield "db"
        except Exception as exc:
            events.add(f"db:rollback:{type(exc).__name__}")
            raise
        finally:
            events.add("db:close")

    return db


async def test_dependencies_stay_open_while_iterating(app: FastAPI, events: Any, db: Any) -> None:
    @aiter_with_fastapi_depends
    async def stream_users(n: int, *, conn: Annotated[str, Depends(db)]) -> AsyncIterator[str]:
        for i in range(n):
            events.add(f"yield:{i}")
            yield f"{conn}:{i}"

    seen = []
    async for user in stream_users(2):
        seen.append(user)
        events.add(f"got:{user}")
    assert seen == ["db:0", "db:1"]
    assert events == [
        "db:open", "yield:0", "got:db:0", "yield:1", "got:db:1", "db:close",
    ]  # fmt: skip


async def test_aclose_tears_down(app: FastAPI, events: Any, db: Any) -> None:
    @aiter_with_fastapi_depends
    async def endless(*, conn: Annotated[str, Depends(db)]) -> AsyncIterator[int]:
        i = 0
        try:
            while True:
                yield i
                i += 1
        finally:
            events.add("generator:finally")

    gen = endless()
    assert [await gen.__anext__(), await gen.__anext__()] == [0, 1]
    await gen.aclose()
    assert events == ["db:open", "generator:finally", "db:close"]


async def test_an_exception_in_the_body_reaches_dependencies_and_caller(
    app: FastAPI, events: Any, db: Any
) -> None:
    @aiter_with_fastapi_depends
    async def failing(*, conn: Annotated[str, Depends(db)]) -> AsyncIterator[int]:
        yield 1
        raise ValueError("broken stream")

    with pytest.raises(ValueError, match="broken stream"):
        async for _ in failing():
            pass
    assert events == ["db:open", "db:rollback:ValueError", "db:close"]


async def test_an_exception_in_the_consumer_reaches_dependencies(
    app: FastAPI, events: Any, db: Any
) -> None:
    @aiter_with_fastapi_depends
    async def numbers(*, conn: Annotated[str, Depends(db)]) -> AsyncIterator[int]:
        yield 1
        yield 2

    gen = numbers()
    assert await gen.__anext__() == 1
    with pytest.raises(KeyError):
        await gen.athrow(KeyError("consumer"))
    assert events == ["db:open", "db:rollback:KeyError", "db:close"]


async def test_an_abandoned_generator_is_torn_down_by_the_loop(
    app: FastAPI, events: Any, db: Any
) -> None:
    @aiter_with_fastapi_depends
    async def numbers(*, conn: Annotated[str, Depends(db)]) -> AsyncIterator[int]:
        yield 1
        yield 2

    async def consume_one() -> int:
        async for n in numbers():
            return n  # abandons the generator: the loop's finalizer closes it
        raise AssertionError

    assert await consume_one() == 1
    gc.collect()
    deadline = time.monotonic() + 120
    while "db:close" not in events and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert events == ["db:open", "db:close"]


async def test_scope_options_and_call_scope(app: FastAPI) -> None:
    @aiter_with_fastapi_depends(scope={"method": "POST"})
    async def info(request: Request) -> AsyncIterator[tuple[str, str]]:
        yield request.method, request.headers["x-job"]

    assert [x async for x in info(_scope={"headers": {"x-job": "7"}})] == [("POST", "7")]


async def test_cancelling_the_consumer_cancels_the_step_and_tears_down(
    app: FastAPI, events: Any, db: Any
) -> None:
    started = asyncio.Event()

    @aiter_with_fastapi_depends
    async def slow(*, conn: Annotated[str, Depends(db)]) -> AsyncIterator[int]:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.add("step:cancelled")
            raise
        yield 1

    gen = slow()
    task = asyncio.create_task(gen.__anext__())
    await asyncio.wait_for(started.wait(), 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await gen.aclose()
    assert events[:2] == ["db:open", "step:cancelled"]
    assert events[-1] == "db:close"


async def test_only_async_generator_functions(app: FastAPI) -> None:
    async def not_a_generator() -> None: ...

    with pytest.raises(TypeError, match="not an async generator function"):
        aiter_with_fastapi_depends(not_a_generator)  # type: ignore[arg-type]


async def test_asend_athrow_and_aclose_reach_the_body_as_through_yield_from(
    app: FastAPI, events: Any, db: Any
) -> None:
    @aiter_with_fastapi_depends
    async def conversation(*, conn: Annotated[str, Depends(db)]) -> AsyncGenerator[str, str]:
        try:
            answer = yield "question"
            events.add(f"body got {answer}")
            try:
                yield "careful"
            except ValueError as exc:
                events.add(f"body caught {exc}")
                yield "recovered"
            yield "more"
        except GeneratorExit:
            events.add("body closed")
            raise

    stream = conversation()
    assert await stream.__anext__() == "question"
    assert await stream.asend("42") == "careful"
    assert await stream.athrow(ValueError("oops")) == "recovered"
    assert await stream.__anext__() == "more"
    await stream.aclose()
    assert events == [
        "db:open",
        "body got 42",
        "body caught oops",
        "body closed",
        "db:close",
    ]


async def test_an_exception_thrown_in_and_not_caught_reaches_the_dependencies(
    app: FastAPI, events: Any, db: Any
) -> None:
    @aiter_with_fastapi_depends
    async def numbers(*, conn: Annotated[str, Depends(db)]) -> AsyncIterator[int]:
        try:
            yield 1
        finally:
            events.add("body finally")

    stream = numbers()
    assert await stream.__anext__() == 1
    with pytest.raises(KeyError):
        await stream.athrow(KeyError("k"))
    assert events == ["db:open", "body finally", "db:rollback:KeyError", "db:close"]
