"""Sync calls driven from the caller's thread: where code runs, how many round trips.

The sync API drives a plan from the caller's thread when that makes fewer thread hops
than the bridge loop (``fda_sync._caller_path.walk``): an all-``def`` graph needs no loop at all,
and each async step is one round trip. Everything else must be what the loop path does:
every test of tests/sync runs on both paths; the ones here check the choice itself, the
round trips, and what only this path has to get right (context variables across its
steps, interrupts between its own lines).
"""

import asyncio
import contextlib
import contextvars
import gc
import signal
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.testclient import TestClient

import fda_core
import fda_sync
from fda_core import configure
from fda_sync import with_fastapi_depends
from fda_sync._bridge import Bridge, get_bridge

from .conftest import run_script

BRIDGE = "fda-sync-bridge"


def thread() -> str:
    return threading.current_thread().name


# -- the tutorial graph: def settings <- def generator session <- repository class ---------


def tutorial_graph(events: list[str]) -> Any:
    def get_settings() -> dict[str, str]:
        events.append(f"settings in {thread()}")
        return {"dsn": "sqlite://"}

    def get_db(settings: Annotated[dict[str, str], Depends(get_settings)]) -> Iterator[str]:
        events.append(f"open in {thread()}")
        try:
            yield f"db:{settings['dsn']}"
        finally:
            events.append(f"close in {thread()}")

    class Repo:
        def __init__(self, db: Annotated[str, Depends(get_db)]) -> None:
            events.append(f"repo in {thread()}")
            self.db = db

    return Repo


@contextmanager
def round_trips(bridge: Bridge) -> Iterator[list[str]]:
    """Count the bridge's round trips (``Bridge.run``) made meanwhile, by any thread."""
    made: list[str] = []
    run = bridge.run

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(thread())
        return run(*args, **kwargs)

    bridge.run = counting  # type: ignore[method-assign]
    try:
        yield made
    finally:
        del bridge.run


@pytest.mark.chosen_path
def test_an_all_def_graph_never_starts_the_loop() -> None:
    """In a fresh process: the tutorial graph, called from the main thread and from
    another one, runs entirely in the calling thread, and no bridge thread ever starts."""
    script = run_script(
        """
        import threading
        from typing import Annotated, Iterator
        from fastapi import Depends, FastAPI
        from fda_sync import with_fastapi_depends
        from fda_sync._bridge import get_bridge

        where = []

        def get_settings() -> str:
            where.append(threading.current_thread().name)
            return "sqlite://"

        def get_db(dsn: Annotated[str, Depends(get_settings)]) -> Iterator[str]:
            where.append(threading.current_thread().name)
            yield "db:" + dsn
            where.append(threading.current_thread().name)

        class Repo:
            def __init__(self, db: Annotated[str, Depends(get_db)]) -> None:
                self.db = db

        @with_fastapi_depends(app=FastAPI())
        def job(n: int, *, repo: Annotated[Repo, Depends()]) -> str:
            where.append(threading.current_thread().name)
            return f"{n}:{repo.db}"

        assert job(1) == "1:db:sqlite://"
        worker = threading.Thread(target=job, args=(2,), name="worker")
        worker.start()
        worker.join()
        print(sorted(set(where[:4])), sorted(set(where[4:])))
        print("bridge started:", get_bridge().started())
        print("threads:", sorted(t.name for t in threading.enumerate()))
        """
    )
    assert script.stderr == ""
    assert script.lines == [
        "['MainThread'] ['worker']",
        "bridge started: False",
        "threads: ['MainThread']",
    ]


