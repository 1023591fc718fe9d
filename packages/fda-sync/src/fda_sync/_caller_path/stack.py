"""The sync ``FastApiDepsStack`` driven from its callers' threads, one held task on the loop.

A stack lives across many blocking calls, from any threads: ``start()``, ``resolve()``s,
``close()``. One task on the bridge loop (``SyncHeld``) holds what must stay in one task:
the app's lifespan, the async generators its resolves entered (FastAPI 0.162.7+ shields
their teardown with a cancel scope only their task may exit), and every async step of
its resolves, as a call with several async steps holds them (``loop_side``).

Each ``resolve()`` takes the path of fewer thread hops for its graph (``prefers_caller``):
driven from the calling thread (``def`` steps there, each async step one round trip to
the held task), or resolved by the held task in one round trip (``def`` steps lent to
the calling thread), on an exit stack of its own. Either way its teardown joins one list,
in the order things were entered, and ``close()`` unwinds it with ``ExitStack``'s rules in
the thread that closes the stack: ``def`` exits there, each async one a round trip, signals
held back in the main thread. Then the held task exits: background tasks, the lifespan's
shutdown. Resolves are serialized (one lock): a dependency the stack caches is made once
however many threads resolve it at once, as the held task's queue does on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI
from starlette.background import BackgroundTasks

from fda_core import _compat
from fda_core._api.stack import CLOSED, StackSession
from fda_core._graph.plan import Plan
from fda_core._override import Scoped, scoped_overrides
from fda_core._runtime.threads import context_snapshot
from fda_sync._bridge import Bridge, this_process
from fda_sync._caller_path.exits import Teardown
from fda_sync._caller_path.loop_side import LoopSide, Outcome, Steps
from fda_sync._caller_path.walk import DrivenCall
from fda_sync._errors import parent_process_error
from fda_sync._guards.signals import signals_held
from fda_sync._loop_path.held import SyncHeld

__all__ = ["OpenStack"]


class _Session(StackSession):
    """The held task's side: the lifespan and the request (``StackSession``), the async
    steps of resolves driven from the caller (``steps``), and resolves of its own."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app)
        self.steps = Steps(self.exits, self.cleanup)

    async def __aenter__(self) -> _Session:
        await super().__aenter__()
        # Before any async generator: the exit stacks of later resolves, and the cancel
        # scopes FastAPI enters on them, all nest inside it.
        _compat.enter_cleanup_scope(self.exits, self.cleanup)
        return self

    async def resolve_keyed(self, target: Any, scoped: Scoped | None, key: object) -> Outcome:
        """Resolve ``target`` on an exit stack of its own, exited at ``steps.exit(key)``."""
        exits = AsyncExitStack()
        self.steps.keep(key, exits)
        value = await self.resolve(target, scoped, exits)
        return value, context_snapshot()

    async def __aexit__(self, *exc_info: Any) -> bool:
        self.steps.leave()
        return await super().__aexit__(*exc_info)


class _Resolving:
    """A ``resolve()`` under way, as a call in flight (``_guards.in_flight``): the grace of a
    shutdown waits for it. Its teardown is the stack's: nothing to abandon."""

    __slots__ = ("claims", "thread")

    def __init__(self) -> None:
        self.thread = 0
        self.claims: list[object] = []

    def abandon(self) -> None:
        """Nothing: the stack's own teardown follows."""


