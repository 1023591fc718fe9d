"""Generators, ``resolve_fastapi_depends`` blocks and stacks driven from the caller's thread.

They take the path a decorated call takes for the same graph (``prefers_caller``): a graph
of ``def`` dependencies never reaches the loop, each async step is one round trip, a
stack's async steps all run in its one task. What every path must do alike is checked by
the rest of tests/sync (every test there runs on both paths) and tests/differential; here:
the choice, the round trips, where a stack's steps run, exit, and interrupts at every
point of the library's code.
"""

import asyncio
import contextlib
import re
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fda_sync import FastApiDepsStack, iter_with_fastapi_depends, resolve_fastapi_depends
from fda_sync._bridge import get_bridge

from .conftest import run_script
from .test_driven import (
    _PACKAGES,
    BRIDGE,
    interrupt_graphs,
    round_trips,
    thread,
    tutorial_graph,
)

SCOPE = {"headers": {"authorization": "Bearer alice"}}


@pytest.mark.chosen_path
def test_def_generators_and_resolve_blocks_never_start_the_loop() -> None:
    """In a fresh process: a generator and a ``with`` block over the tutorial graph run
    in the calling thread, no bridge thread starts, and a generator left suspended is
    torn down at exit all the same."""
    script = run_script(
        """
        import threading
        from typing import Annotated, Iterator
        from fastapi import Depends, FastAPI
        from fda_sync import iter_with_fastapi_depends, resolve_fastapi_depends
        from fda_sync._bridge import get_bridge

        where = []

        def get_settings() -> str:
            where.append(threading.current_thread().name)
            return "sqlite://"

        def get_db(dsn: Annotated[str, Depends(get_settings)]) -> Iterator[str]:
            where.append(threading.current_thread().name)
            try:
                yield "db:" + dsn
            finally:
                print("close", threading.current_thread().name, flush=True)

        app = FastAPI()

        @iter_with_fastapi_depends(app=app)
        def rows(*, db: Annotated[str, Depends(get_db)]) -> Iterator[str]:
            yield db
            yield db

        def target(db: Annotated[str, Depends(get_db)]) -> None: ...

        assert list(rows()) == ["db:sqlite://"] * 2
        with resolve_fastapi_depends(target, dependency_overrides_provider=app) as values:
            assert values == {"db": "db:sqlite://"}
        worker = threading.Thread(target=lambda: next(rows()), name="worker")
        worker.start()
        worker.join()
        kept = rows()
        assert next(kept) == "db:sqlite://"
        print(sorted(set(where)), get_bridge().started(), flush=True)
        print("threads:", sorted(t.name for t in threading.enumerate()), flush=True)
        print("main exits", flush=True)
        """
    )
    assert script.stderr == ""
    assert script.returncode == 0
    assert script.lines == [
        "close MainThread",
        "close MainThread",
        "close worker",  # its generator was collected when the thread ended
        "['MainThread', 'worker'] False",
        "threads: ['MainThread']",
        "main exits",
        "close MainThread",  # the suspended one, at exit
    ]


def bearer_graph(events: list[str]) -> tuple[Any, Any]:
    """The tutorial graph, and a current user that needs ``HTTPBearer`` (its ``__call__``
    is async) on top of it."""
    Repo = tutorial_graph(events)
    bearer = HTTPBearer()

    def current_user(
        repo: Annotated[Repo, Depends()],
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    ) -> str:
        events.append(f"user in {thread()}")
        return credentials.credentials + ":" + repo.db

    return Repo, current_user


