"""The sync ``FastApiDepsStack``: one long-lived request, resolved from any thread.

Its engine is ``fda_sync._caller_path.stack``: one task on the bridge loop holds the
lifespan and the async steps; each ``resolve()`` goes the way of fewer thread hops for its
graph, as a decorated call does (``prefers_caller``).
"""

from __future__ import annotations

import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterator,
)
from types import TracebackType
from typing import Any, TypeVar, overload

from fastapi import FastAPI

from fda_core._api.stack import ALREADY
from fda_core._config import resolve_app
from fda_core._graph.plan import Plan
from fda_sync._api import decorators
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import get_bridge
from fda_sync._caller_path.stack import OpenStack

__all__ = ["FastApiDepsStack"]

T = TypeVar("T")
Self = TypeVar("Self", bound="FastApiDepsStack")

# "Call start()" first: 1.x's message, which its users' tests match.
_NOT_STARTED = (
    "Call start() first (`stack.start()`): this FastApiDepsStack is not started. "
    "Or use `with FastApiDepsStack(app=app) as stack:`."
)


def _driven(plan: Plan) -> bool:
    """Whether a resolve of ``plan`` is driven from the caller's thread: the choice of
    ``with_fastapi_depends`` (looked up there on every call) for a call with a ``def``
    body (the caller's own code, which the values are for)."""
    return decorators.prefers_caller(plan, False)


class FastApiDepsStack:
    """Start the app's lifespan once and keep resolved dependencies alive until ``close()``.

    The sync twin of ``fastapi_depends_anywhere.FastApiDepsStack``: one lifespan, one
    dependency cache shared by every ``resolve()``, teardown in reverse order at
    ``close()``. ``start``, ``resolve`` and ``close`` may be called from any threads; the
    dependencies see the context variables of the thread that called ``start()``. A
    ``def`` dependency runs in the thread that resolves it; its teardown in the thread
    that closes the stack.
    """

    def __init__(self, app: FastAPI | None = None) -> None:
        self._app = app
        self._open: OpenStack | None = None
        self._lock = threading.Lock()

    def start(self: Self) -> Self:
        """Run the lifespan's startup. The app is looked up now if none was given."""
        before_call()
        with self._lock:
            if self._open is not None and not self._open.closing:
                raise RuntimeError(ALREADY)
            # A closed stack, or one whose start() failed, starts afresh (as 1.x's did).
            self._open = OpenStack(get_bridge(), resolve_app(self._app))
        return self

    @overload
    def resolve(self, target: type[T]) -> T: ...
    @overload
    def resolve(self, target: Callable[..., Coroutine[Any, Any, T]]) -> T: ...
    @overload
    def resolve(self, target: Callable[..., AsyncGenerator[T, Any]]) -> T: ...
    @overload
    def resolve(self, target: Callable[..., Generator[T, Any, Any]]) -> T: ...
    @overload
    def resolve(self, target: Callable[..., AsyncIterator[T]]) -> T: ...
    @overload
    def resolve(self, target: Callable[..., Iterator[T]]) -> T: ...
    @overload
    def resolve(self, target: Callable[..., T]) -> T: ...
    @overload
    def resolve(self, target: Any) -> Any: ...
    def resolve(self, target: Any) -> Any:
        """Resolve ``Annotated[T, Depends(dep)]``, a dependency callable, or a class."""
        opened = self._open
        if opened is None:
            raise RuntimeError(_NOT_STARTED)
        return opened.resolve(target, _driven)

    def close(self, exc: BaseException | None = None) -> None:
        """Tear down every resolved dependency (in reverse order), then run shutdown.

        ``exc``, if given, is thrown into the yield dependencies (their rollback branches
        run). Closing twice, or a stack never started, is a no-op (cleanup code may close
        a stack whose ``start()`` failed).
        """
        opened = self._open
        if opened is not None:
            opened.close(exc)

    def __enter__(self: Self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(exc)
