"""A request's context beyond its route: ``ambient_scope()`` and the middleware that
records the request being handled (for the tasks sent while handling it)."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send

from fda_core._graph.ambient import RequestSource, entered, reset_source, source_token
from fda_core._graph.scope import check_scope

__all__ = ["RequestContextMiddleware", "ambient_scope"]


@contextmanager
def ambient_scope(scope: Mapping[str, Any]) -> Generator[None, None, None]:
    """Run the block as if it served the request of ASGI scope ``scope``.

    Every decorated call made in the block without ``_scope=`` (nested calls, the async
    and the sync API, stacks and ``resolve_fastapi_depends`` started in it) gets ``scope``
    as its ``_scope``; a call's own ``_scope=`` replaces it. Tasks sent from the block
    carry ``scope``'s context (``fda_sync.celery.carry_request_context``). Blocks nest;
    the innermost wins.
    """
    if cast(object, scope) is None:
        raise TypeError(
            "ambient_scope() takes the ASGI scope of a request (`request.scope`, or a dict "
            'like {"headers": {"authorization": "Bearer ..."}}), got None.'
        )
    check_scope(scope, "ambient_scope(scope)")
    with entered(RequestSource(scope)):
        yield


class RequestContextMiddleware:
    """Record the request being handled, so that tasks sent while handling it can carry
    its context: from the route, its dependencies, its background tasks, ``def`` or
    ``async def`` (a ``def`` runs in a thread that gets a copy of the request's context
    variables).

    A pure ASGI middleware: ``app.add_middleware(RequestContextMiddleware)``. It changes
    nothing the app sees; decorated calls made while handling the request still get its
    scope only as ``_scope=request.scope``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # The scope itself, not a copy: routing adds the path parameters to it later.
        token = source_token(RequestSource(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_source(token)
