"""``resolve_fastapi_depends``: the low-level async context manager."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from fda_core._config import get_app
from fda_core._graph.analysis import Analysis, analyse
from fda_core._graph.parameters import decorating_names
from fda_core._graph.resolution import planned_resolution, request_factory, resolution
from fda_core._graph.scope import check_scope
from fda_core._override import overrides_provider, scoped_overrides
from fda_core._runtime.lifespan import lifespan_state

__all__ = ["Planned", "resolve_fastapi_depends"]

_analyses: weakref.WeakKeyDictionary[Callable[..., Any], Analysis] = weakref.WeakKeyDictionary()


def _analysis(func: Callable[..., Any]) -> Analysis:
    try:
        analysis = _analyses.get(func)
    except TypeError:  # not weak-referenceable: analyse every time
        return analyse(func, local=decorating_names(func))
    if analysis is None:
        analysis = _analyses[func] = analyse(func, local=decorating_names(func))
    return analysis


class Planned:
    """What one ``resolve_fastapi_depends`` call resolves: the async and sync versions'.

    ``plan`` is the compiled graph (``None``: FastAPI's resolver must solve it);
    ``request`` builds the synthesized request, for a plan that reads it."""

    def __init__(
        self,
        func: Callable[..., Any],
        scope: Mapping[str, Any] | None,
        dependency_overrides_provider: Any,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        check_scope(scope, "scope")
        app = get_app()
        if app is None and isinstance(dependency_overrides_provider, FastAPI):
            app = dependency_overrides_provider
        provider = dependency_overrides_provider
        self.app = app
        self.provider = provider if provider is not None else app
        self.scope = scope
        self.analysis = _analysis(func)
        #: The state of the app's lifespan if it runs on ``loop`` (by default the running one).
        self.state = lifespan_state(app, loop) if app is not None else None
        self.scoped = scoped_overrides(app)
        overrides: dict[Any, Any] = getattr(self.provider, "dependency_overrides", None) or {}
        self.plan = self.analysis.plan(frozenset(), overrides, self.scoped)

    def request(self) -> Callable[[], Request]:
        return request_factory(
            app=self.app, static_scope=None, dynamic_scope=self.scope, lifespan_state=self.state
        )


@asynccontextmanager
async def resolve_fastapi_depends(
    func: Callable[..., Any],
    scope: Mapping[str, Any] | None = None,
    dependency_overrides_provider: Any = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Resolve ``func``'s injected parameters and yield them as keyword arguments.

    Teardown runs when the block exits (the block's exception is thrown into yield
    dependencies). ``scope`` is merged into the synthesized request's ASGI scope.
    Overrides come from ``dependency_overrides_provider`` (any object with a
    ``dependency_overrides`` dict), by default the configured app; ``override()`` blocks
    around the call win over them.
    """
    planned = Planned(func, scope, dependency_overrides_provider)
    if planned.plan is not None:
        async with planned_resolution(planned.plan, planned.request()) as values:
            yield values
        return
    async with resolution(
        planned.analysis.dependant(),
        app=planned.app,
        overrides_provider=overrides_provider(planned.provider, planned.scoped),
        dynamic_scope=scope,
        lifespan_state=planned.state,
    ) as values:
        yield values
