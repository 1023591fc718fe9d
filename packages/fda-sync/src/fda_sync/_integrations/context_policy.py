"""What of a request may travel with a task: the allow-list, checked once, and the capture
and rebuild of a request's context under it.

Nothing travels unless named. A header name ending in ``*`` names every header that
starts with what precedes it (``"*"``: every header), credential headers excepted: those
travel only when named in full.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from fda_core._graph.scope import build_scope

__all__ = ["CREDENTIAL_HEADERS", "ContextPolicy", "MalformedContextError", "is_credential"]

#: Headers that carry credentials; so does any header whose name contains one of
#: ``_CREDENTIAL_WORDS``. A ``*`` pattern never names them.
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-csrf-token",
        "x-xsrf-token",
        "x-amz-security-token",
    }
)
_CREDENTIAL_WORDS = (
    *("auth", "token", "key", "secret", "passw", "session", "cookie", "jwt"),
    *("credential", "signature"),
)
#: RFC 9110's token characters: what a header name is made of.
_NAME = re.compile(r"[!#$%&'+\-.^_`|~0-9a-z]+")  # and `*`, here the wildcard
_MIN_KEY = 16


class MalformedContextError(ValueError):
    """Carried data that this format does not describe."""


def is_credential(name: str) -> bool:
    """Whether header ``name`` (lower case) may carry a credential."""
    return name in CREDENTIAL_HEADERS or any(word in name for word in _CREDENTIAL_WORDS)


def _header_names(headers: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    if isinstance(headers, (str, bytes)):
        raise TypeError(
            f"headers= takes a list of header names, got the single value {headers!r}: "
            f"write [{headers!r}]."
        )
    named: set[str] = set()
    prefixes: list[str] = []
    for name in cast(Iterable[object], headers):
        if not isinstance(name, str):
            raise TypeError(
                f"headers=: a header name must be a str, got {type(name).__name__} {name!r}."
            )
        lower = name.strip().lower()
        bare = lower.removesuffix("*")
        if (bare or bare == lower) and not _NAME.fullmatch(bare):
            raise ValueError(
                f"headers=: {name!r} is not a header name (letters, digits and "
                "!#$%&'*+-.^_`|~, with an optional `*` at the end)."
            )
        if lower.endswith("*"):
            prefixes.append(bare)
        else:
            named.add(lower)
    return frozenset(named), tuple(prefixes)


def _key_bytes(key: object, option: str) -> bytes:
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes):
        raise TypeError(f"{option}: a key must be bytes or str, got {type(key).__name__}.")
    if len(key) < _MIN_KEY:
        raise ValueError(
            f"{option}: a key of {len(key)} bytes is too short to sign with; use at least "
            f"{_MIN_KEY} random bytes (32 is better), e.g. `secrets.token_hex(32)`."
        )
    return key


@dataclass(frozen=True)
class ContextPolicy:
    """The options of ``carry_request_context``, checked."""

    headers: frozenset[str]
    prefixes: tuple[str, ...]
    items: frozenset[str]
    #: The first key signs; every key verifies (key rotation).
    keys: tuple[bytes, ...]
    max_age: float | None
    max_size: int

    @classmethod
    def of(
        cls,
        *,
        headers: Iterable[str],
        items: Mapping[str, object],
        signing_key: object,
        fallback_keys: Iterable[object],
        max_age: object,
        max_size: object,
    ) -> ContextPolicy:
        """Check the options; a bad one raises an error that names it."""
        named, prefixes = _header_names(headers)
        for item, value in items.items():
            if not isinstance(value, bool):
                raise TypeError(f"{item}= takes True or False, got {value!r}.")
        keys: list[bytes] = []
        if signing_key is not None:
            keys.append(_key_bytes(signing_key, "signing_key="))
        if isinstance(fallback_keys, (str, bytes)):
            raise TypeError("fallback_keys= takes a list of keys: write [key].")
        keys += [_key_bytes(key, "fallback_keys=") for key in fallback_keys]
        if keys and signing_key is None:
            raise ValueError("fallback_keys= only verify: give the key that signs as signing_key=.")
        if max_age is not None and (
            not isinstance(max_age, (int, float)) or isinstance(max_age, bool) or max_age <= 0
        ):
            raise ValueError(f"max_age= takes a number of seconds > 0 (or None), got {max_age!r}.")
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size <= 0:
            raise ValueError(f"max_size= takes a number of bytes > 0, got {max_size!r}.")
        chosen = frozenset(item for item, value in items.items() if value)
        return cls(named, prefixes, chosen, tuple(keys), max_age, max_size)

    def allows_header(self, name: str) -> bool:
        if name in self.headers:
            return True
        return not is_credential(name) and any(name.startswith(p) for p in self.prefixes)

    def capture(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        """The allowed items of the request of ``scope``, as text, read as a dependency
        would read them (``scope`` normalized as a call's ``_scope`` is)."""
        request = build_scope(app=None, static=None, dynamic=scope, lifespan_state=None)
        data: dict[str, Any] = {}
        headers = [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in request["headers"]
            if self.allows_header(name.decode("latin-1"))
        ]
        if headers:
            data["headers"] = headers
        if "query_string" in self.items and request["query_string"]:
            data["query_string"] = bytes(request["query_string"]).decode("latin-1")
        if "path_params" in self.items and request["path_params"]:
            data["path_params"] = {str(k): str(v) for k, v in request["path_params"].items()}
        if "client" in self.items and request.get("client"):
            data["client"] = str(request["client"][0])
        if "method" in self.items:
            data["method"] = str(request["method"])
        if "path" in self.items:
            data["path"] = str(request["path"])
        return data

    def rebuild(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The ASGI scope of carried ``data``: the items this policy allows, no other."""
        try:
            return self._rebuild(data)
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise MalformedContextError(str(exc)) from None

    def _rebuild(self, data: Mapping[str, Any]) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in _header_pairs(data.get("headers", [])):
            if self.allows_header(name.lower()):
                headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        if headers:
            scope["headers"] = headers
        if "query_string" in self.items and "query_string" in data:
            scope["query_string"] = _text(data["query_string"], "query_string").encode("latin-1")
        if "path_params" in self.items and "path_params" in data:
            params = cast(Mapping[Any, Any], data["path_params"])
            scope["path_params"] = {
                _text(k, "path_params"): _text(v, f"path parameter {k!r}")
                for k, v in params.items()
            }
        if "client" in self.items and "client" in data:
            scope["client"] = (_text(data["client"], "client"), 0)
        for item in ("method", "path"):
            if item in self.items and item in data:
                scope[item] = _text(data[item], item)
        return scope


def _text(value: object, what: str) -> str:
    """``value``, which item ``what`` of the carried data must hold as text."""
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected text, got {type(value).__name__}")
    return value


def _header_pairs(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise TypeError(f"headers: expected a list, got {type(value).__name__}")
    pairs: list[tuple[str, str]] = []
    for pair in cast(list[object], value):
        if not isinstance(pair, list) or len(cast(list[object], pair)) != 2:
            raise ValueError("headers: expected [name, value] pairs")
        name, text = cast(list[object], pair)
        pairs.append((_text(name, "headers"), _text(text, f"header {name!r}")))
    return pairs
