"""A request's context on the wire: what a task message carries, signed, bounded, checked.

The message header ``fda_request_context`` holds ``{"v": 1, "data": DATA, "sig": SIG}``.
``DATA`` is canonical JSON (sorted keys, no spaces, ASCII) of the allowed items (see
``ContextPolicy.capture``) and ``iat``, the Unix time at which they were captured from the
request. ``SIG`` is the hex HMAC-SHA256, under the signing key, of
``b"fda-request-context:1:" + DATA``; it is absent when no key is configured. The receiver
checks the bytes it got, so no re-encoding can make a valid context fail, or an altered
one pass.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, cast

from fda_core._graph.ambient import RequestSource
from fda_sync._integrations.context_policy import ContextPolicy, MalformedContextError

__all__ = [
    "HEADER",
    "RequestContextError",
    "RequestContextRefusedError",
    "RequestContextTooLargeError",
    "decode",
    "encode",
]

HEADER = "fda_request_context"
VERSION = 1
_SIGNED = b"fda-request-context:1:"


class RequestContextError(Exception):
    """A request's context could not travel with a task."""


class RequestContextTooLargeError(RequestContextError):
    """Raised when a task is sent: the context is over the size bound (``max_size=``)."""


class RequestContextRefusedError(RequestContextError):
    """The task's failure: the worker refused the context it carried and did not run the
    task (unsigned, altered, expired or malformed)."""


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, _SIGNED + text.encode("ascii"), hashlib.sha256).hexdigest()


def _sizes(data: Mapping[str, Any]) -> list[tuple[int, str]]:
    sizes = [(len(_canonical(pair)), f"header {pair[0]!r}") for pair in data.get("headers", [])]
    sizes += [(len(_canonical(value)), item) for item, value in data.items() if item != "headers"]
    return sorted(sizes, key=lambda size: -size[0])


def encode(policy: ContextPolicy, source: RequestSource, task: str) -> dict[str, Any]:
    """The header value carrying ``source``'s context to ``task``; raises
    ``RequestContextTooLargeError`` over the size bound."""
    data = policy.capture(source.scope)
    data["iat"] = int(time.time() if source.issued_at is None else source.issued_at)
    text = _canonical(data)
    if len(text) > policy.max_size:
        biggest = ", ".join(f"{name} ({size} bytes)" for size, name in _sizes(data)[:3])
        raise RequestContextTooLargeError(
            f"The request context for task {task!r} is {len(text)} bytes, over the bound of "
            f"{policy.max_size} (max_size=); its biggest items: {biggest}. Carry fewer "
            "items, or raise max_size in carry_request_context()."
        )
    value: dict[str, Any] = {"v": VERSION, "data": text}
    if policy.keys:
        value["sig"] = _mac(policy.keys[0], text)
    return value


def decode(policy: ContextPolicy, value: object, task: str) -> RequestSource:
    """The request ``value`` carries, checked; ``RequestContextRefusedError`` otherwise."""

    def refuse(reason: str) -> RequestContextRefusedError:
        return RequestContextRefusedError(
            f"{task} was not run: the request context it carries {reason}."
        )

    if not isinstance(value, Mapping):
        raise refuse("is malformed (not a mapping)")
    envelope = cast(Mapping[str, Any], value)
    text = envelope.get("data")
    if envelope.get("v") != VERSION or not isinstance(text, str):
        version = envelope.get("v")
        raise refuse(f"is of an unknown format (version {version!r}; this worker reads 1)")
    signature = envelope.get("sig")
    if policy.keys:
        if signature is None:
            raise refuse("is not signed, and this worker accepts only signed contexts")
        if not isinstance(signature, str) or not any(
            hmac.compare_digest(_mac(key, text), signature) for key in policy.keys
        ):
            raise refuse(
                "does not match its signature: it was altered, or signed with a key this "
                "worker does not have (signing_key=, fallback_keys=)"
            )
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise MalformedContextError("not a JSON object")
        issued = cast(dict[str, Any], data).get("iat")
        if not isinstance(issued, (int, float)) or isinstance(issued, bool):
            raise MalformedContextError("no capture time")
        scope = policy.rebuild(cast(dict[str, Any], data))
    except (ValueError, MalformedContextError) as exc:
        raise refuse(f"is malformed ({exc})") from None
    if policy.max_age is not None:
        age = time.time() - issued
        if age > policy.max_age:
            raise refuse(
                f"expired: it was captured {age:.0f} s ago, and this worker accepts "
                f"contexts up to {policy.max_age:g} s old (max_age=)"
            )
    return RequestSource(scope, float(issued))
