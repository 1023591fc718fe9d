"""iter_with_fastapi_depends: sync and async generators bridged to a sync Generator, torn
down on exhaustion, close(), an exception, and collection of an abandoned generator."""

import asyncio
import gc
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from fda_sync import BridgeError, iter_with_fastapi_depends, with_fastapi_depends

from .conftest import Recorder

Factory = Callable[[FastAPI, Recorder], Callable[..., Generator[Any, Any, Any]]]


def resource(recorder: Recorder) -> Any:
    async def dep() -> AsyncIterator[str]:
        recorder.add("open")
        try:
            yield "r"
        except BaseException as exc:
            recorder.add(f"dep saw {type(exc).__name__}")
            raise
        finally:
            recorder.add("teardown")

    return Annotated[str, Depends(dep)]


def def_echo(app: FastAPI, recorder: Recorder) -> Callable[..., Generator[Any, Any, Any]]:
    @iter_with_fastapi_depends(app=app)
    def echo(start: int, *, r: resource(recorder)) -> Generator[Any, Any, str]:
        received = start
        try:
            while received is not None:
                try:
                    received = yield (received, r, threading.current_thread().name)
                except ValueError as exc:
                    received = f"caught {exc}"
            return "done"
        finally:
            recorder.add("body finally")

    return echo


def async_echo(app: FastAPI, recorder: Recorder) -> Callable[..., Generator[Any, Any, Any]]:
    @iter_with_fastapi_depends(app=app)
    async def echo(start: int, *, r: resource(recorder)) -> AsyncIterator[Any]:
        received = start
        try:
            while received is not None:
                try:
                    received = yield (received, r, threading.current_thread().name)
                except ValueError as exc:
                    received = f"caught {exc}"
        finally:
            recorder.add("body finally")

    return echo


KINDS = pytest.mark.parametrize("factory", [def_echo, async_echo], ids=["def", "async def"])


def body_thread(factory: Factory) -> str:
    return threading.current_thread().name if factory is def_echo else "fda-sync-bridge"


@KINDS
def test_send_throw_and_exhaustion(app: FastAPI, recorder: Recorder, factory: Factory) -> None:
    echo = factory(app, recorder)
    where = body_thread(factory)
    generator = echo(1)
    assert inspect.isgenerator(generator)
    assert recorder.events == []  # nothing runs before the first next()
    assert next(generator) == (1, "r", where)
    assert generator.send(2) == (2, "r", where)
    assert generator.throw(ValueError("oops")) == ("caught oops", "r", where)
    with pytest.raises(StopIteration) as stop:
        generator.send(None)
    if factory is def_echo:
        assert stop.value.value == "done"
    assert recorder.events == ["open", "body finally", "teardown"]


@KINDS
def test_close_mid_iteration_tears_down(app: FastAPI, recorder: Recorder, factory: Factory) -> None:
    generator = factory(app, recorder)(1)
    next(generator)
    generator.close()
    assert recorder.events == ["open", "body finally", "teardown"]
    generator.close()  # closing twice is a no-op
    assert recorder.events == ["open", "body finally", "teardown"]


@KINDS
def test_exception_from_the_body_reaches_dependencies_and_caller(
    app: FastAPI, recorder: Recorder, factory: Factory
) -> None:
    generator = factory(app, recorder)(1)
    next(generator)
    error = KeyError("unhandled")
    with pytest.raises(KeyError) as raised:
        generator.throw(error)
    assert raised.value is error
    assert recorder.events == ["open", "body finally", "dep saw KeyError", "teardown"]


@KINDS
def test_abandoned_generator_is_torn_down_when_collected(
    app: FastAPI, recorder: Recorder, factory: Factory
) -> None:
    generator = factory(app, recorder)(1)
    next(generator)
    del generator
    gc.collect()
    assert recorder.events == ["open", "body finally", "teardown"]


def test_generator_dropped_on_the_bridge_loop_is_torn_down_without_blocking(
    app: FastAPI, recorder: Recorder
) -> None:
    generator = def_echo(app, recorder)(1)
    next(generator)
    torn_down = threading.Event()
    holder = [generator]
    del generator

    @with_fastapi_depends(app=app)
    async def drop_it_on_the_loop() -> None:
        holder.clear()  # the last reference dies on the loop thread: no blocking allowed
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if "teardown" in recorder.events:
                torn_down.set()
                return
            await asyncio.sleep(0.01)

    drop_it_on_the_loop()
    assert torn_down.is_set()
    assert recorder.events == ["open", "body finally", "teardown"]


async def test_generator_dropped_on_a_foreign_loop_is_torn_down_without_blocking(
    app: FastAPI, recorder: Recorder
) -> None:
    generator = async_echo(app, recorder)(1)
    assert await asyncio.to_thread(next, generator) == (1, "r", "fda-sync-bridge")
    del generator  # on this thread, which runs an event loop: teardown is not awaited
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "teardown" in recorder.events:
            break
        await asyncio.sleep(0.01)
    assert recorder.events == ["open", "body finally", "teardown"]


async def test_iterating_on_a_foreign_loop_is_refused(app: FastAPI, recorder: Recorder) -> None:
    generator = def_echo(app, recorder)(1)
    with pytest.raises(BridgeError, match="to_thread"):
        next(generator)
    assert recorder.events == []


def test_caller_arguments_pass_through_and_injected_ones_can_be_given(
    app: FastAPI, recorder: Recorder
) -> None:
    @iter_with_fastapi_depends(app=app)
    def numbers(count: int, step: int = 1, *, r: resource(recorder)) -> Iterator[str]:
        for n in range(0, count * step, step):
            yield f"{r}{n}"

    assert list(numbers(3, step=2)) == ["r0", "r2", "r4"]
    assert list(numbers(2, r="fake")) == ["fake0", "fake1"]
    assert list(inspect.signature(numbers).parameters) == ["count", "step"]
    assert recorder.events == ["open", "teardown"]  # only the first call resolved it


def test_non_generators_are_refused(app: FastAPI) -> None:
    def plain() -> int:
        return 1

    with pytest.raises(TypeError, match="not a generator function"):
        iter_with_fastapi_depends(plain)


@pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])
def test_send_throw_and_close_reach_the_body_as_through_yield_from(
    app: FastAPI, recorder: Recorder, is_async: bool
) -> None:
    r_dep = resource(recorder)

    def steps() -> Generator[str, str, None]:
        try:
            answer = yield "question"
            recorder.add(f"body got {answer}")
            try:
                yield "careful"
            except ValueError as exc:
                recorder.add(f"body caught {exc}")
                yield "recovered"
            yield "more"
        except GeneratorExit:
            recorder.add("body closed")
            raise

    if is_async:

        async def body(*, r: r_dep) -> AsyncIterator[str]:
            inner = steps()
            item = next(inner)
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    inner.close()
                    raise
                except BaseException as exc:
                    item = inner.throw(exc)
                else:
                    item = inner.send(sent)

        generator = iter_with_fastapi_depends(app=app)(body)()
    else:

        def sync_body(*, r: r_dep) -> Generator[str, str, None]:
            return (yield from steps())

        generator = iter_with_fastapi_depends(app=app)(sync_body)()
    assert next(generator) == "question"
    assert generator.send("42") == "careful"
    assert generator.throw(ValueError("oops")) == "recovered"
    assert next(generator) == "more"
    generator.close()
    assert recorder.events[:4] == ["open", "body got 42", "body caught oops", "body closed"]
    assert "dep saw ValueError" not in recorder.events