@pytest.mark.chosen_path
def test_one_round_trip_per_async_step(app: FastAPI) -> None:
    """A bearer-token user (HTTPBearer's ``__call__`` is async) on top of the def chain:
    the def steps run in the caller's thread, the token check is the one round trip."""
    events: list[str] = []
    Repo = tutorial_graph(events)
    bearer = HTTPBearer()

    def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    ) -> str:
        events.append(f"user in {thread()}")
        return credentials.credentials

    @with_fastapi_depends(app=app)
    def job(
        *, repo: Annotated[Repo, Depends()], user: Annotated[str, Depends(current_user)]
    ) -> str:
        events.append(f"body in {thread()}")
        return f"{user}:{repo.db}"

    scope = {"headers": {"authorization": "Bearer alice"}}
    bridge = get_bridge()
    with round_trips(bridge) as made:
        assert job(_scope=scope) == "alice:db:sqlite://"
    assert made == ["MainThread"]  # HTTPBearer, nothing else
    assert {event.split(" in ")[1] for event in events} == {"MainThread"}

    # The all-async chain: one round trip too, the whole call on the loop.
    async def settings() -> str:
        return "sqlite://"

    async def session(dsn: Annotated[str, Depends(settings)]) -> AsyncIterator[str]:
        yield "db:" + dsn

    @with_fastapi_depends(app=app)
    async def async_job(*, db: Annotated[str, Depends(session)]) -> str:
        events.append(f"async body in {thread()}")
        return db

    with round_trips(bridge) as made:
        assert async_job() == "db:sqlite://"
    assert made == ["MainThread"]
    assert events[-1] == f"async body in {BRIDGE}"


@pytest.mark.chosen_path
def test_the_choice_follows_the_overrides(app: FastAPI) -> None:
    """An override that turns the def graph async moves that step to the loop; removing
    it brings the call back to the caller's thread."""
    events: list[str] = []
    Repo = tutorial_graph(events)

    @with_fastapi_depends(app=app)
    def job(*, repo: Annotated[Repo, Depends()]) -> str:
        return repo.db

    bridge = get_bridge()
    get_db = Repo.__init__.__annotations__["db"].__metadata__[0].dependency

    async def fake_db() -> AsyncIterator[str]:
        events.append(f"fake open in {thread()}")
        yield "fake"
        events.append(f"fake close in {thread()}")

    for override, expected, trips in ((None, "db:sqlite://", 0), (fake_db, "fake", 2)) * 2:
        events.clear()
        app.dependency_overrides.clear()
        if override is not None:
            app.dependency_overrides[get_db] = override
        with round_trips(bridge) as made:
            assert job() == expected
        assert len(made) == trips  # the async generator: its set-up, its teardown
        if override is None:
            assert events == [f"{e} in MainThread" for e in ("settings", "open", "repo", "close")]
        else:
            assert events == [
                f"fake open in {BRIDGE}",
                "repo in MainThread",
                f"fake close in {BRIDGE}",
            ]


# -- context variables: what a route's dependencies see, on every path ---------------------

A: contextvars.ContextVar[str] = contextvars.ContextVar("A", default="-")
B: contextvars.ContextVar[str] = contextvars.ContextVar("B", default="-")
C: contextvars.ContextVar[str] = contextvars.ContextVar("C", default="-")


def context_graph(log: list[str], body_kind: str) -> Callable[..., Any]:
    """Async steps set A (seen by everything after them, as in a route's task), def steps
    set B (seen by nobody else: FastAPI's threadpool runs each in a copy), the body sets C
    (seen by the teardown that follows an async body, not a def one)."""

    async def set_a() -> str:
        A.set("a")
        return "set"

    def set_b() -> str:
        B.set("b")
        return "set"

    def session(
        _a: Annotated[str, Depends(set_a)], _b: Annotated[str, Depends(set_b)]
    ) -> Iterator[str]:
        log.append(f"session open: A={A.get()} B={B.get()} C={C.get()}")
        yield "db"
        log.append(f"session close: A={A.get()} B={B.get()} C={C.get()}")

    async def set_a_again(_db: Annotated[str, Depends(session)]) -> str:
        log.append(f"async dep: A={A.get()} B={B.get()}")
        A.set("a2")
        return "set"

    def reader(_again: Annotated[str, Depends(set_a_again)]) -> str:
        log.append(f"def dep: A={A.get()} B={B.get()}")
        return "read"

    if body_kind == "def":

        def endpoint(r: Annotated[str, Depends(reader)]) -> str:
            log.append(f"body: A={A.get()} B={B.get()}")
            C.set("c")
            return r

    else:

        async def endpoint(r: Annotated[str, Depends(reader)]) -> str:  # type: ignore[misc]
            log.append(f"body: A={A.get()} B={B.get()}")
            C.set("c")
            return r

    return endpoint


