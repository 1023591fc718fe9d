"""``FastApiDepsStack``: one long-lived request for notebooks, workers and test sessions."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterator,
)
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar, overload

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from starlette.background import BackgroundTasks
from starlette.requests import Request

from fda_core import _compat
from fda_core._config import resolve_app
from fda_core._graph.analysis import dependant_for_value
from fda_core._graph.compiler import compile_plan
from fda_core._graph.plan import Plan
from fda_core._graph.resolution import run_background, solve_into
from fda_core._graph.scope import build_scope, receive_no_body
from fda_core._graph.teardown import Teardown
from fda_core._override import Scoped, overrides_provider, scoped_overrides
from fda_core._runtime.holder import ClosedError, TaskHeld
from fda_core._runtime.lifespan import running_lifespan

__all__ = ["ALREADY", "FastApiDepsStack", "StackSession", "resolve_held", "running"]

T = TypeVar("T")
Self = TypeVar("Self", bound="FastApiDepsStack")

_MAX_PLANS = 256  # per stack: targets times override sets


class StackSession:
    """The open state of a stack. Entered, used and exited by one task only.

    The sync stack drives it too: it plans a target in the calling thread (``plan_for``),
    may resolve on exit stacks of its own (``resolve(..., exits=...)``), and shares the
    dependency cache (``cache``), the request (``request``) and the background tasks."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lifespan: AbstractAsyncContextManager[Any] = running_lifespan(app)
        #: The stack's dependencies (the async stack's all; the sync stack's cancel scope).
        self.exits = AsyncExitStack()
        self.cache: dict[Any, Any] = {}
        self._dependants: dict[Any, Dependant] = {}
        self._plans: dict[Any, Plan | None] = {}
        #: Background tasks, run at exit if all went well.
        self.background: list[BackgroundTasks] = []
        self._scope: dict[str, Any] = {}
        self.cleanup: list[Any] = []  # see Teardown.cleanup: one per request

    async def __aenter__(self) -> StackSession:
        state = await self._lifespan.__aenter__()
        self._scope = build_scope(app=self.app, static=None, dynamic=None, lifespan_state=state)
        # A stack is one long request: function- and request-scoped dependencies alike
        # stay open until close().
        _compat.install_exit_stacks(
            self._scope, request_stack=self.exits, function_stack=self.exits
        )
        return self

    async def resolve(
        self, target: Any, scoped: Scoped | None = None, exits: AsyncExitStack | None = None
    ) -> Any:
        """Resolve ``target``; ``scoped``: the ``override()`` blocks of the caller;
        ``exits``: where its dependencies are entered (by default the stack's)."""
        dependant, plan = self.plan_for(target, scoped)
        stack = self.exits
        if exits is not None:
            stack = exits
            _compat.install_exit_stacks(self._scope, request_stack=stack, function_stack=stack)
        if plan is not None:
            teardown = Teardown()
            teardown.request = teardown.function = stack
            teardown.cleanup = self.cleanup
            cache = plan.load(self.cache)
            try:
                values = await plan.solve(teardown, self.request, cache)
            finally:
                plan.store(cache, self.cache)
            if teardown.background is not None:
                self.background.append(teardown.background)
            return values["value"]
        solved = await solve_into(
            self._scope,
            dependant,
            exit_stack=stack,
            overrides_provider=overrides_provider(self.app, scoped),
            dependency_cache=self.cache,
        )
        if solved.background_tasks is not None:
            self.background.append(solved.background_tasks)
        return solved.values["value"]

    def request(self) -> Request:
        """The stack's request (one scope for all its resolves)."""
        return Request(self._scope, receive_no_body)

    def plan_for(self, target: Any, scoped: Scoped | None) -> tuple[Dependant, Plan | None]:
        """``target``'s dependant and its compiled plan under the overrides of the moment
        (``None``: FastAPI's resolver must solve it). Any thread, one at a time."""
        dependant = self._dependant(target)
        return dependant, self._plan(target, dependant, scoped)

    def _dependant(self, target: Any) -> Dependant:
        try:
            dependant = self._dependants.get(target)
        except TypeError:  # unhashable Depends() of some releases
            return dependant_for_value(target)
        if dependant is None:
            dependant = self._dependants[target] = dependant_for_value(target)
        return dependant

    def _plan(self, target: Any, dependant: Dependant, scoped: Scoped | None) -> Plan | None:
        """The compiled plan for ``target`` under the overrides of the moment."""
        overrides = self.app.dependency_overrides
        if scoped is not None:
            overrides = scoped.merged(overrides)
        try:
            key = (target, tuple(overrides.items()))
            if key in self._plans:
                return self._plans[key]
        except TypeError:  # unhashable: compile every time
            return compile_plan(dependant, overrides)
        if len(self._plans) >= _MAX_PLANS:  # overrides changed for every test, say
            self._plans.clear()
        plan = self._plans[key] = compile_plan(dependant, overrides)
        return plan

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            suppressed = await self.exits.__aexit__(exc_type, exc, traceback)
            if exc is None:
                for tasks in self.background:
                    await run_background(tasks)
        finally:
            await self._lifespan.__aexit__(None, None, None)
        return bool(suppressed)


