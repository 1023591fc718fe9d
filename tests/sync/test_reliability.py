"""The in-process rows of RELIABILITY.md's test plan (ids in the test names).

Fork and interpreter-exit rows run in processes of their own: test_fork.py, test_exit.py,
test_celery.py. Every wait here is bounded: a hang fails, it never blocks the suite.
"""

import asyncio
import contextvars
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

import fda_core
import fda_sync._guards.signals
from fda_sync import (
    BridgeError,
    FastApiDepsStack,
    iter_with_fastapi_depends,
    resolve_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fda_sync._bridge import Bridge, BridgeDeadError, get_bridge

from .conftest import Recorder, Resource


def chain(recorder: Recorder) -> Any:
    """async gen -> sync gen -> nested async gen: the Y1 chain."""

    async def outer() -> AsyncIterator[str]:
        recorder.add("open outer")
        try:
            yield "o"
        except Exception as exc:
            recorder.add(f"outer saw {exc!r}")
            raise
        finally:
            recorder.add("close outer")

    def middle(o: Annotated[str, Depends(outer)]) -> Iterator[str]:
        recorder.add("open middle")
        try:
            yield o + "m"
        except Exception as exc:
            recorder.add(f"middle saw {exc!r}")
            raise
        finally:
            recorder.add("close middle")

    async def inner(m: Annotated[str, Depends(middle)]) -> AsyncIterator[str]:
        recorder.add("open inner")
        try:
            yield m + "i"
        except Exception as exc:
            recorder.add(f"inner saw {exc!r}")
            raise
        finally:
            recorder.add("close inner")

    return Annotated[str, Depends(inner)]


def without_lifespan(recorder: Recorder) -> list[str]:
    """The events of dependencies (a stack also starts and shuts down the lifespan)."""
    return [event for event in recorder.events if event not in ("startup", "shutdown")]


OPENED = ["open outer", "open middle", "open inner"]
CLOSED = ["close inner", "close middle", "close outer"]

# The shapes of sync entry points a body can take: each runs `body(value)` with the chain.
Shape = Callable[[FastAPI, Any, Callable[[str], Any]], Any]


def via_def(app: FastAPI, dep: Any, body: Callable[[str], Any]) -> Any:
    @with_fastapi_depends(app=app)
    def func(*, value: dep) -> Any:
        return body(value)

    return func()


def via_async_def(app: FastAPI, dep: Any, body: Callable[[str], Any]) -> Any:
    @with_fastapi_depends(app=app)
    async def func(*, value: dep) -> Any:
        return body(value)

    return func()


def via_def_generator(app: FastAPI, dep: Any, body: Callable[[str], Any]) -> Any:
    @iter_with_fastapi_depends(app=app)
    def func(*, value: dep) -> Iterator[Any]:
        yield body(value)

    [item] = func()  # exhausted: teardown has run
    return item


def via_async_generator(app: FastAPI, dep: Any, body: Callable[[str], Any]) -> Any:
    @iter_with_fastapi_depends(app=app)
    async def func(*, value: dep) -> AsyncIterator[Any]:
        yield body(value)

    [item] = func()  # exhausted: teardown has run
    return item


def via_stack(app: FastAPI, dep: Any, body: Callable[[str], Any]) -> Any:
    with FastApiDepsStack(app=app) as stack:
        return body(stack.resolve(dep))


def via_resolve(app: FastAPI, dep: Any, body: Callable[[str], Any]) -> Any:
    def target(*, value: dep) -> None: ...

    with resolve_fastapi_depends(target, dependency_overrides_provider=app) as values:
        return body(values["value"])


SHAPES = pytest.mark.parametrize(
    "shape",
    [via_def, via_async_def, via_def_generator, via_async_generator, via_stack, via_resolve],
    ids=lambda shape: shape.__name__.removeprefix("via_"),
)


# -- Y: yield dependencies -----------------------------------------------------------------


@SHAPES
def test_y1_yield_chain_torn_down_once_in_reverse_before_return(
    app: FastAPI, recorder: Recorder, shape: Shape
) -> None:
    def body(value: str) -> str:
        recorder.add(f"body {value}")
        return value

    assert shape(app, chain(recorder), body) == "omi"
    assert without_lifespan(recorder) == [*OPENED, "body omi", *CLOSED]


@SHAPES
def test_y2_body_exception_reaches_every_yield_dependency_and_the_caller(
    app: FastAPI, recorder: Recorder, shape: Shape
) -> None:
    error = LookupError("rollback me")

    def body(value: str) -> str:
        raise error

    with pytest.raises(LookupError) as raised:
        shape(app, chain(recorder), body)

    assert raised.value is error
    saw = [f"{name} saw {error!r}" for name in ("inner", "middle", "outer")]
    assert without_lifespan(recorder) == [
        *OPENED,
        saw[0],
        "close inner",
        saw[1],
        "close middle",
        saw[2],
        "close outer",
    ]


def test_y3_sync_stack_started_resolved_and_closed_from_different_threads(
    app: FastAPI, recorder: Recorder
) -> None:
    stack = FastApiDepsStack(app=app)
    dep = chain(recorder)
    results: dict[str, Any] = {}

    def in_thread(name: str, action: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                results[name] = action()
            except BaseException as exc:
                results[name] = exc

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(120)
        assert not thread.is_alive()

    in_thread("start", stack.start)
    in_thread("resolve", lambda: stack.resolve(dep))
    in_thread("close", stack.close)

    assert results == {"start": stack, "resolve": "omi", "close": None}
    assert recorder.events == ["startup", *OPENED, *CLOSED, "shutdown"]


def test_y3_async_stack_entered_and_exited_in_different_tasks(
    app: FastAPI, recorder: Recorder
) -> None:
    dep = chain(recorder)
    stack = fda_core.FastApiDepsStack(app=app)
    bridge = get_bridge()
    # Three blocking calls: three different tasks on the bridge loop.
    bridge.run(stack.start)
    assert bridge.run(lambda: stack.resolve(dep)) == "omi"
    bridge.run(stack.close)
    assert recorder.events == ["startup", *OPENED, *CLOSED, "shutdown"]


async def test_y3_async_stack_across_tasks_of_a_foreign_loop(
    app: FastAPI, recorder: Recorder
) -> None:
    dep = chain(recorder)
    stack = fda_core.FastApiDepsStack(app=app)
    await asyncio.create_task(stack.start())
    assert await asyncio.create_task(stack.resolve(dep)) == "omi"
    await asyncio.create_task(stack.close())
    assert recorder.events == ["startup", *OPENED, *CLOSED, "shutdown"]


def test_y4_fifty_concurrent_scopes_are_independent(app: FastAPI) -> None:
    count = 50
    created: list[Resource] = []

    async def resource() -> AsyncIterator[Resource]:
        res = Resource(f"r{len(created)}")
        created.append(res)
        yield res
        res.closed = True

    holding: dict[int, Resource] = {}
    all_open = threading.Barrier(count, timeout=120)
    turn = [threading.Event() for _ in range(count)]
    order = random.Random(4).sample(range(count), count)
    problems: list[str] = []

    @with_fastapi_depends(app=app)
    def hold(index: int, *, res: Annotated[Resource, Depends(resource)]) -> Resource:
        holding[index] = res
        all_open.wait()
        assert turn[index].wait(240)
        return res

    def worker(position: int) -> None:
        index = order[position]
        try:
            res = hold(index)
            if not res.closed:
                problems.append(f"{res.name} still open after its call")
            for later in order[position + 1 :]:
                if holding[later].closed:
                    problems.append(f"closing {res.name} closed {holding[later].name}")
        except BaseException as exc:
            problems.append(repr(exc))
        finally:
            if position + 1 < count:
                turn[order[position + 1]].set()

    threads = [threading.Thread(target=worker, args=(p,)) for p in range(count)]
    for thread in threads:
        thread.start()
    turn[order[0]].set()
    for thread in threads:
        thread.join(240)
    assert not any(thread.is_alive() for thread in threads)
    assert problems == []
    assert len({id(res) for res in holding.values()}) == count
    assert all(res.closed for res in created)


# -- C: cancellation ----------------------------------------------------------------------


class _Interrupt:
    """Send a signal to the main thread (where pytest runs tests) once ``ready`` is set;
    ``sent`` is set once it was."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        self.ready = threading.Event()
        self.sent = threading.Event()
        self._thread = threading.Thread(target=self._fire, daemon=True)

    def _fire(self) -> None:
        if self.ready.wait(120):
            signal.pthread_kill(threading.main_thread().ident or 0, self.signum)
            self.sent.set()

    def wait_until_held(self) -> None:
        """In the main thread, while the library holds signals back: return once the signal
        was sent and noted as held back (a handler run now would raise here instead)."""
        assert self.sent.wait(120), "the signal was not sent"
        deadline = time.monotonic() + 120
        held = fda_sync._guards.signals._held
        while self.signum not in held._pending.get(threading.get_ident(), ()):
            assert time.monotonic() < deadline, "the signal was not held back"
            time.sleep(0.01)

    def __enter__(self) -> "_Interrupt":
        assert threading.current_thread() is threading.main_thread()
        self._previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(120)
        signal.signal(signal.SIGINT, self._previous)


def interrupted_resource(recorder: Recorder) -> Any:
    async def resource() -> AsyncIterator[str]:
        recorder.add("open")
        try:
            yield "r"
        except BaseException as exc:
            recorder.add(f"saw {type(exc).__name__}")
            raise
        finally:
            recorder.add("teardown")

    return Annotated[str, Depends(resource)]


@pytest.mark.parametrize("body_kind", ["async def", "def"])
def test_c1_keyboard_interrupt_tears_down_before_reaching_the_caller(
    app: FastAPI, recorder: Recorder, body_kind: str
) -> None:
    with _Interrupt() as interrupt:
        dep = interrupted_resource(recorder)
        if body_kind == "async def":

            @with_fastapi_depends(app=app)
            async def blocked(*, r: dep) -> None:
                interrupt.ready.set()
                await asyncio.sleep(30)

        else:

            @with_fastapi_depends(app=app)
            def blocked(*, r: dep) -> None:
                interrupt.ready.set()
                for _ in range(300):  # short sleeps: a signal is handled at once
                    time.sleep(0.1)

        with pytest.raises(KeyboardInterrupt):
            blocked()
        events_when_interrupted = list(recorder.events)

    seen = "CancelledError" if body_kind == "async def" else "KeyboardInterrupt"
    assert events_when_interrupted == ["open", f"saw {seen}", "teardown"]

    @with_fastapi_depends(app=app)
    def next_call(*, r: dep) -> str:
        return r

    assert next_call() == "r"


def test_c1_interrupt_while_dependencies_resolve_undoes_what_was_entered(
    app: FastAPI, recorder: Recorder
) -> None:
    with _Interrupt() as interrupt:
        first = interrupted_resource(recorder)

        async def slow(r: first) -> str:
            interrupt.ready.set()
            await asyncio.sleep(30)
            return "never"

        @with_fastapi_depends(app=app)
        def blocked(*, s: Annotated[str, Depends(slow)]) -> None:
            raise AssertionError("the body must not run")

        with pytest.raises(KeyboardInterrupt):
            blocked()
        events_when_interrupted = list(recorder.events)

    assert events_when_interrupted == ["open", "saw CancelledError", "teardown"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR1])
def test_c1_an_interrupt_during_async_teardown_waits_for_its_end(
    app: FastAPI, recorder: Recorder, signum: int
) -> None:
    """Ctrl-C (or Celery's soft time limit) landing while an async generator's teardown
    awaits does not cancel it: the caller gets the interrupt once the teardown is done."""
    main = threading.main_thread().ident or 0

    def on_usr1(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded("soft time limit")

    async def connection() -> AsyncIterator[str]:
        recorder.add("open")
        yield "c"
        recorder.add("teardown begins")
        signal.pthread_kill(main, signum)
        for _ in range(3):
            await asyncio.sleep(0.01)  # await conn.close()
        recorder.add("teardown ends")

    @with_fastapi_depends(app=app)
    def job(*, c: Annotated[str, Depends(connection)]) -> str:
        return c

    expected = KeyboardInterrupt if signum == signal.SIGINT else SoftTimeLimitExceeded
    previous = signal.signal(
        signum, signal.default_int_handler if signum == signal.SIGINT else on_usr1
    )
    try:
        with pytest.raises(expected):
            job()
        when_interrupted = list(recorder.events)
    finally:
        signal.signal(signum, previous)
    assert when_interrupted == ["open", "teardown begins", "teardown ends"]


class SoftTimeLimitExceeded(Exception):
    """What Celery's soft time limit raises from a signal handler (not an OSError, which
    asyncio's loop wake-up would swallow if the signal landed inside it)."""


def test_c1_timeout_raised_by_a_signal_handler_cancels_and_tears_down(
    app: FastAPI, recorder: Recorder
) -> None:
    def on_alarm(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded("soft time limit")

    previous = signal.signal(signal.SIGUSR1, on_alarm)
    try:
        with _Interrupt(signal.SIGUSR1) as interrupt:
            dep = interrupted_resource(recorder)

            @with_fastapi_depends(app=app)
            async def blocked(*, r: dep) -> None:
                interrupt.ready.set()
                await asyncio.sleep(30)

            with pytest.raises(SoftTimeLimitExceeded, match="soft time limit"):
                blocked()
            events_when_interrupted = list(recorder.events)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert events_when_interrupted == ["open", "saw CancelledError", "teardown"]


def test_c2_cancelled_task_on_the_loop_tears_down_and_raises_cancelled_error(
    app: FastAPI, recorder: Recorder
) -> None:
    dep = interrupted_resource(recorder)

    @with_fastapi_depends(app=app)
    async def cancelled(*, r: dep) -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_soon(task.cancel)
        await asyncio.sleep(30)

    with pytest.raises(asyncio.CancelledError):
        cancelled()
    assert recorder.events == ["open", "saw CancelledError", "teardown"]

    @with_fastapi_depends(app=app)
    async def fine(*, r: dep) -> str:
        return r

    assert fine() == "r"


# -- E: exceptions --------------------------------------------------------------------------


async def failing_dependency() -> str:
    raise ValueError("bad value from the dependency")


@pytest.mark.parametrize("shape", [via_def, via_async_def, via_def_generator, via_stack])
def test_e1_exception_in_a_dependency_reaches_the_caller_with_user_frames(
    app: FastAPI, shape: Shape
) -> None:
    dep = Annotated[str, Depends(failing_dependency)]
    with pytest.raises(ValueError, match=r"^bad value from the dependency$") as raised:
        shape(app, dep, lambda value: value)
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "failing_dependency" in frames
    assert shape.__name__ in frames


class CustomBaseError(BaseException):
    pass


def raiser(exc: BaseException, when: str) -> Any:
    async def async_gen() -> AsyncIterator[str]:
        if when == "before yield":
            raise exc
        yield "value"
        if when == "teardown":
            raise exc

    def sync_dep() -> str:
        raise exc

    return Annotated[str, Depends(sync_dep if when == "sync dependency" else async_gen)]


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, CustomBaseError])
@pytest.mark.parametrize("when", ["before yield", "teardown", "sync dependency"])
@pytest.mark.parametrize("shape", [via_def, via_async_def, via_async_generator, via_stack])
def test_e2_base_exception_in_a_dependency_reaches_the_caller_and_the_loop_survives(
    app: FastAPI, shape: Shape, when: str, exc_type: type[BaseException]
) -> None:
    exc = exc_type("from the dependency")
    loop_thread = get_bridge().run(_thread)
    with pytest.raises(exc_type) as raised:
        shape(app, raiser(exc, when), lambda value: value)
    assert raised.value is exc
    assert get_bridge().run(_thread) is loop_thread
    assert shape(app, Annotated[str, Depends(lambda: "fine")], lambda value: value) == "fine"


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, CustomBaseError])
@pytest.mark.parametrize("shape", [via_def, via_def_generator, via_resolve])
def test_e2_base_exception_in_a_def_body_is_thrown_into_dependencies(
    app: FastAPI, recorder: Recorder, shape: Shape, exc_type: type[BaseException]
) -> None:
    exc = exc_type("from the body")

    async def resource() -> AsyncIterator[str]:
        try:
            yield "r"
        except BaseException as seen:
            recorder.add(f"saw {type(seen).__name__}")
            raise

    def body(value: str) -> str:
        raise exc

    with pytest.raises(exc_type) as raised:
        shape(app, Annotated[str, Depends(resource)], body)
    assert raised.value is exc
    assert recorder.events == [f"saw {exc_type.__name__}"]
    assert shape(app, Annotated[str, Depends(lambda: "fine")], lambda value: value) == "fine"


