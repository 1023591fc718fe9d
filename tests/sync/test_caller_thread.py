"""``def`` dependencies run in the thread that makes the sync call.

The caller's thread only waits for its call, so the sync API lends it to the call: a
``def`` dependency (and a ``def`` generator's setup and teardown) runs there, with the
caller's thread-locals, never in a pool thread. Tasks the call starts keep the threadpool.
"""

import asyncio
import contextvars
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
import pytest
from fastapi import Depends, FastAPI

import fda_core
from fda_sync import (
    FastApiDepsStack,
    iter_with_fastapi_depends,
    resolve_fastapi_depends,
    with_fastapi_depends,
)
from fda_sync._bridge import get_bridge

from .test_reliability import _Interrupt

T = TypeVar("T")
BRIDGE = "fda-sync-bridge"


def in_thread(name: str, func: Callable[[], T]) -> T:
    """``func()`` in a new thread called ``name``; its result or its exception."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, func()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join(120)
    assert outcome, f"{name} did not finish"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class Where:
    """Records the thread each step ran in."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str]] = []

    def __call__(self, step: str) -> None:
        self.steps.append((step, threading.current_thread().name))

    def threads(self) -> dict[str, str]:
        return dict(self.steps)


def dependencies(where: Where) -> tuple[Any, Any, Any]:
    async def async_dep() -> str:
        where("async dep")
        return "a"

    def def_dep() -> str:
        where("def dep")
        return "d"

    def def_generator() -> Iterator[str]:
        where("generator setup")
        try:
            yield "g"
        finally:
            where("generator teardown")

    return (
        Annotated[str, Depends(async_dep)],
        Annotated[str, Depends(def_dep)],
        Annotated[str, Depends(def_generator)],
    )


@pytest.mark.parametrize("caller", ["MainThread", "worker"])
@pytest.mark.parametrize("body", ["def", "async def"])
def test_def_dependencies_run_in_the_calling_thread(app: FastAPI, caller: str, body: str) -> None:
    where = Where()
    A, D, G = dependencies(where)

    if body == "def":

        @with_fastapi_depends(app=app)
        def func(*, a: A, d: D, g: G) -> str:
            where("body")
            return a + d + g

    else:

        @with_fastapi_depends(app=app)
        async def func(*, a: A, d: D, g: G) -> str:
            where("body")
            return a + d + g

    result = func() if caller == "MainThread" else in_thread(caller, func)

    assert result == "adg"
    assert where.threads() == {
        "async dep": BRIDGE,
        "def dep": caller,
        "generator setup": caller,
        "generator teardown": caller,
        "body": caller if body == "def" else BRIDGE,
    }


def test_the_stack_runs_each_step_in_the_thread_that_asks_for_it(app: FastAPI) -> None:
    where = Where()
    _, D, G = dependencies(where)
    stack = in_thread("starter", lambda: FastApiDepsStack(app=app).start())
    assert in_thread("resolver", lambda: (stack.resolve(D), stack.resolve(G))) == ("d", "g")
    in_thread("closer", stack.close)
    assert where.steps == [
        ("def dep", "resolver"),
        ("generator setup", "resolver"),
        ("generator teardown", "closer"),
    ]


def test_resolve_and_iter_run_def_dependencies_in_the_callers_thread(app: FastAPI) -> None:
    where = Where()
    _, D, G = dependencies(where)

    def needs(d: D, g: G) -> None: ...

    def resolve() -> dict[str, Any]:
        with resolve_fastapi_depends(needs, dependency_overrides_provider=app) as values:
            return values

    assert in_thread("resolver", resolve) == {"d": "d", "g": "g"}

    @iter_with_fastapi_depends(app=app)
    def items(*, d: D, g: G) -> Iterator[str]:
        where("body")
        yield d
        yield g

    assert in_thread("consumer", lambda: list(items())) == ["d", "g"]
    assert [thread for _, thread in where.steps] == ["resolver"] * 3 + ["consumer"] * 4


