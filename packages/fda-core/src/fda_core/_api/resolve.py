"""``resolve_fastapi_depends``: the low-level async context manager."""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from fda_core._config import get_app
from fda_core._graph.analysis import Analysis, analyse
from fda_core._graph.parameters import decorating_names
from fda_core._graph.resolution import planned_resolution, request_factory, resolution
from fda_core._graph.scope import check_scope
from fda_core._override import overrides_provider, scoped_overrides
from fda_core._runtime.lifespan import lifespan_state

__all__ = ["resolve_fastapi_depends"]

_analyses: weakref.WeakKeyDictionary[Callable[..., Any], Analysis] = weakref.WeakKeyDictionary()


def _analysis(func: Callable[..., Any]) -> Analysis:
    try:
        analysis = _analyses.get(func)
    except TypeError:  # not weak-referenceable: analyse every time
        return analyse(func, local=decorating_names(func))
    if analysis is None:
        analysis = _analyses[func] = analyse(func, local=decorating_names(func))
    return analysis


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
    check_scope(scope, "scope")
    app = get_app()
    if app is None and isinstance(dependency_overrides_provider, FastAPI):
        app = dependency_overrides_provider
    provider = dependency_overrides_provider if dependency_overrides_provider is not None else app
    analysis = _analysis(func)
    state = lifespan_state(app) if app is not None else None
    scoped = scoped_overrides(app)
    plan = analysis.plan(frozenset(), getattr(provider, "dependency_overrides", None) or {}, scoped)
    if plan is not None:
        request = request_factory(
            app=app, static_scope=None, dynamic_scope=scope, lifespan_state=state
        )
        async with planned_resolution(plan, request) as values:
            yield values
        return
    async with resolution(
        analysis.dependant(),
        app=app,
        overrides_provider=overrides_provider(provider, scoped),
        dynamic_scope=scope,
        lifespan_state=state,
    ) as values:
        yield values