@pytest.mark.parametrize("body_kind", ["def", "async def"])
def test_context_variables_flow_as_in_a_route(path: str, body_kind: str) -> None:
    route_log: list[str] = []
    app = FastAPI()
    app.get("/")(context_graph(route_log, body_kind))
    with TestClient(app) as client:
        assert client.get("/").json() == "read"

    async_log: list[str] = []
    assert asyncio.run(
        fda_core.with_fastapi_depends(context_graph(async_log, body_kind), app=app)()
    )
    sync_log: list[str] = []
    assert with_fastapi_depends(context_graph(sync_log, body_kind), app=app)() == "read"

    assert route_log[0] == "session open: A=a B=- C=-"
    assert async_log == route_log
    assert sync_log == route_log
    assert (A.get(), B.get(), C.get()) == ("-", "-", "-")  # nothing flows back to the caller


# -- the context factory ---------------------------------------------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@contextmanager
def sync_context(ctx: Any) -> Iterator[None]:
    token = REQUEST_ID.set(ctx["request_id"])
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


@asynccontextmanager
async def async_context(ctx: Any) -> AsyncIterator[None]:
    token = REQUEST_ID.set(ctx["request_id"])
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


@pytest.mark.chosen_path
@pytest.mark.parametrize(("factory", "trips"), [(sync_context, 0), (async_context, 1)])
def test_a_context_factory_keeps_the_call_in_the_callers_thread_if_it_is_sync(
    app: FastAPI, factory: Any, trips: int
) -> None:
    """A sync context manager (context_logging's ``Context``) is entered in the caller's
    thread; an async-only one needs the loop, so the call runs there."""
    configure(app=app, context_factory=factory)

    def dep() -> str:
        return f"{REQUEST_ID.get()} in {thread()}"

    @with_fastapi_depends(context={"request_id": "r-1"})
    def job(*, seen: Annotated[str, Depends(dep)]) -> tuple[str, str]:
        return seen, REQUEST_ID.get()

    with round_trips(get_bridge()) as made:
        assert job() == ("r-1 in MainThread", "r-1")
    assert len(made) == trips
    assert REQUEST_ID.get() == "-"


# -- background tasks ------------------------------------------------------------------------


def test_background_tasks_def_in_the_callers_thread_async_on_the_loop(
    app: FastAPI, path: str
) -> None:
    ran: list[str] = []

    def note(tasks: BackgroundTasks) -> None:
        tasks.add_task(lambda: ran.append(f"def task in {thread()}"))

        async def async_task() -> None:
            ran.append(f"async task in {thread()}")

        tasks.add_task(async_task)

    @with_fastapi_depends(app=app)
    def job(*, _: Annotated[None, Depends(note)]) -> str:
        ran.append("body")
        return "done"

    def call() -> str:
        return job()

    worker = threading.Thread(target=lambda: ran.append(call()), name="caller")
    worker.start()
    worker.join(120)
    assert ran == ["body", "def task in caller", f"async task in {BRIDGE}", "done"]


# -- a request-bound def graph: the request is built in the caller's thread ------------------


@pytest.mark.chosen_path
def test_a_def_graph_reading_the_request_and_the_call_scope(app: FastAPI) -> None:
    def who(request: Request) -> str:
        return f"{request.method} {request.url.path} {request.headers['x-user']} {thread()}"

    @with_fastapi_depends(app=app, scope={"method": "POST"})
    def job(*, seen: Annotated[str, Depends(who)]) -> str:
        return seen

    with round_trips(get_bridge()) as made:
        assert job(_scope={"path": "/jobs", "headers": {"x-user": "ann"}}) == (
            "POST /jobs ann MainThread"
        )
    assert made == []