def test_tasks_the_call_starts_keep_the_threadpool(app: FastAPI) -> None:
    where = Where()
    _, D, _ = dependencies(where)

    @fda_core.with_fastapi_depends(app=app)
    async def part(*, d: D) -> str:
        return d

    @with_fastapi_depends(app=app)
    async def func() -> list[str]:
        # The same dependency, awaited by the call's own task, then by two other tasks.
        return [await part(), *await asyncio.gather(part(), part())]

    assert func() == ["d", "d", "d"]
    first, *others = [thread for _, thread in where.steps]
    assert first == "MainThread"
    assert len(others) == 2
    assert not {"MainThread", BRIDGE} & set(others)


def test_a_def_dependency_may_make_sync_calls_with_the_threadpool_exhausted(
    app: FastAPI,
) -> None:
    """A ``def`` dependency calling the sync API waits in the caller's thread, holding no
    pool thread: with the pool at one thread (and that one taken), nothing deadlocks."""

    def inner_dep() -> str:
        return threading.current_thread().name

    @with_fastapi_depends(app=app)
    def inner(*, name: Annotated[str, Depends(inner_dep)]) -> str:
        return name

    def outer_dep() -> str:
        return "outer:" + inner()

    @with_fastapi_depends(app=app)
    def outer(*, value: Annotated[str, Depends(outer_dep)]) -> str:
        return value

    release = threading.Event()

    async def shrink_pool() -> float:
        limiter = anyio.to_thread.current_default_thread_limiter()
        total = limiter.total_tokens
        limiter.total_tokens = 1
        return total

    async def restore_pool(total: float) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = total

    async def take_the_pool_thread() -> None:
        await anyio.to_thread.run_sync(release.wait)

    bridge = get_bridge()
    total = bridge.run(shrink_pool)
    bridge.call_soon(bridge.state(), take_the_pool_thread)
    try:
        assert in_thread("caller", outer) == "outer:caller"
    finally:
        release.set()
        bridge.run(lambda: restore_pool(total))


def test_cancelled_while_a_def_dependency_runs_as_with_fastapis_threadpool(
    app: FastAPI,
) -> None:
    """An anyio cancel scope waits for a ``def`` that started, as it waits for a thread of
    FastAPI's pool: the value is used, and the scope's cancellation lands after."""

    def outcome(run: Callable[[Callable[[], Any]], Any]) -> list[str]:
        events: list[str] = []
        scopes: list[anyio.CancelScope] = []
        loop: list[asyncio.AbstractEventLoop] = []

        def slow() -> str:
            loop[0].call_soon_threadsafe(scopes[0].cancel)  # cancelled while this runs
            deadline = time.monotonic() + 120
            while not scopes[0].cancel_called:
                assert time.monotonic() < deadline, "the scope was not cancelled"
                time.sleep(0.01)
            events.append("slow finished")
            return "slow"

        @fda_core.with_fastapi_depends(app=app)
        async def part(*, s: Annotated[str, Depends(slow)]) -> str:
            return s

        async def body() -> None:
            loop.append(asyncio.get_running_loop())
            with anyio.CancelScope() as scope:  # cancels this task: the lent one
                scopes.append(scope)
                events.append(await part())
                await anyio.sleep(1)
                events.append("not reached")
            events.append(f"cancelled: {scope.cancelled_caught}")

        run(body)
        return events

    in_a_pool_thread = outcome(lambda body: asyncio.run(body()))
    in_the_callers_thread = outcome(lambda body: with_fastapi_depends(app=app)(body)())
    assert in_a_pool_thread == ["slow finished", "slow", "cancelled: True"]
    assert in_the_callers_thread == in_a_pool_thread


def test_keyboard_interrupt_in_a_def_dependency(app: FastAPI) -> None:
    where = Where()
    _, _, G = dependencies(where)

    def interrupted(g: G) -> str:
        raise KeyboardInterrupt

    @with_fastapi_depends(app=app)
    def func(*, value: Annotated[str, Depends(interrupted)]) -> str:
        return value

    with pytest.raises(KeyboardInterrupt):
        func()
    assert where.steps == [("generator setup", "MainThread"), ("generator teardown", "MainThread")]

    @with_fastapi_depends(app=app)
    def fine(*, g: G) -> str:
        return g

    assert fine() == "g"


