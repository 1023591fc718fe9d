"""The ASGI scope of the request that a call outside a route pretends to be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

__all__ = ["BodyUnavailableError", "build_scope", "receive_no_body"]


class BodyUnavailableError(RuntimeError):
    """A dependency tried to read a request body where there is no request."""


_BODY_MESSAGE = (
    "The request body is not available outside a request: the dependency called "
    "`request.body()`, `.json()`, `.form()` or `.stream()`. Read what you need from the "
    "request inside the route and pass it to the function as an argument."
)


async def receive_no_body() -> NoReturn:
    """ASGI ``receive`` for the synthesized request: any read fails at once."""
    raise BodyUnavailableError(_BODY_MESSAGE)


def _default_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("localhost", 80),
        "path_params": {},
        "extensions": {},
    }


def _normalize_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    items: Iterable[tuple[Any, Any]] = headers
    if isinstance(headers, Mapping):
        mapping: Mapping[Any, Any] = headers  # pyright: ignore[reportUnknownVariableType]
        items = mapping.items()
    normalized: list[tuple[bytes, bytes]] = []
    for name, value in items:
        raw_name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        raw_value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        normalized.append((raw_name.lower(), raw_value))
    return normalized


def build_scope(
    *,
    app: Any,
    static: Mapping[str, Any] | None,
    dynamic: Mapping[str, Any] | None,
    lifespan_state: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A fresh, complete HTTP scope: defaults < decoration ``scope=`` < call-time ``_scope``.

    Everything mutable is copied, so a dependency writing to ``request.state`` can affect
    neither the next call nor the request the ``_scope`` was taken from.
    """
    scope = _default_scope()
    scope["app"] = app
    if app is not None:  # what Starlette's routing adds; request.url_for needs it (< 0.28)
        scope["router"] = app.router
    state: dict[str, Any] = dict(lifespan_state or {})
    given: set[str] = set()
    for layer in (static, dynamic):
        if layer:
            scope.update(layer)
            state.update(layer.get("state") or {})
            given.update(layer)
    scope["type"] = "http"  # a websocket's scope works too: its headers, client, app...
    scope["state"] = state
    scope["headers"] = _normalize_headers(scope["headers"])
    scope["path_params"] = dict(scope["path_params"])
    if isinstance(scope["query_string"], str):
        scope["query_string"] = scope["query_string"].encode("latin-1")
    if "path" in given and "raw_path" not in given:
        scope["raw_path"] = scope["path"].encode("utf-8")
    return scope
