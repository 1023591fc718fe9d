"""What a decorator does per call: the app looked up, a plan or FastAPI's resolver, the body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from fda_core._config import get_context_factory, resolve_app
from fda_core._graph.decorated import Decorated
from fda_core._graph.plan import Plan
from fda_core._graph.resolution import (
    call_context,
    call_planned,
    context_manager,
    planned_resolution,
    request_factory,
    resolution,
)
from fda_core._override import current_block, overrides_provider, scoped_overrides
from fda_core._runtime.lifespan import lifespan_state

__all__ = ["MAKE_MANAGER", "Injector"]

#: ``Injector.values`` makes the call's context manager itself (the caller made none).
MAKE_MANAGER: Any = object()


class Injector(Decorated):
    """Resolves the injected parameters of one function, as a route would, per call: the
    app is looked up on every call, the plan compiled per set of overrides."""

    def planned(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[FastAPI, Plan | None]:
        """The app of this call and its compiled plan (``None``: FastAPI's resolver must
        solve it). Raises at once for a forgotten parameter the analysis could not place."""
        app = resolve_app(self.app)
        analysis = self.analysis
        if analysis.unresolved:
            analysis.check_unresolved(args, kwargs)
        provided = analysis.provided(args, kwargs)
        return app, analysis.plan(provided, app.dependency_overrides, scoped_overrides(app))

    def prepare(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], FastAPI, Plan | None]:
        """``arrange`` and ``planned`` in one step: the sync API's per-call entry."""
        analysis = self._analysis or self.analysis
        args, kwargs, provided = analysis.arranged(args, kwargs)
        app = resolve_app(self.app)
        if analysis.unresolved:
            analysis.check_unresolved(args, kwargs)
        block = current_block()
        scoped = None if block is None else block.view(app)
        plan = analysis.plan(provided, app.dependency_overrides, scoped)
        return args, kwargs, app, plan

    def context_manager(self) -> Any:
        """The configured context factory's manager for this call, or ``None``."""
        return context_manager(self.context)

    @asynccontextmanager
    async def values(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_scope: Mapping[str, Any] | None,
        manager: Any = MAKE_MANAGER,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Resolve what the caller did not pass, keep it open for the body, tear down.

        ``manager``: the call's ``context_manager``, if the caller made it already.
        """
        app, plan = self.planned(args, kwargs)
        if manager is MAKE_MANAGER:
            manager = self.context_manager()
        async with call_context(manager):
            if plan is not None:
                async with planned_resolution(plan, self.request(app, call_scope)) as values:
                    yield values
                return
            provided = self.analysis.provided(args, kwargs)
            async with resolution(
                self.analysis.dependant(provided),
                app=app,
                overrides_provider=overrides_provider(app, scoped_overrides(app)),
                static_scope=self.scope,
                dynamic_scope=call_scope,
                lifespan_state=lifespan_state(app),
            ) as values:
                yield values

    def request(
        self,
        app: FastAPI,
        call_scope: Mapping[str, Any] | None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Callable[[], Any]:
        """Builds this call's request; ``request.state`` holds the state of the app's
        lifespan if it runs on ``loop`` (by default the running one)."""
        return request_factory(
            app=app,
            static_scope=self.scope,
            dynamic_scope=call_scope,
            lifespan_state=lifespan_state(app, loop),
        )

    async def call(
        self,
        body: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_scope: Mapping[str, Any] | None,
    ) -> Any:
        """Resolve, run ``body`` with the values, tear down: the per-call hot path."""
        analysis = self._analysis or self.analysis
        args, kwargs, provided = analysis.arranged(args, kwargs)
        app = resolve_app(self.app)
        if not analysis.unresolved and (not self.context or get_context_factory() is None):
            block = current_block()  # the one cost of override() to a call outside blocks
            scoped = None if block is None else block.view(app)
            plan = analysis.plan(provided, app.dependency_overrides, scoped)
            if plan is not None:
                # A plan that reads no request never builds one: no lifespan state to find.
                request = self.request(app, call_scope) if plan.reads_request else None
                return await call_planned(plan, request, body, args, kwargs)
        async with self.values(args, kwargs, call_scope) as values:
            return await body(*args, **kwargs, **values)
