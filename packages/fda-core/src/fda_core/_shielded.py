"""FastAPI's shielded teardown of async-generator dependencies (0.162.7+), as one class.

``fastapi.concurrency._asynccontextmanager_with_shielded_exit`` wraps each async-generator
dependency in a second, generator-based manager: the call's shared cancel scope is
shielded while the dependency tears down, then put back as it was when the dependency was
entered, then a cancellation that came meanwhile is raised. ``ShieldedExit`` takes the
same steps in the same order without the second generator, which cost a call of an
async chain about a fifth of its instructions. ``tests/core/test_shielded_exit.py`` holds
it against FastAPI's own on generated cases; ``_compat.shield_teardown`` uses it only on
the releases that have FastAPI's.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from anyio import CancelScope
from anyio.lowlevel import checkpoint_if_cancelled

__all__ = ["ShieldedExit"]


class ShieldedExit:
    """``manager``, its exit shielded by ``scope`` (the call's shared cleanup scope)."""

    __slots__ = ("_manager", "_scope", "_was_shielded")

    def __init__(self, manager: AbstractAsyncContextManager[Any], scope: CancelScope) -> None:
        self._manager = manager
        self._scope = scope
        self._was_shielded = False

    async def __aenter__(self) -> Any:
        self._was_shielded = self._scope.shield  # read before the dependency starts
        return await self._manager.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        scope = self._scope
        scope.shield = True
        try:
            if exc is None:
                suppressed = await self._manager.__aexit__(exc_type, exc, traceback)
            else:
                suppressed = await self._exit_handling(exc_type, exc, traceback)
        finally:
            scope.shield = self._was_shielded
        if exc_type is not None and not suppressed:
            return False  # the exception goes on: no checkpoint, as in FastAPI's
        await checkpoint_if_cancelled()
        return exc_type is not None

    async def _exit_handling(
        self, exc_type: type[BaseException] | None, exc: BaseException, traceback: Any
    ) -> bool:
        """The dependency's exit while ``exc`` is the exception being handled, as it is when
        FastAPI's wrapper throws ``exc`` into its generator: what the teardown raises after
        catching it is chained to it, whoever called this exit."""
        context = exc.__context__
        try:
            raise exc
        except BaseException:
            exc.__context__ = context  # the raise here chains nothing new to it
            exc.__traceback__ = traceback
            return bool(await self._manager.__aexit__(exc_type, exc, traceback))
