"""One resolution: a synthesized request, FastAPI's solver, teardown, background tasks."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from starlette.background import BackgroundTasks
from starlette.requests import Request

from fda_core import _compat
from fda_core._config import get_context_factory
from fda_core._graph.plan import Plan
from fda_core._graph.scope import build_scope, receive_no_body
from fda_core._graph.teardown import Teardown
from fda_core._runtime.threads import WaitingThread, run_sync, teardown_begins

__all__ = [
    "SwallowedExceptionError",
    "call_context",
    "call_planned",
    "context_manager",
    "planned_resolution",
    "request_factory",
    "resolution",
    "run_background",
    "solve_into",
]


class SwallowedExceptionError(RuntimeError):
    """A dependency with ``yield`` caught the body's exception and did not re-raise it."""

    def __init__(self, body_error: BaseException) -> None:
        super().__init__(
            f"The call raised {body_error!r} and a dependency with `yield` caught it without "
            "re-raising, so there is no result to return. Re-raise in the dependency's "
            "`except` block (`raise`), as FastAPI requires."
        )


async def solve_into(
    scope: dict[str, Any],
    dependant: Dependant,
    *,
    exit_stack: AsyncExitStack,
    overrides_provider: Any,
    dependency_cache: dict[Any, Any],
) -> _compat.Solved:
    """Solve ``dependant`` for a request with ``scope`` (its exit stacks installed)."""
    solved = await _compat.solve(
        request=Request(scope, receive_no_body),
        dependant=dependant,
        exit_stack=exit_stack,
        dependency_cache=dependency_cache,
        dependency_overrides_provider=overrides_provider,
    )
    if solved.errors:
        raise _compat.validation_error(solved.errors)
    return solved


def request_factory(
    *,
    app: Any,
    static_scope: Mapping[str, Any] | None,
    dynamic_scope: Mapping[str, Any] | None,
    lifespan_state: Mapping[str, Any] | None,
) -> Callable[[], Request]:
    """Build the synthesized request only if a plan asks for it."""

    def build() -> Request:
        scope = build_scope(
            app=app, static=static_scope, dynamic=dynamic_scope, lifespan_state=lifespan_state
        )
        return Request(scope, receive_no_body)

    return build


@asynccontextmanager
async def resolution(
    dependant: Dependant,
    *,
    app: Any,
    overrides_provider: Any,
    static_scope: Mapping[str, Any] | None = None,
    dynamic_scope: Mapping[str, Any] | None = None,
    lifespan_state: Mapping[str, Any] | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Resolve ``dependant`` as a route would, yield the values, tear down on exit.

    Everything happens in the caller's task (FastAPI 0.162.7+ requires it). Function-scoped
    dependencies are torn down before request-scoped ones, the body's exception is thrown
    into yield dependencies, and background tasks run once teardown has succeeded.
    """
    scope = build_scope(
        app=app, static=static_scope, dynamic=dynamic_scope, lifespan_state=lifespan_state
    )
    body_error: BaseException | None = None
    invalid: RequestValidationError | None = None
    solved: _compat.Solved | None = None
    tearing_down: list[WaitingThread] = []
    async with AsyncExitStack() as request_stack, AsyncExitStack() as function_stack:
        request_stack.callback(_teardown_ends, tearing_down)  # the last exit
        _compat.install_exit_stacks(
            scope, request_stack=request_stack, function_stack=function_stack
        )
        try:
            solved = await solve_into(
                scope,
                dependant,
                exit_stack=request_stack,
                overrides_provider=overrides_provider,
                dependency_cache={},
            )
        except RequestValidationError as exc:
            if not _compat.VALIDATION_ERROR_AFTER_TEARDOWN:
                raise
            invalid = exc  # raised below, once the dependencies are torn down
        else:
            try:
                yield solved.values
            except BaseException as exc:
                body_error = exc
                raise
        finally:
            thread = teardown_begins()
            if thread is not None:
                tearing_down.append(thread)
    if invalid is not None:
        raise invalid
    if body_error is not None:
        raise SwallowedExceptionError(body_error) from body_error
    if solved is not None and solved.background_tasks is not None:
        await run_background(solved.background_tasks)


def _teardown_ends(threads: list[WaitingThread]) -> None:
    for thread in threads:
        thread.tearing_down(False)


async def _finish(teardown: Teardown, error: BaseException | None, solving: bool) -> None:
    """End a planned call: tear down (``error`` thrown in), then run background tasks if
    all went well. The caller re-raises ``error``."""
    thrown = error
    if (
        solving
        and _compat.VALIDATION_ERROR_AFTER_TEARDOWN
        and isinstance(error, RequestValidationError)
    ):
        thrown = None  # as a route of FastAPI 0.110-0.117: raised after teardown
    thread = teardown_begins()
    try:
        suppressed = await teardown.aexit(thrown)
    finally:
        if thread is not None:
            thread.tearing_down(False)
    if error is None:
        if teardown.background is not None:
            await run_background(teardown.background)
    elif suppressed and thrown is not None:
        raise SwallowedExceptionError(error) from error


async def call_planned(
    plan: Plan,
    request: Callable[[], Request] | None,
    body: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``resolution`` + body for a compiled plan, without the context-manager layers."""
    teardown = Teardown()
    solving = True
    try:
        values = await plan.solve(teardown, request)
        solving = False
        result = await body(*args, **kwargs, **values)
    except BaseException as exc:
        await _finish(teardown, exc, solving)
        raise
    await _finish(teardown, None, solving)
    return result


@asynccontextmanager
async def planned_resolution(
    plan: Plan, request: Callable[[], Request]
) -> AsyncGenerator[dict[str, Any], None]:
    """What ``resolution`` does, for a graph compiled into ``plan``."""
    teardown = Teardown()
    solving = True
    try:
        values = await plan.solve(teardown, request)
        solving = False
        yield values
    except BaseException as exc:
        await _finish(teardown, exc, solving)
        raise
    await _finish(teardown, None, solving)


async def run_background(tasks: BackgroundTasks) -> None:
    """Run the call's background tasks as Starlette does, a ``def`` task through
    ``run_sync``: in the sync API it runs in the caller's thread, like the rest of the
    call's ``def`` code (FastAPI's threadpool elsewhere)."""
    for task in tasks.tasks:
        if task.is_async:
            await task.func(*task.args, **task.kwargs)
        else:
            await run_sync(task.func, *task.args, **task.kwargs)


def context_manager(context: Mapping[str, Any] | None) -> Any:
    """What the configured ``context_factory`` returns for a call's ``context`` (a sync or
    async context manager), or ``None`` if no factory is configured or the decorator gave
    no context: as 1.x, whose users' factories may read their keys (``ctx["request_id"]``)."""
    factory = get_context_factory()
    if factory is None or not context:
        return None
    manager = factory(dict(context))
    if not hasattr(manager, "__aenter__") and not hasattr(manager, "__enter__"):
        raise TypeError(
            f"context_factory returned {manager!r}, which is not a context manager; "
            "return e.g. `context_logging.Context(**ctx)`."
        )
    return manager


@asynccontextmanager
async def call_context(manager: Any) -> AsyncGenerator[None, None]:
    """Enter a call's ``context_manager`` (if any) around the call."""
    if manager is None:
        yield
    elif hasattr(manager, "__aenter__"):
        async with manager:
            yield
    else:
        with manager:
            yield