# -- interrupts between this path's own lines ------------------------------------------------

_PACKAGES = tuple(
    str(Path(module.__file__).parent)  # type: ignore[arg-type]
    for module in (fda_core, fda_sync)
)


@contextmanager
def interrupt_at(position: int) -> Iterator[list[int]]:
    """Raise ``KeyboardInterrupt`` at the ``position``-th point of the library's code, in
    this thread, where a signal handler could raise it: on entering a function of the
    library, and when a built-in it calls returns. Yields the count of points."""
    count = [0]

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "c_return") or signal.getsignal(signal.SIGINT) is not ours:
            return  # nothing a signal can interrupt, or signals are held back (teardown)
        if frame.f_code.co_filename.startswith(_PACKAGES):
            count[0] += 1
            if count[0] == position:
                where = f"{frame.f_code.co_name}:{frame.f_lineno}"
                raise KeyboardInterrupt(f"injected at {event} in {where}")

    ours = signal.getsignal(signal.SIGINT)
    sys.setprofile(profiler)
    try:
        yield count
    finally:
        sys.setprofile(None)


def interrupt_graphs(events: list[str]) -> dict[str, Any]:
    """Graphs for the interrupt test: all def; def and async steps mixed (an async
    generator, an async def dependency: they share the call's task)."""
    Repo = tutorial_graph(events)

    async def token() -> AsyncIterator[str]:
        events.append("open token")
        try:
            yield "t"
        finally:
            events.append("close token")

    async def user(repo: Annotated[Repo, Depends()], t: Annotated[str, Depends(token)]) -> str:
        return t + repo.db

    return {
        "all def": Annotated[Repo, Depends()],
        "mixed": Annotated[str, Depends(user)],
    }


@pytest.mark.usefixtures("unbounded_cancel_wait")
@pytest.mark.process
@pytest.mark.chosen_path
@pytest.mark.parametrize(
    ("graph", "body_fails"),
    [("all def", False), ("all def", True), ("mixed", False), ("context factory", True)],
    ids=["all def", "all def, body raises", "mixed", "context factory, body raises"],
)
def test_an_interrupt_anywhere_loses_no_teardown(
    app: FastAPI, graph: str, body_fails: bool
) -> None:
    """KeyboardInterrupt injected at each point of the library's code where a signal
    could raise it, in the caller's thread, one point per call: every dependency opened is
    closed exactly once, before the interrupt reaches the caller; no call is left in
    flight (a bridge at exit would wait for it); every signal handler is back."""
    events: list[str] = []
    dependency = interrupt_graphs(events)["mixed" if graph == "mixed" else "all def"]
    if graph == "context factory":

        @contextmanager
        def context(ctx: Any) -> Iterator[None]:
            events.append("open context")
            try:
                yield
            finally:
                events.append("close context")

        configure(app=app, context_factory=context)

    @with_fastapi_depends(app=app)
    def job(*, value: dependency) -> str:
        if body_fails:
            raise ValueError("body")
        return "done"

    with pytest.raises(ValueError, match="body") if body_fails else contextlib.nullcontext():
        job()  # compiled, and its plan cached, before the points are counted
    bridge = get_bridge()
    handlers = {signum: signal.getsignal(signum) for signum in signal.Signals}
    position = 0
    while True:
        position += 1
        events.clear()
        with interrupt_at(position) as count:
            try:
                job()
            except KeyboardInterrupt as exc:
                outcome = f"interrupted {exc}"
            except ValueError:
                outcome = "body raised"
            else:
                outcome = "returned"
            # Counted before the garbage collector could close a generator left open.
            opened = sorted(e.split()[1] for e in events if e.startswith("open"))
            closed = sorted(e.split()[1] for e in events if e.startswith("close"))
        assert opened == closed, f"position {position} ({outcome}): {events}"
        assert not bridge.in_flight.busy(), f"position {position}: in flight ({outcome})"
        # Signal handlers held back during teardown are all back (at the latest once the
        # next call's teardown finished what an interrupt cut short).
        now = {signum: signal.getsignal(signum) for signum in signal.Signals}
        if now != handlers:
            with contextlib.suppress(ValueError):
                job()
            now = {signum: signal.getsignal(signum) for signum in signal.Signals}
        assert now == handlers, f"position {position} ({outcome}): handlers not restored"
        if position > count[0]:  # the call ran to its end: every position was tried
            assert outcome == ("body raised" if body_fails else "returned")
            break
        assert outcome.startswith("interrupted"), f"position {position}: the interrupt was lost"
    assert position > 40  # the whole call was walked through


