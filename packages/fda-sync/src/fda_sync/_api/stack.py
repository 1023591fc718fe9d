"""The sync ``FastApiDepsStack``: one long-lived request held by one task on the bridge loop."""

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

from fda_core._api.stack import ALREADY, StackSession, resolve_held, running
from fda_core._config import resolve_app
from fda_sync._api.process_lifespan import before_call
from fda_sync._bridge import get_bridge
from fda_sync._loop_path.held import SyncHeld

__all__ = ["FastApiDepsStack"]

T = TypeVar("T")
Self = TypeVar("Self", bound="FastApiDepsStack")

# "Call start()" first: 1.x's message, which its users' tests match.
_NOT_STARTED = (
    "Call start() first (`stack.start()`): this FastApiDepsStack is not started. "
    "Or use `with FastApiDepsStack(app=app) as stack:`."
)


class FastApiDepsStack:
    """Start the app's lifespan once and keep resolved dependencies alive until ``close()``.

    The sync twin of ``fastapi_depends_anywhere.FastApiDepsStack``: one lifespan, one
    dependency cache shared by every ``resolve()``, teardown in reverse order at
    ``close()``. One task on the bridge loop enters, resolves and exits, so ``start``,
    ``resolve`` and ``close`` may be called from any threads; dependencies see the context
    variables of the thread that called ``start()``.
    """

    def __init__(self, app: FastAPI | None = None) -> None:
        self._app = app
        self._held: SyncHeld[StackSession] | None = None
        self._opened = False
        self._lock = threading.Lock()

    def start(self: Self) -> Self:
        """Run the lifespan's startup. The app is looked up now if none was given."""
        before_call()
        with self._lock:
            if self._held is not None and running(self._held.held):
                raise RuntimeError(ALREADY)
            app = resolve_app(self._app)
            self._opened = False
            self._held = SyncHeld(get_bridge(), lambda: StackSession(app))
            self._held.open()
            self._opened = True
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
        held = self._held
        if held is None or not self._opened:
            raise RuntimeError(_NOT_STARTED)
        task_held, session = held.held, held.value
        return held.call(lambda: resolve_held(task_held, session, target))

    def close(self, exc: BaseException | None = None) -> None:
        """Tear down every resolved dependency (in reverse order), then run shutdown.

        ``exc``, if given, is thrown into the yield dependencies (their rollback branches
        run). Closing twice, or a stack never started, is a no-op (cleanup code may close
        a stack whose ``start()`` failed).
        """
        held = self._held
        if held is not None:
            held.close(exc)

    def __enter__(self: Self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(exc)