class OpenStack:
    """A started sync stack: resolves from any thread, closed once."""

    def __init__(self, bridge: Bridge, app: FastAPI) -> None:
        """Start it: the lifespan's startup, in the held task (one round trip)."""
        self._held: SyncHeld[_Session] = SyncHeld(bridge, lambda: _Session(app))
        self._session = self._held.open()
        try:
            self._bridge, self._forks = bridge, this_process.forks
            #: Where ``def`` steps run (copies): the context variables of the thread that
            #: started the stack, and what its async steps set since, as in its task.
            self._context = self._held.variables
            self._loop = LoopSide.of(bridge, self._held, self._session.steps)
            self._teardown = Teardown()
            self._teardown.function = self._teardown.request  # one list: one long request
            self._lock = threading.Lock()  # one resolve at a time, then close
            self._closers: list[object] = []
            self.closing = False
            self._torn_down = False
            bridge.hold(self)  # torn down at exit if still open
        except BaseException as exc:  # interrupted: nobody would close it
            self._held.close(exc)
            raise

    def resolve(self, target: Any, drive: Callable[[Plan], bool]) -> Any:
        """Resolve ``target``; ``drive(plan)``: whether to drive its plan from here."""
        if this_process.forks != self._forks:
            raise parent_process_error()
        if self.closing:
            raise RuntimeError(CLOSED)
        scoped = scoped_overrides(self._session.app)  # this caller's override() blocks
        resolving, in_flight = _Resolving(), self._bridge.in_flight
        try:
            self._bridge.admit(resolving)  # in flight: a shutdown's grace waits for it
            with self._lock:
                if self.closing:  # closed while this one waited
                    raise RuntimeError(CLOSED)
                return self._resolve(target, scoped, drive)
        finally:
            in_flight.calls.discard(resolving)

    def _resolve(self, target: Any, scoped: Scoped | None, drive: Callable[[Plan], bool]) -> Any:
        _, plan = self._session.plan_for(target, scoped)
        try:
            if plan is not None and drive(plan):
                value = self._driven(plan)
            else:
                value = self._on_loop(target, scoped)
        finally:
            self._loop.interrupted.clear()
            if self._torn_down:  # a shutdown closed it meanwhile, not waiting any more
                self._teardown.exit(asyncio.CancelledError())
        if self._torn_down:
            raise RuntimeError(CLOSED)
        return value

    def _driven(self, plan: Plan) -> Any:
        session = self._session
        call = DrivenCall(self._bridge, self._context, 2)
        call.teardown, call.loop = self._teardown, self._loop
        made: list[BackgroundTasks] = []

        def background() -> BackgroundTasks:  # one per resolve, run at close
            if not made:
                made.append(_compat.BackgroundTasksClass())
                session.background.append(made[0])
            return made[0]

        cache = plan.load(session.cache)
        try:
            values = plan.solve_with(call.node, background, session.request, cache)
        finally:
            plan.store(cache, session.cache)
            self._context = call.context
        return values["value"]

    def _on_loop(self, target: Any, scoped: Scoped | None) -> Any:
        key = self._loop.expect(self._teardown.push)
        session = self._session
        value, self._context = self._held.run(lambda: session.resolve_keyed(target, scoped, key))
        return value

    def close(self, exc: BaseException | None = None, wait: float | None = None) -> None:
        """Tear down in reverse order, ``exc`` thrown in; then the held task exits. Resolves
        are refused at once; one under way ends first (``wait``: at most that long). A
        second close waits for the first one's end. An interrupt meanwhile goes on once
        what is left is torn down, it thrown in."""
        if this_process.forks != self._forks:
            raise parent_process_error()
        me = object()
        try:
            self._claim(me)
            if wait is None:
                with self._lock:
                    if self._closers[0] is me:
                        self._close(exc)
            else:
                self._close_within(me, exc, wait)
        except BaseException as late:
            if me not in self._closers:  # interrupted before its claim
                self._claim(me)
            if self._closers[0] is me:  # this close's teardown: what is left still runs
                with self._lock:
                    self._close_late(late)
            raise
        finally:
            if self._closers[0] is me:
                self._bridge.let_go(self)

    def _close_within(self, closer: object, exc: BaseException | None, wait: float) -> None:
        acquired = self._lock.acquire(timeout=wait)  # past it: the resolve is stuck
        try:
            if self._closers[0] is closer:
                self._close(exc)
        finally:
            if acquired:
                self._lock.release()

    def _claim(self, closer: object) -> None:
        """The first closer closes (``list.append`` is atomic); resolves stop at once."""
        with signals_held():
            self._closers.append(closer)
            self.closing = True

    def _close(self, exc: BaseException | None) -> None:
        error: BaseException | None = None
        try:
            try:
                self._teardown.exit(exc)
            except BaseException as raised:
                error = raised
            self._held.close(exc if error is None else error)
        except BaseException as late:
            self._close_late(late)
            raise
        finally:
            self._torn_down = True
        if error is not None:
            try:
                raise error
            finally:
                del error

    def _close_late(self, interrupt: BaseException) -> None:
        """What an interrupt left of ``close`` runs, it thrown in (each exit runs once)."""
        try:
            self._teardown.exit(interrupt)
        finally:
            self._held.close(interrupt)