# "Call start()" first: 1.x's message, which its users' tests match.
_NOT_STARTED = (
    "Call start() first (`await stack.start()`): this FastApiDepsStack is not started. "
    "Or use `async with FastApiDepsStack(app=app) as stack:`."
)
CLOSED = (
    "FastApiDepsStack is closed (or closing): start() it again, or create a new one, to "
    "resolve more dependencies."
)
ALREADY = "FastApiDepsStack.start() was called already: close() it before starting it again."


def running(held: TaskHeld[Any] | None) -> bool:
    """Whether a stack's holder is entered or entering, and not yet done: ``start()`` again
    is refused then. After ``close()``, or a ``start()`` that failed, a stack starts afresh
    (as 1.x's did)."""
    task = None if held is None else held.task
    return task is not None and not task.done()


async def resolve_held(held: TaskHeld[StackSession], session: StackSession, target: Any) -> Any:
    """Resolve ``target`` in the stack's holder task: the async and sync stacks' resolve.

    The caller's ``override()`` blocks count, not the holder task's; a closed or closing
    stack refuses at once."""
    scoped = scoped_overrides(session.app)  # the caller's context (copied onto the bridge)
    try:
        return await held.run(lambda: session.resolve(target, scoped))
    except ClosedError:
        if held.active:  # not this stack's (a dependency used another one)
            raise
        raise RuntimeError(CLOSED) from None


class FastApiDepsStack:
    """Start the app's lifespan once and keep resolved dependencies alive until ``close()``.

    Behaves like one long request: the dependency cache is shared by every ``resolve()``
    (``Depends(..., use_cache=False)`` opts out), and ``close()`` tears everything down in
    reverse order, then runs the lifespan's shutdown. ``start``, ``resolve`` and ``close``
    may be awaited from different tasks of the same event loop.
    """

    def __init__(self, app: FastAPI | None = None) -> None:
        self._app = app
        self._held: TaskHeld[StackSession] | None = None
        self._session: StackSession | None = None

    async def start(self: Self) -> Self:
        """Run the lifespan's startup. The app is looked up now if none was given."""
        if running(self._held):
            raise RuntimeError(ALREADY)
        self._held = TaskHeld(StackSession(resolve_app(self._app)))
        self._session = await self._held.enter()
        return self

    @overload
    async def resolve(self, target: type[T]) -> T: ...
    @overload
    async def resolve(self, target: Callable[..., Coroutine[Any, Any, T]]) -> T: ...
    @overload
    async def resolve(self, target: Callable[..., AsyncGenerator[T, Any]]) -> T: ...
    @overload
    async def resolve(self, target: Callable[..., Generator[T, Any, Any]]) -> T: ...
    @overload
    async def resolve(self, target: Callable[..., AsyncIterator[T]]) -> T: ...
    @overload
    async def resolve(self, target: Callable[..., Iterator[T]]) -> T: ...
    @overload
    async def resolve(self, target: Callable[..., T]) -> T: ...
    @overload
    async def resolve(self, target: Any) -> Any: ...
    async def resolve(self, target: Any) -> Any:
        """Resolve ``Annotated[T, Depends(dep)]``, a dependency callable, or a class."""
        held, session = self._held, self._session
        if held is None or session is None:
            raise RuntimeError(_NOT_STARTED)
        return await resolve_held(held, session, target)

    async def close(self, exc: BaseException | None = None) -> None:
        """Tear down every resolved dependency (in reverse order), then run shutdown.

        ``exc``, if given, is thrown into the yield dependencies (their rollback branches
        run). Closing twice, or a stack never started, is a no-op (cleanup code may close
        a stack whose ``start()`` failed).
        """
        if self._held is not None:
            await self._held.exit(exc)

    async def __aenter__(self: Self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close(exc)