def test_an_interrupted_caller_still_runs_the_teardown_of_its_def_generators(
    app: FastAPI,
) -> None:
    where = Where()
    _, _, G = dependencies(where)
    with _Interrupt() as interrupt:

        @with_fastapi_depends(app=app)
        async def blocked(*, g: G) -> None:
            interrupt.ready.set()
            await asyncio.sleep(30)

        with pytest.raises(KeyboardInterrupt):
            blocked()
    assert where.steps == [("generator setup", "MainThread"), ("generator teardown", "MainThread")]


def test_def_dependencies_see_the_callers_context_and_what_dependencies_set(
    app: FastAPI,
) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    user: contextvars.ContextVar[str] = contextvars.ContextVar("user")

    async def set_user() -> AsyncIterator[None]:
        token = user.set("ann")
        yield
        user.reset(token)

    def read(_: Annotated[None, Depends(set_user)]) -> tuple[str, str]:
        return request_id.get(), user.get()

    @with_fastapi_depends(app=app)
    def func(*, seen: Annotated[tuple[str, str], Depends(read)]) -> tuple[str, str]:
        return seen

    def call() -> tuple[str, str]:
        request_id.set("r-1")
        return func()

    assert in_thread("caller", call) == ("r-1", "ann")


def test_stop_iteration_from_a_def_dependency_is_an_error_not_a_hang(app: FastAPI) -> None:
    def first_item() -> str:
        return next(iter([]))

    @with_fastapi_depends(app=app)
    def func(*, item: Annotated[str, Depends(first_item)]) -> str:
        return item

    with pytest.raises(RuntimeError, match=r"first_item\(\) raised StopIteration"):
        func()


def test_ctrl_c_during_a_def_teardown_waits_for_its_end(app: FastAPI) -> None:
    """The teardown runs in the caller's (main) thread, where signal handlers run: the
    interrupt is held back until the teardown is done, then reaches the caller."""
    events: list[str] = []
    with _Interrupt() as interrupt:

        def connection() -> Iterator[str]:
            yield "conn"
            if not interrupt.sent.is_set():  # the first call
                interrupt.ready.set()
                interrupt.wait_until_held()  # the signal lands here
            events.append("connection returned")

        @with_fastapi_depends(app=app)
        def func(*, conn: Annotated[str, Depends(connection)]) -> str:
            return conn

        with pytest.raises(KeyboardInterrupt):
            func()
    assert events == ["connection returned"]
    assert func() == "conn"


def test_nothing_starts_in_an_already_cancelled_scope(app: FastAPI) -> None:
    """As anyio's threadpool: a ``def`` function awaited in a cancelled scope never runs."""
    ran: list[str] = []

    @fda_core.with_fastapi_depends(app=app)
    def charge_card() -> str:
        ran.append("charged")
        return "done"

    async def scenario() -> list[str]:
        ran.clear()
        with anyio.move_on_after(0):  # the deadline is over already
            await charge_card()
        return list(ran)

    assert asyncio.run(scenario()) == []
    assert with_fastapi_depends(app=app)(scenario)() == []


class SoftTimeLimitExceeded(Exception):
    pass


@pytest.mark.process
def test_two_signals_at_once_still_tear_down_and_leave_nothing_pending(app: FastAPI) -> None:
    """Ctrl-C and a time limit (a handler that raises, as Celery's) land together: the
    second strikes while the first is being handled. The call still tears down, and the
    next one works."""
    events: list[str] = []

    def generator() -> Iterator[str]:
        events.append("setup")
        try:
            yield "g"
        finally:
            events.append("teardown")

    waiting = threading.Event()

    async def slow(g: Annotated[str, Depends(generator)]) -> str:
        waiting.set()
        await asyncio.sleep(5)  # the signals land here (teardown may wait for the end)
        return g

    @with_fastapi_depends(app=app)
    def func(*, s: Annotated[str, Depends(slow)]) -> str:
        return s

    def on_alarm(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded

    def fire() -> None:
        assert waiting.wait(120)
        main = threading.main_thread().ident or 0
        signal.pthread_kill(main, signal.SIGINT)
        signal.pthread_kill(main, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, on_alarm)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=fire, daemon=True).start()
        with pytest.raises((KeyboardInterrupt, SoftTimeLimitExceeded)):
            func()
        deadline = time.monotonic() + 120
        while events != ["setup", "teardown"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert events == ["setup", "teardown"]
    assert func() == "g"
