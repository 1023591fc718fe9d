"""A Django request as the ASGI scope FastAPI's dependencies read (no Django import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

__all__ = ["scope_from_django"]

#: The two request headers WSGI gives without the ``HTTP_`` prefix.
_UNPREFIXED = {"CONTENT_TYPE": b"content-type", "CONTENT_LENGTH": b"content-length"}


def _port(value: object, default: int) -> int:
    try:
        return int(cast(Any, value))
    except (TypeError, ValueError):
        return default


def scope_from_django(request: Any) -> dict[str, Any]:
    """The ASGI scope of a Django ``HttpRequest``, for ``_scope=`` or ``ambient_scope()``.

    Headers come from ``request.META`` (``HTTP_*``, ``CONTENT_TYPE``, ``CONTENT_LENGTH``)
    as the bytes the client sent; then the method, the path, the raw query string, the
    client and server addresses, the scheme, and the URL's keyword arguments
    (``request.resolver_match.kwargs``) as path parameters, as text.
    """
    meta = getattr(request, "META", None)
    if not isinstance(meta, Mapping):
        raise TypeError(
            f"scope_from_django() takes a Django HttpRequest, got {type(request).__name__} "
            f"{request!r}."
        )
    environ = cast(Mapping[str, Any], meta)
    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if not isinstance(value, str):
            continue
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower().encode("latin-1")
        elif key in _UNPREFIXED and value:
            name = _UNPREFIXED[key]
        else:
            continue
        headers.append((name, value.encode("latin-1")))  # WSGI decodes bytes as Latin-1
    match = getattr(request, "resolver_match", None)
    kwargs = cast(Mapping[str, Any], getattr(match, "kwargs", None) or {})
    protocol = str(environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": protocol.removeprefix("HTTP/"),
        "method": str(request.method),
        "scheme": str(environ.get("wsgi.url_scheme", "http")),
        "path": str(request.path),
        "query_string": str(environ.get("QUERY_STRING", "")).encode("latin-1"),
        "headers": headers,
        "server": (
            str(environ.get("SERVER_NAME", "localhost")),
            _port(environ.get("SERVER_PORT"), 80),
        ),
        "path_params": {str(name): str(value) for name, value in kwargs.items()},
    }
    if environ.get("REMOTE_ADDR"):
        scope["client"] = (str(environ["REMOTE_ADDR"]), _port(environ.get("REMOTE_PORT"), 0))
    return scope