@pytest.mark.chosen_path
def test_one_round_trip_per_async_step(app: FastAPI) -> None:
    events: list[str] = []
    Repo, current_user = bearer_graph(events)
    User = Annotated[str, Depends(current_user)]
    bridge = get_bridge()

    @iter_with_fastapi_depends(app=app)
    def users(*, user: User) -> Iterator[str]:
        yield user

    def target(user: User) -> None: ...

    with round_trips(bridge) as made:
        assert list(users(_scope=SCOPE)) == ["alice:db:sqlite://"]
    assert made == ["MainThread"]  # HTTPBearer, nothing else
    with (
        round_trips(bridge) as made,
        resolve_fastapi_depends(target, scope=SCOPE, dependency_overrides_provider=app) as v,
    ):
        assert v == {"user": "alice:db:sqlite://"}
    assert made == ["MainThread"]
    assert {event.split(" in ")[1] for event in events} == {"MainThread"}

    with round_trips(bridge) as made:
        stack = FastApiDepsStack(app=app).start()
    assert len(made) == 1  # the lifespan's startup, in the stack's task
    with round_trips(bridge) as made:
        assert stack.resolve(Repo).db == "db:sqlite://"
        assert stack.resolve(Repo).db == "db:sqlite://"  # cached: nothing runs
    assert made == []
    with round_trips(bridge) as made:
        stack.close()
    assert len(made) == 1  # the lifespan's shutdown; the def teardown ran here
    assert events[-1] == "close in MainThread"


@pytest.mark.chosen_path
def test_a_stacks_async_steps_share_its_task_and_its_def_steps_the_callers_threads(
    app: FastAPI,
) -> None:
    """Async dependencies of several resolves, driven from different threads, set up and
    torn down in the stack's one task; ``def`` ones run in the thread that resolves,
    their teardown in the one that closes."""
    events: list[str] = []

    def session(name: str) -> Callable[[], Iterator[str]]:
        def dependency() -> Iterator[str]:
            events.append(f"open {name} in {thread()}")
            yield name
            events.append(f"close {name} in {thread()}")

        return dependency

    def token(name: str) -> Callable[[], AsyncIterator[int]]:
        async def dependency() -> AsyncIterator[int]:
            task = id(asyncio.current_task())
            events.append(f"open {name} in {task}")
            yield task
            events.append(f"close {name} in {id(asyncio.current_task())}")

        return dependency

    def first(
        s: Annotated[str, Depends(session("s1"))],
        t: Annotated[int, Depends(token("t1"))],
        u: Annotated[str, Depends(session("u1"))],
        v: Annotated[str, Depends(session("v1"))],
    ) -> int:
        return t

    def second(
        s: Annotated[str, Depends(session("s2"))],
        t: Annotated[int, Depends(token("t2"))],
        u: Annotated[str, Depends(session("u2"))],
        v: Annotated[str, Depends(session("v2"))],
    ) -> int:
        return t

    def in_thread(name: str, action: Callable[[], Any]) -> Any:
        results: list[Any] = []
        worker = threading.Thread(target=lambda: results.append(action()), name=name)
        worker.start()
        worker.join(120)
        return results[0]

    stack = FastApiDepsStack(app=app).start()
    with round_trips(get_bridge()) as made:
        tasks = {in_thread("one", lambda: stack.resolve(first))}
        tasks.add(in_thread("two", lambda: stack.resolve(second)))
    assert len(made) == 2  # one async step each
    in_thread("closer", stack.close)
    assert len(tasks) == 1
    task = tasks.pop()
    assert events == [
        "open s1 in one",
        f"open t1 in {task}",
        "open u1 in one",
        "open v1 in one",
        "open s2 in two",
        f"open t2 in {task}",
        "open u2 in two",
        "open v2 in two",
        "close v2 in closer",
        "close u2 in closer",
        f"close t2 in {task}",
        "close s2 in closer",
        "close v1 in closer",
        "close u1 in closer",
        f"close t1 in {task}",
        "close s1 in closer",
    ]


