"""``check_routes_and_dependencies_are_async``: find the code FastAPI runs in threads."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from starlette.endpoints import HTTPEndpoint
from starlette.routing import Router

from fda_core import _compat
from fda_core._compat import CallKind
from fda_core._describe import describe

__all__ = ["check_routes_and_dependencies_are_async"]


def _is_async(call: Any) -> bool:
    """What FastAPI awaits on the event loop instead of running in its threadpool."""
    return _compat.kind_of(call) in (CallKind.COROUTINE, CallKind.ASYNC_GENERATOR)


_HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def _starlette_runs_in_thread(endpoint: Any) -> bool:
    """Whether Starlette runs a plain route's endpoint (or an ``HTTPEndpoint``'s
    handlers) in its threadpool: a ``def`` function, as ``request_response`` decides."""
    handler = endpoint
    while isinstance(handler, functools.partial):
        handler = handler.func
    if inspect.isfunction(handler) or inspect.ismethod(handler):
        return not inspect.iscoroutinefunction(handler)
    if inspect.isclass(handler) and issubclass(handler, HTTPEndpoint):
        methods = [getattr(handler, name, None) for name in _HTTP_METHODS]
        return any(m is not None and not inspect.iscoroutinefunction(m) for m in methods)
    return False  # an ASGI app: not run in a thread


def _sync_dependencies(dependant: Dependant, path: str) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not _is_async(sub.call):
            yield f"dependency {describe(sub.call)} (route {path})"
        yield from _sync_dependencies(sub, path)


def _sync_callables(routes: Iterable[Any], prefix: str = "") -> Iterator[str]:
    for route in _compat.iter_routes(routes, prefix):
        if route.mounted is not None:
            # A FastAPI app, or Starlette's router of ``Mount(path, routes=[...])``.
            router = getattr(route.mounted, "router", route.mounted)
            if isinstance(router, Router):
                yield from _sync_callables(router.routes, route.path)
            continue
        if route.endpoint is None:
            continue
        if route.dependant is None:  # Starlette's own route
            if _starlette_runs_in_thread(route.endpoint):
                yield f"route {describe(route.endpoint)} ({route.path})"
            continue
        if not _is_async(route.endpoint):
            yield f"route {describe(route.endpoint)} ({route.path})"
        yield from _sync_dependencies(route.dependant, route.path)


def check_routes_and_dependencies_are_async(app: FastAPI) -> None:
    """Raise one error listing every sync route and dependency of ``app``.

    FastAPI runs ``def`` routes and dependencies in a thread pool, where context
    variables set by async code do not flow back; call this at startup to keep them out.
    """
    found = list(dict.fromkeys(_sync_callables(app.routes)))
    if found:
        listing = "\n".join(f"  - {item}" for item in found)
        raise RuntimeError(
            f"{len(found)} sync route(s) or dependency(ies) found; make them `async def`:\n"
            f"{listing}"
        )