async def _thread() -> threading.Thread:
    return threading.current_thread()


def test_e2_stray_task_raising_system_exit_does_not_stop_the_loop(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    strays: list[asyncio.Task[None]] = []

    async def stray() -> None:
        raise SystemExit("from a task nobody awaits")

    async def spawn() -> threading.Thread:
        strays.append(asyncio.get_running_loop().create_task(stray()))
        await asyncio.sleep(0.01)
        return threading.current_thread()

    with caplog.at_level("ERROR", logger="asyncio"):
        loop_thread = bridge.run(spawn)
        assert bridge.run(_thread) is loop_thread
    assert isinstance(strays[0].exception(), SystemExit)
    assert "keeps running" in caplog.text


# -- dead loop ------------------------------------------------------------------------------


def test_dead_loop_fails_pending_and_future_calls_fast(bridge: Bridge) -> None:
    stopping = threading.Event()
    outcomes: dict[str, BaseException | str] = {}

    async def wait_forever() -> str:
        stopping.set()
        await asyncio.sleep(30)
        return "never"

    def pending() -> None:
        try:
            outcomes["pending"] = bridge.run(wait_forever)
        except BaseException as exc:
            outcomes["pending"] = exc

    thread = threading.Thread(target=pending)
    thread.start()
    assert stopping.wait(120)

    async def kill_loop() -> str:
        asyncio.get_running_loop().stop()  # user code stopping the loop it runs on
        await asyncio.sleep(30)
        return "never"

    with pytest.raises(BridgeDeadError) as killer:
        bridge.run(kill_loop)
    thread.join(120)
    assert isinstance(outcomes["pending"], BridgeDeadError)
    with pytest.raises(BridgeDeadError, match="died") as later:
        bridge.run(_thread)
    assert isinstance(later.value.__cause__, RuntimeError)
    assert killer.value.__cause__ is later.value.__cause__


# -- L: calls from running event loops ---------------------------------------------------------


async def test_l1_call_from_a_foreign_running_loop_is_refused_at_once(app: FastAPI) -> None:
    async def dep() -> str:
        return "value"

    Dep = Annotated[str, Depends(dep)]

    @with_fastapi_depends(app=app)
    def sync_body(*, d: Dep) -> str:
        return d

    @with_fastapi_depends(app=app)
    async def async_body(*, d: Dep) -> str:
        return d

    @iter_with_fastapi_depends(app=app)
    def gen(*, d: Dep) -> Iterator[str]:
        yield d

    @with_fastapi_lifecycle(app=app)
    def lifecycle() -> str:
        return "never"

    @runnify_with_fastapi_depends(app=app)
    async def script(*, d: Dep) -> str:
        return d

    attempts: list[Callable[[], Any]] = [
        sync_body,
        async_body,
        lambda: next(gen()),
        lifecycle,
        script,
        FastApiDepsStack(app=app).start,
    ]
    for attempt in attempts:
        with pytest.raises(BridgeError, match=r"asyncio\.to_thread"):
            attempt()
    # What the error recommends gives the correct result.
    assert await asyncio.to_thread(sync_body) == "value"
    assert await asyncio.to_thread(async_body) == "value"


async def test_l1_a_refused_call_starts_no_loop(bridge: Bridge) -> None:
    with pytest.raises(BridgeError, match="freeze that loop"):
        bridge.run(_thread)
    with pytest.raises(BridgeError, match="freeze that loop"):
        bridge.state()
    assert not bridge.started()


def test_l2_blocking_call_on_the_bridge_loop_fails_at_once(app: FastAPI) -> None:
    @with_fastapi_depends(app=app)
    def inner() -> str:
        return "inner"

    seen: dict[str, Any] = {}

    async def dep() -> str:
        ran: list[bool] = []
        asyncio.get_running_loop().call_soon(ran.append, True)
        try:
            inner()
        except BridgeError as exc:
            seen["error"] = exc
        # No loop iteration happened: the call raised without waiting for anything.
        seen["waited"] = bool(ran)
        return "dep"

    @with_fastapi_depends(app=app)
    def outer(*, d: Annotated[str, Depends(dep)]) -> str:
        return d

    @with_fastapi_depends(app=app)
    async def async_outer() -> str:
        return inner()

    assert outer() == "dep"
    assert "deadlock" in str(seen["error"])
    assert seen["waited"] is False
    with pytest.raises(BridgeError, match="deadlock"):
        async_outer()
    assert inner() == "inner"  # the loop stays usable


# -- X: context variables -------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def context_dependencies(seen: list[str]) -> Any:
    async def async_dep() -> str:
        seen.append(request_id.get())
        return "a"

    async def async_gen(a: Annotated[str, Depends(async_dep)]) -> AsyncIterator[str]:
        seen.append(request_id.get())
        yield "g"
        seen.append(request_id.get())

    def sync_dep(g: Annotated[str, Depends(async_gen)]) -> str:
        seen.append(request_id.get())
        return "s"

    def sync_gen(s: Annotated[str, Depends(sync_dep)]) -> Iterator[str]:
        seen.append(request_id.get())
        yield "v"
        seen.append(request_id.get())

    return Annotated[str, Depends(sync_gen)]


@SHAPES
def test_x1_callers_context_variable_is_visible_in_every_dependency(
    app: FastAPI, shape: Shape
) -> None:
    seen: list[str] = []

    def body(value: str) -> str:
        seen.append(request_id.get())
        return value

    token = request_id.set("req-42")
    try:
        assert shape(app, context_dependencies(seen), body) == "v"
    finally:
        request_id.reset(token)
    assert seen == ["req-42"] * 7


def test_x1_context_variable_reaches_dependencies_under_a_sync_lifecycle(app: FastAPI) -> None:
    seen: list[str] = []
    dep = context_dependencies(seen)

    @with_fastapi_depends(app=app)
    def inner(*, v: dep) -> str:
        return v

    @with_fastapi_lifecycle(app=app)
    def script() -> str:
        return inner()

    token = request_id.set("in-lifecycle")
    try:
        assert script() == "v"
    finally:
        request_id.reset(token)
    assert seen == ["in-lifecycle"] * 6


@pytest.mark.process
def test_x2_32_threads_with_distinct_context_values(app: FastAPI) -> None:
    async def echo_dep(request: Request) -> str:
        return request_id.get()

    Echo = Annotated[str, Depends(echo_dep)]

    @with_fastapi_depends(app=app)
    def sync_echo(*, value: Echo) -> tuple[str, str]:
        return value, request_id.get()

    @with_fastapi_depends(app=app)
    async def async_echo(*, value: Echo) -> tuple[str, str]:
        return value, request_id.get()

    mismatches: list[str] = []
    calls = [0] * 32

    def worker(index: int) -> None:
        func = sync_echo if index % 2 else async_echo
        for call in range(200):
            expected = f"thread-{index}-call-{call}"
            request_id.set(expected)
            try:
                got = func()
            except BaseException as exc:
                mismatches.append(repr(exc))
                return
            if got != (expected, expected):
                mismatches.append(f"{expected}: {got}")
            calls[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not any(thread.is_alive() for thread in threads)
    assert mismatches == []
    assert calls == [200] * 32


# -- T: start-up -------------------------------------------------------------------------------


def test_t1_concurrent_first_use_from_64_threads_starts_one_loop_thread(bridge: Bridge) -> None:
    assert not bridge.started()
    before = {t for t in threading.enumerate() if t.name == "fda-sync-bridge"}
    start = threading.Barrier(64, timeout=120)
    loop_threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            loop_threads.append(bridge.run(_thread))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = {t for t in threading.enumerate() if t.name == "fda-sync-bridge"}
    assert errors == []
    assert len(loop_threads) == 64
    assert len(set(loop_threads)) == 1
    assert after - before == set(loop_threads)
    assert os.getpid() == bridge.state().pid


@pytest.mark.chosen_path
@pytest.mark.timeout(120)  # unsettled, the call would wait for good
def test_c2_a_call_cancelled_before_its_task_starts_is_settled(
    app: FastAPI, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt that reaches the loop right after the call's task was created, before
    its first step (Python < 3.12 starts tasks a turn later): the task ends without running
    ``_execute``, and the caller still gets ``CancelledError``."""
    begin = Bridge._begin

    def begin_then_cancel(self: Bridge, state: Any, call: Any, context: Any) -> None:
        begin(self, state, call, context)
        self._cancel(call)

    monkeypatch.setattr(Bridge, "_begin", begin_then_cancel)

    @with_fastapi_depends(app=app)
    async def cancelled(*, r: interrupted_resource(recorder)) -> None:
        await asyncio.sleep(30)

    with pytest.raises(asyncio.CancelledError):
        cancelled()
    # Not started (before 3.12), or started eagerly and torn down.
    assert recorder.events in ([], ["open", "saw CancelledError", "teardown"])
    monkeypatch.undo()

    @with_fastapi_depends(app=app)
    async def fine(*, r: interrupted_resource(recorder)) -> str:
        return r

    assert fine() == "r"
