"""The request that code outside a route stands for, in two context variables.

- The *ambient scope*: the ``_scope`` of every decorated call made without one
  (``build_scope`` reads it), set by ``ambient_scope()`` blocks, such as the one a task
  queue's worker opens around a task that carries a request's context.
- The *source*: the request whose context a task sent now carries. Set by the same
  blocks, by ``RequestContextMiddleware`` while the app handles a request, and by a
  decorated call given ``_scope=`` while its body runs.

Two variables, not one: the middleware makes the handled request the source of the tasks
sent while handling it, but never the ambient scope of the decorated calls made there
(those get ``_scope=request.scope`` when they ask for it, as before).
"""

from __future__ import annotations

import contextvars
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RequestSource",
    "ambient",
    "current_source",
    "entered",
    "reset_source",
    "source_token",
    "stand_for",
]


@dataclass(frozen=True)
class RequestSource:
    """A request's ASGI scope, and when its context was first captured (``None``: now)."""

    scope: Mapping[str, Any]
    issued_at: float | None = None


_ambient: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "fda_ambient_scope", default=None
)
#: A bare scope stands for ``RequestSource(scope)``: what a call given ``_scope=`` sets,
#: on every such call, while the source is read only by a task being sent.
_source: contextvars.ContextVar[RequestSource | Mapping[str, Any] | None] = contextvars.ContextVar(
    "fda_request_source", default=None
)


def ambient() -> Mapping[str, Any] | None:
    """The ambient scope: what a call made without ``_scope=`` gets as its ``_scope``."""
    return _ambient.get()


def current_source() -> RequestSource | None:
    """The request whose context a task sent now would carry, if any."""
    source = _source.get()
    if source is None or isinstance(source, RequestSource):
        return source
    return RequestSource(source)  # set by ``stand_for``


SourceToken = contextvars.Token[RequestSource | Mapping[str, Any] | None]


def source_token(source: RequestSource) -> SourceToken:
    """Make ``source`` the current one; reset the token to undo (the middleware's way)."""
    return _source.set(source)


def stand_for(scope: Mapping[str, Any]) -> SourceToken:
    """A decorated call's body, given ``_scope=scope``: tasks it sends carry ``scope``
    until the token is reset (``reset_source``).

    Not the ambient scope: the decorated calls the body makes get no ``_scope`` of it,
    as before."""
    return _source.set(scope)


def reset_source(token: SourceToken) -> None:
    _source.reset(token)


@contextmanager
def entered(source: RequestSource) -> Generator[None, None, None]:
    """Code standing for ``source``'s request: its scope is the ambient scope of decorated
    calls and the source of the tasks sent."""
    ambient_token = _ambient.set(source.scope)
    source_token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(source_token)
        _ambient.reset(ambient_token)
