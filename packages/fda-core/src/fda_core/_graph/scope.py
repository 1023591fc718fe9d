"""The ASGI scope of the request that a call outside a route pretends to be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, cast
from urllib.parse import quote, unquote

from fda_core._graph.ambient import ambient

__all__ = ["BodyUnavailableError", "build_scope", "check_scope", "receive_no_body"]


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _header_bytes(key: Any, part: str, value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                f"_scope header {key!r}: its {part} {value!r} is not Latin-1 text, which is "
                "all HTTP headers carry; encode it (e.g. percent-encode) and pass bytes or "
                "ASCII text."
            ) from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(cast(Any, value))
    if _is_number(value):
        return str(value).encode("latin-1")  # what an HTTP client sends for a number
    raise TypeError(
        f"_scope header {key!r}: its {part} must be str or bytes (or a number), got "
        f"{type(value).__name__} {value!r}."
    )


def _normalize_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    items: Iterable[tuple[Any, Any]] = headers
    if isinstance(headers, Mapping):
        mapping: Mapping[Any, Any] = headers  # pyright: ignore[reportUnknownVariableType]
        items = mapping.items()
    normalized: list[tuple[bytes, bytes]] = []
    for name, value in items:
        if type(name) is str and type(value) is str and name.isascii() and value.isascii():
            # The usual header, ASCII text: encoded here (the checks below say the rest).
            normalized.append((name.lower().encode("ascii"), value.encode("ascii")))
            continue
        raw_name = _header_bytes(name, "name", name)
        normalized.append((raw_name.lower(), _header_bytes(name, "value", value)))
    return normalized


# What a URL keeps as it is: RFC 3986's unreserved and reserved characters, and ``%``
# (an already percent-encoded string stays as it is).
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


def _url_bytes(value: Any) -> Any:
    """A ``str`` query string or raw path encoded as a URL carries it: UTF-8, percent
    encoded (Starlette decodes these as ASCII)."""
    if isinstance(value, str):
        return quote(value, safe=_URL_SAFE).encode("ascii")
    return value


def check_scope(scope: object, name: str) -> None:
    """Refuse a ``scope=`` / ``_scope=`` that is not a mapping, saying what it got."""
    if scope is not None and type(scope) is not dict and not isinstance(scope, Mapping):
        raise TypeError(
            f"{name} must be a mapping (an ASGI scope such as `request.scope`, or a dict "
            f'like {{"headers": {{"authorization": "Bearer ..."}}}}), got '
            f"{type(scope).__name__} {scope!r}."
        )


def build_scope(
    *,
    app: Any,
    static: Mapping[str, Any] | None,
    dynamic: Mapping[str, Any] | None,
    lifespan_state: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A fresh, complete HTTP scope: defaults < decoration ``scope=`` < call-time ``_scope``
    (by default the ambient scope, ``fda_core._graph.ambient``).

    Everything mutable is copied, so a dependency writing to ``request.state`` can affect
    neither the next call nor the request the ``_scope`` was taken from.
    """
    if dynamic is None:
        dynamic = ambient()
    scope = _default_scope()
    scope["app"] = app
    if app is not None:  # what Starlette's routing adds; request.url_for needs it (< 0.28)
        scope["router"] = app.router
    state: dict[str, Any] = dict(lifespan_state or {})
    given: set[str] = set()
    check_scope(static, "scope")
    check_scope(dynamic, "_scope")
    for layer in (static, dynamic):
        if layer:
            scope.update(layer)
            state.update(layer.get("state") or {})
            given.update(layer)
    scope["type"] = "http"  # a websocket's scope works too: its headers, client, app...
    scope["state"] = state
    scope["headers"] = _normalize_headers(scope["headers"])
    # A route's path parameters are text: a number is given as its text, as in a URL.
    if scope["path_params"] or type(scope["path_params"]) is not dict:
        scope["path_params"] = {
            name: str(value) if _is_number(value) else value
            for name, value in dict(scope["path_params"]).items()
        }
    else:
        scope["path_params"] = {}  # a fresh one: dependencies may write to it
    scope["query_string"] = _url_bytes(scope["query_string"])
    if isinstance(scope["path"], (bytes, bytearray)):  # ASGI's path is decoded text
        scope["path"] = unquote(bytes(scope["path"]).decode("latin-1"))
    if "path" in given and "raw_path" not in given:
        scope["raw_path"] = scope["path"]
    scope["raw_path"] = _url_bytes(scope["raw_path"])
    return scope