# -- what only one task for a call's async steps gives ---------------------------------------


def test_a_calls_async_steps_share_one_task_as_in_a_route(path: str) -> None:
    """State keyed by the task (``async_scoped_session(scopefunc=current_task)``) is the
    same for an async dependency and the async body, as in a route."""
    seen: list[int] = []

    def settings() -> Iterator[str]:
        yield "cfg"

    async def current_user(s: Annotated[str, Depends(settings)]) -> int:
        seen.append(id(asyncio.current_task()))
        return seen[-1]

    async def body(*, user_task: Annotated[int, Depends(current_user)]) -> bool:
        return id(asyncio.current_task()) == user_task

    app = FastAPI()
    app.get("/")(body)
    with TestClient(app) as client:
        assert client.get("/").json() is True
    assert with_fastapi_depends(body, app=app)() is True


def test_a_cancelled_error_raised_by_a_dependency_tears_down_in_order(path: str) -> None:
    """An async dependency that awaits a future someone else cancelled raises
    ``CancelledError`` while async generators are open: teardown still runs in reverse
    order, and the caller gets the ``CancelledError``."""
    log: list[str] = []

    def generator(name: str) -> Any:
        async def dependency() -> AsyncIterator[str]:
            log.append(f"open {name}")
            try:
                yield name
            except BaseException as exc:
                log.append(f"{name} saw {type(exc).__name__}")
                raise

        return Annotated[str, Depends(dependency)]

    def session(a1: generator("a1"), a2: generator("a2")) -> Iterator[str]:
        log.append("open d")
        try:
            yield "d"
        except BaseException as exc:
            log.append(f"d saw {type(exc).__name__}")
            raise

    async def fails(d: Annotated[str, Depends(session)]) -> None:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future

    @with_fastapi_depends(app=FastAPI())
    def job(*, x: Annotated[None, Depends(fails)]) -> str:
        return "body"

    with pytest.raises(asyncio.CancelledError):
        job()
    opened = ["open a1", "open a2", "open d"]
    assert log == [
        *opened,
        "d saw CancelledError",
        "a2 saw CancelledError",
        "a1 saw CancelledError",
    ]


def test_a_call_leaves_nothing_for_the_cycle_collector(path: str) -> None:
    """What a call held is freed when it returns (no reference cycle keeps it alive)."""

    class Big:
        pass

    refs: list[weakref.ref[Big]] = []

    def big() -> Iterator[Big]:
        value = Big()
        refs.append(weakref.ref(value))
        yield value

    async def check(b: Annotated[Big, Depends(big)]) -> str:
        return "ok"

    @with_fastapi_depends(app=FastAPI())
    def job(*, b: Annotated[Big, Depends(big)], c: Annotated[str, Depends(check)]) -> str:
        return c

    gc.disable()
    try:
        for _ in range(3):
            assert job() == "ok"
        # The task a call's async steps shared ends on the loop just after the call.
        deadline = time.monotonic() + 120
        while any(ref() for ref in refs) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        gc.enable()


def test_a_refused_call_enters_no_context(app: FastAPI, path: str) -> None:
    """From a running event loop the call is refused before anything starts, the
    context factory's manager included."""
    entered: list[str] = []

    @contextmanager
    def context(ctx: Any) -> Iterator[None]:
        entered.append("enter")
        yield

    configure(app=app, context_factory=context)

    @with_fastapi_depends(context={"request_id": "abc"})
    def job() -> str:
        return "body"

    async def from_a_coroutine() -> None:
        with pytest.raises(fda_sync.BridgeError, match="event loop"):
            job()

    asyncio.run(from_a_coroutine())
    assert entered == []
    assert job() == "body"
    assert entered == ["enter"]


