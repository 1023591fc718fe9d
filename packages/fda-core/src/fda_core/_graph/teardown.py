"""The exit stacks of one planned call, closed as a route closes them."""

from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from starlette.background import BackgroundTasks

from fda_core import _compat

__all__ = ["Teardown"]


class Teardown:
    """The exit stacks of one call: function-scoped ones close before request-scoped ones."""

    __slots__ = ("background", "cleanup", "function", "request")

    def __init__(self) -> None:
        self.request: AsyncExitStack | None = None
        self.function: AsyncExitStack | None = None
        self.background: BackgroundTasks | None = None
        self.cleanup: list[Any] = []  # the cancel scope shielding async-generator teardown

    async def enter(
        self,
        manager: AbstractAsyncContextManager[Any],
        function_scoped: bool,
        async_generator: bool = False,
    ) -> Any:
        if async_generator:
            if self.request is None:
                self.request = AsyncExitStack()
            manager = _compat.shield_teardown(manager, self.request, self.cleanup)
        if function_scoped:
            if self.function is None:
                self.function = AsyncExitStack()
            return await self.function.enter_async_context(manager)
        if self.request is None:
            self.request = AsyncExitStack()
        return await self.request.enter_async_context(manager)

    def background_tasks(self) -> BackgroundTasks:
        if self.background is None:
            self.background = _compat.BackgroundTasksClass()
        return self.background

    async def aexit(self, exc: BaseException | None) -> bool:
        """Close as ``async with request: async with function: ...`` would.

        Returns whether ``exc`` was suppressed; raises an exception teardown raised.
        """
        current = exc
        for stack in (self.function, self.request):
            if stack is None:
                continue
            try:
                if current is None:
                    await stack.__aexit__(None, None, None)
                elif await stack.__aexit__(type(current), current, current.__traceback__):
                    current = None
            except BaseException as raised:
                current = raised
        if current is None:
            return exc is not None
        if current is exc:
            return False
        context = current.__context__
        try:
            raise current
        except BaseException:
            current.__context__ = context  # its chain, not the exception being handled
            raise