def shapes(
    events: list[str], app: FastAPI, stacks: list[FastApiDepsStack] | None = None
) -> dict[str, Callable[[], Any]]:
    """A generator, a ``with`` block and a stack over each interrupt graph (``stacks``
    gets the stacks made)."""
    made: dict[str, Callable[[], Any]] = {}
    stacks = [] if stacks is None else stacks
    for graph, dependency in interrupt_graphs(events).items():

        @iter_with_fastapi_depends(app=app)
        def rows(*, value: dependency) -> Iterator[Any]:  # type: ignore[valid-type]
            yield value

        def target(value: dependency) -> None: ...  # type: ignore[valid-type]

        def use_resolve(target: Callable[..., Any] = target) -> Any:
            with resolve_fastapi_depends(target, dependency_overrides_provider=app) as values:
                return values

        def use_stack(dependency: Any = dependency) -> Any:
            stack = FastApiDepsStack(app=app)
            stacks.append(stack)
            with stack:
                return stack.resolve(dependency)

        made[f"iter, {graph}"] = lambda rows=rows: list(rows())
        made[f"resolve, {graph}"] = use_resolve
        made[f"stack, {graph}"] = use_stack
    return made


@contextlib.contextmanager
def interrupt_at(position: int) -> Iterator[list[int]]:
    """``test_driven.interrupt_at``: ``KeyboardInterrupt`` at the ``position``-th point of
    the library's code where a signal handler could raise it. But for the resumption of a
    generator's frame on Python 3.10, where an exception raised by a profile function ends
    the generator without running its ``except`` and ``finally`` blocks (3.11+ raises it
    inside the frame, as a signal handler does): a real signal is handled inside the
    frame, at the next point that checks for one, which the points after it stand for."""
    count = [0]

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "c_return") or signal.getsignal(signal.SIGINT) is not ours:
            return
        if RESUMED_OUTSIDE and event == "call" and frame.f_lasti >= 0:
            return  # a generator resumed (3.10)
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


#: Python 3.10 runs a profile function's "call" event for a resumed generator outside
#: the frame's exception handling.
RESUMED_OUTSIDE = sys.version_info < (3, 11)

SHAPES = [
    f"{api}, {graph}" for api in ("iter", "resolve", "stack") for graph in ("all def", "mixed")
]


@pytest.mark.usefixtures("unbounded_cancel_wait")
@pytest.mark.process
@pytest.mark.chosen_path
@pytest.mark.parametrize("shape", SHAPES)
def test_an_interrupt_anywhere_loses_no_teardown(shape: str) -> None:
    """``test_driven``'s interrupt injector over a generator, a ``with`` block and a
    stack: ``KeyboardInterrupt`` at each point of the library's code where a signal could
    raise it, one point per use: every dependency opened is closed exactly once before the
    interrupt reaches the caller, nothing is left in flight, every signal handler is back.

    But at one point: the very entry of a stack's ``__exit__`` (or ``close``), before its
    first line, as with any context manager. The stack is then left open as it was, and
    closing it again tears everything down (so would the process's shutdown)."""
    events: list[str] = []
    stacks: list[FastApiDepsStack] = []
    use = shapes(events, FastAPI(), stacks)[shape]
    use()  # compiled, and its plan cached, before the points are counted
    bridge = get_bridge()
    handlers = {signum: signal.getsignal(signum) for signum in signal.Signals}
    position = 0
    while True:
        position += 1
        events.clear()
        with interrupt_at(position) as count:
            try:
                use()
            except KeyboardInterrupt as exc:
                outcome = f"interrupted {exc}"
            else:
                outcome = "returned"
            opened = sorted(e.split()[1] for e in events if e.startswith("open"))
            closed = sorted(e.split()[1] for e in events if e.startswith("close"))
        if opened != closed and re.search(r"at call in (__exit__|close):\d+$", outcome):
            stacks[-1].close()  # left open at the entry of its exit
            closed = sorted(e.split()[1] for e in events if e.startswith("close"))
        assert opened == closed, f"position {position} ({outcome}): {events}"
        assert not bridge.in_flight.busy(), f"position {position}: in flight ({outcome})"
        now = {signum: signal.getsignal(signum) for signum in signal.Signals}
        if now != handlers:
            with contextlib.suppress(KeyboardInterrupt):
                use()
            now = {signum: signal.getsignal(signum) for signum in signal.Signals}
        assert now == handlers, f"position {position} ({outcome}): handlers not restored"
        if position > count[0]:
            assert outcome == "returned"
            break
        assert outcome.startswith("interrupted"), f"position {position}: the interrupt was lost"
    assert position > 40


