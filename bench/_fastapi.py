"""FastAPI's own resolver, called as an app would call it outside a route."""

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from fda_core import _compat
from fda_core._graph.scope import build_scope, receive_no_body


def resolver(
    app: FastAPI,
    endpoint: Callable[..., Awaitable[Any]],
    *args: Any,
    scope: Mapping[str, Any] | None = None,
) -> Callable[[], Awaitable[Any]]:
    """``solve_dependencies`` on ``endpoint``'s ``Dependant`` (built once), then the
    endpoint awaited with ``args`` and the values, inside a request's two exit stacks."""
    dependant = _compat.build_dependant(endpoint)

    async def call() -> Any:
        request_scope = build_scope(app=app, static=None, dynamic=scope, lifespan_state=None)
        async with AsyncExitStack() as request_stack, AsyncExitStack() as function_stack:
            _compat.install_exit_stacks(
                request_scope, request_stack=request_stack, function_stack=function_stack
            )
            solved = await _compat.solve(
                request=Request(request_scope, receive_no_body),
                dependant=dependant,
                exit_stack=request_stack,
                dependency_cache={},
                dependency_overrides_provider=app,
            )
            return await endpoint(*args, **solved.values)

    return call