@pytest.mark.usefixtures("unbounded_cancel_wait")
@pytest.mark.process
@pytest.mark.chosen_path
@pytest.mark.parametrize("graph", ["all def", "mixed"])
def test_a_real_signal_at_any_point_is_delivered_once_and_loses_no_teardown(
    app: FastAPI, graph: str
) -> None:
    """A real SIGINT (through whatever handler is installed then, the deferring one
    included) at each point of the library's code, one point per call: the caller sees
    exactly one KeyboardInterrupt (a held one after teardown), every dependency opened is
    closed, and no signal stays held or pending."""
    events: list[str] = []
    dependency = interrupt_graphs(events)[graph]

    @with_fastapi_depends(app=app)
    def job(*, value: dependency) -> str:
        return "done"

    job()
    original = signal.getsignal(signal.SIGINT)
    count = [0, 0]  # points seen, the point to signal at

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event in ("call", "c_return") and frame.f_code.co_filename.startswith(_PACKAGES):
            count[0] += 1
            if count[0] == count[1]:
                signal.raise_signal(signal.SIGINT)

    position = 0
    while True:
        position += 1
        count[:] = [0, position]

        events.clear()
        interrupts = 0
        sys.setprofile(profiler)
        try:
            try:
                job()
            finally:
                sys.setprofile(None)
        except KeyboardInterrupt:
            interrupts += 1
        try:
            time.sleep(0.01)  # a signal still on its way lands here
        except KeyboardInterrupt:
            interrupts += 1
        if position > count[0]:
            assert interrupts == 0
            break
        opened = sorted(e.split()[1] for e in events if e.startswith("open"))
        closed = sorted(e.split()[1] for e in events if e.startswith("close"))
        assert opened == closed, f"position {position}: {events}"
        assert interrupts == 1, f"position {position}: {interrupts} interrupts"
        assert signal.getsignal(signal.SIGINT) is original, f"position {position}"
    assert position > 40


def test_the_calls_task_ends_when_teardown_raises(path: str) -> None:
    """Two async steps share the call's task; a teardown that turns the body's error
    into another one still ends that task."""

    def session() -> Iterator[str]:
        try:
            yield "s"
        except ValueError:
            raise HTTPException(500, "rolled back") from None

    async def user(s: Annotated[str, Depends(session)]) -> str:
        return "u"

    @with_fastapi_depends(app=FastAPI())
    async def job(*, u: Annotated[str, Depends(user)]) -> str:
        raise ValueError("body")

    async def holders() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks() if "_hold" in repr(t.get_coro())}

    bridge = get_bridge()
    before = bridge.run(holders)
    for _ in range(20):
        with pytest.raises(HTTPException, match="rolled back"):
            job()

    async def left() -> int:
        # The last call's task ends a moment after the call (set elsewhere: no Event).
        deadline = time.monotonic() + 120
        while await holders() - before and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return len(await holders() - before)

    assert bridge.run(left) == 0


def test_async_background_tasks_run_in_the_dependencies_task(path: str) -> None:
    """As in a route, an async background task runs in the task of the call's async
    dependencies, and sees the context variables they set."""
    seen: list[Any] = []

    async def user(tasks: BackgroundTasks) -> int:
        A.set("set by user")

        async def task() -> None:
            seen.extend([id(asyncio.current_task()), A.get()])

        tasks.add_task(task)
        return id(asyncio.current_task())

    def job(*, user_task: Annotated[int, Depends(user)]) -> int:
        return user_task

    app = FastAPI()
    app.get("/")(job)
    with TestClient(app) as client:
        route_user_task = client.get("/").json()
    assert seen == [route_user_task, "set by user"]
    seen.clear()
    user_task = with_fastapi_depends(job, app=app)()
    assert seen == [user_task, "set by user"]