@pytest.mark.chosen_path
def test_each_api_asks_the_choice_of_a_decorated_call(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each API chooses as ``with_fastapi_depends`` would for a call whose body is the
    caller's code: a ``def`` generator, a block, a stack's caller are ``def`` bodies; an
    ``async def`` generator is an async one (its steps run on the loop)."""
    import fda_sync._api.decorators as decorators

    asked: list[tuple[int, bool]] = []
    prefers_caller = decorators.prefers_caller

    def spy(plan: Any, body_is_async: bool) -> bool:
        asked.append((plan.sync_steps, body_is_async))
        return prefers_caller(plan, body_is_async)

    monkeypatch.setattr(decorators, "prefers_caller", spy)
    Repo = tutorial_graph([])

    @iter_with_fastapi_depends(app=app)
    def rows(*, repo: Annotated[Repo, Depends()]) -> Iterator[str]:
        yield repo.db

    @iter_with_fastapi_depends(app=app)
    async def async_rows(*, repo: Annotated[Repo, Depends()]) -> AsyncIterator[str]:
        yield repo.db + thread()

    def target(repo: Annotated[Repo, Depends()]) -> None: ...

    assert list(rows()) == ["db:sqlite://"]
    assert list(async_rows()) == ["db:sqlite://" + BRIDGE]
    with resolve_fastapi_depends(target, dependency_overrides_provider=app):
        pass
    with FastApiDepsStack(app=app) as stack:
        stack.resolve(Repo)
    # settings, the session's set-up and teardown, the repository; the target's own node
    # for the block and the stack (the target is called too)
    assert asked == [(4, False), (4, True), (4, False), (4, False)]


@pytest.mark.usefixtures("unbounded_cancel_wait")
@pytest.mark.process
@pytest.mark.chosen_path
@pytest.mark.parametrize("shape", [shape for shape in SHAPES if shape.endswith("mixed")])
def test_a_real_signal_at_any_point_is_delivered_once_and_loses_no_teardown(shape: str) -> None:
    """``test_driven``'s real ``SIGINT`` at each point of the library's code (through
    whatever handler is installed then, the deferring one included), over a generator, a
    ``with`` block and a stack: exactly one ``KeyboardInterrupt`` reaches the caller (a
    held one once teardown is done), every dependency opened is closed, no signal stays
    held. (A stack left open by a signal at the very entry of its ``__exit__`` is closed
    again, and the resumption of a generator on Python 3.10 is no point, as in the
    injector's test: ``raise_signal`` runs the handler at once, in the profile function.)"""
    events: list[str] = []
    stacks: list[FastApiDepsStack] = []
    use = shapes(events, FastAPI(), stacks)[shape]
    use()
    original = signal.getsignal(signal.SIGINT)
    count = [0, 0]  # points seen, the point to signal at
    at: list[str] = []

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if RESUMED_OUTSIDE and event == "call" and frame.f_lasti >= 0:
            return  # see ``interrupt_at``: the handler would run outside the frame
        if event in ("call", "c_return") and frame.f_code.co_filename.startswith(_PACKAGES):
            count[0] += 1
            if count[0] == count[1]:
                at.append(f"{event} in {frame.f_code.co_name}")
                signal.raise_signal(signal.SIGINT)

    position = 0
    while True:
        position += 1
        count[:] = [0, position]
        events.clear()
        at.clear()
        interrupts = 0
        sys.setprofile(profiler)
        try:
            try:
                use()
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
        if opened != closed and at in (["call in __exit__"], ["call in close"]):
            stacks[-1].close()
            closed = sorted(e.split()[1] for e in events if e.startswith("close"))
        assert opened == closed, f"position {position} ({at}): {events}"
        assert interrupts == 1, f"position {position} ({at}): {interrupts} interrupts"
        assert signal.getsignal(signal.SIGINT) is original, f"position {position}"
    assert position > 40
