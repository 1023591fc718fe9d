"""The carried context on the wire: signed, checked, bounded. A worker with a key refuses
what is unsigned, altered, signed with a key it lacks, too old or malformed, with an error
that says which; a context over the size bound is refused when sent, naming its size, the
bound and its biggest items."""

import json
import time
from typing import Any

import pytest

from fda_core._graph.ambient import RequestSource
from fda_sync._integrations.context_policy import ContextPolicy
from fda_sync._integrations.context_wire import (
    RequestContextRefusedError,
    RequestContextTooLargeError,
    decode,
    encode,
)

KEY = b"k" * 32
OLD = "an-older-key-still-accepted-by-workers"
REQUEST = RequestSource(
    {
        "headers": {"authorization": "Bearer ann-token", "x-tenant": "acme", "x-other": "no"},
        "query_string": "q=caf\u00e9",
        "method": "POST",
    }
)
TASK = "Task rc.seen[id-1]"


def policy(
    keys: tuple[Any, ...] = (KEY,), max_age: float | None = None, max_size: int = 4096
) -> ContextPolicy:
    return ContextPolicy.of(
        headers=["authorization", "x-tenant"],
        items={"query_string": True, "method": True},
        signing_key=keys[0] if keys else None,
        fallback_keys=keys[1:],
        max_age=max_age,
        max_size=max_size,
    )


def test_the_round_trip_rebuilds_the_allowed_items() -> None:
    value = encode(policy(), REQUEST, "rc.seen")
    assert set(value) == {"v", "data", "sig"}
    assert value["v"] == 1
    data = json.loads(value["data"])
    assert value["data"] == json.dumps(data, sort_keys=True, separators=(",", ":"))
    issued = data.pop("iat")
    assert abs(issued - time.time()) < 600
    assert data == {
        "headers": [["authorization", "Bearer ann-token"], ["x-tenant", "acme"]],
        "method": "POST",
        "query_string": "q=caf%C3%A9",  # as a URL carries it, as the route gets it
    }
    source = decode(policy(), value, TASK)
    assert source.scope == {
        "headers": [(b"authorization", b"Bearer ann-token"), (b"x-tenant", b"acme")],
        "query_string": b"q=caf%C3%A9",
        "method": "POST",
    }
    assert source.issued_at == issued


def test_a_retry_or_a_chain_keeps_the_time_of_the_request() -> None:
    first = decode(policy(), encode(policy(), REQUEST, "rc.seen"), TASK)
    again = encode(policy(), RequestSource(first.scope, first.issued_at - 100), "rc.seen")
    assert json.loads(again["data"])["iat"] == first.issued_at - 100


def _refused(value: Any, checking: ContextPolicy | None = None) -> str:
    with pytest.raises(RequestContextRefusedError) as info:
        decode(checking or policy(), value, TASK)
    message = str(info.value)
    assert message.startswith(f"{TASK} was not run: the request context it carries ")
    return message


def test_unsigned_altered_and_other_keys_are_refused() -> None:
    value = encode(policy(), REQUEST, "rc.seen")
    unsigned = {"v": 1, "data": value["data"]}
    assert "is not signed" in _refused(unsigned)
    altered = {**value, "data": value["data"].replace("ann-token", "adm-token")}
    assert "does not match its signature: it was altered" in _refused(altered)
    forged = {**value, "sig": "0" * 64}
    assert "does not match its signature" in _refused(forged)
    other = encode(policy(keys=(b"x" * 32,)), REQUEST, "rc.seen")
    assert "signed with a key this worker does not have" in _refused(other)
    assert "does not match" in _refused({**value, "sig": 12})


def test_key_rotation_the_old_key_still_verifies() -> None:
    signed_with_old = encode(policy(keys=(OLD,)), REQUEST, "rc.seen")
    rotated = policy(keys=(KEY, OLD))
    assert decode(rotated, signed_with_old, TASK).scope["method"] == "POST"
    new = encode(rotated, REQUEST, "rc.seen")
    assert decode(policy(keys=(KEY,)), new, TASK).scope["method"] == "POST"  # signed with KEY
    _refused(signed_with_old, policy(keys=(KEY,)))  # the old key retired


def test_a_worker_without_a_key_reads_signed_and_unsigned_contexts() -> None:
    value = encode(policy(), REQUEST, "rc.seen")
    assert decode(policy(keys=()), value, TASK).scope["method"] == "POST"
    unsigned = encode(policy(keys=()), REQUEST, "rc.seen")
    assert "sig" not in unsigned
    assert decode(policy(keys=()), unsigned, TASK).scope["method"] == "POST"


def test_a_context_older_than_max_age_is_refused() -> None:
    old = RequestSource(REQUEST.scope, time.time() - 7200)
    value = encode(policy(), old, "rc.seen")
    assert decode(policy(max_age=10800), value, TASK).issued_at is not None
    message = _refused(value, policy(max_age=3600))
    assert "expired: it was captured 720" in message
    assert "up to 3600 s old (max_age=)" in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a string", "is malformed (not a mapping)"),
        ({"v": 2, "data": "{}"}, "unknown format (version 2; this worker reads 1)"),
        ({"v": 1, "data": 5}, "unknown format"),
        ({"v": 1, "data": "not json"}, "is malformed (Expecting value"),
        ({"v": 1, "data": "[1]"}, "is malformed (not a JSON object)"),
        ({"v": 1, "data": "{}"}, "is malformed (no capture time)"),
        ({"v": 1, "data": '{"iat":1,"headers":[["a"]]}'}, "is malformed (headers: expected"),
        ({"v": 1, "data": '{"iat":1,"method":3}'}, "is malformed (method: expected text, got int)"),
        (
            {"v": 1, "data": '{"iat":1,"headers":[["x-tenant",null]]}'},
            "is malformed (header 'x-tenant': expected text, got NoneType)",
        ),
        ({"v": 1, "data": '{"iat":1,"headers":[["x-tenant","\\u0100"]]}'}, "is malformed"),
    ],
)
def test_malformed_contexts_are_refused(value: Any, reason: str) -> None:
    assert reason in _refused(value, policy(keys=()))


def test_over_the_size_bound_the_send_names_the_size_the_bound_and_the_biggest_items() -> None:
    big = RequestSource(
        {
            "headers": {"authorization": "Bearer " + "t" * 300, "x-tenant": "acme"},
            "query_string": "q=" + "x" * 100,
            "method": "POST",
        }
    )
    with pytest.raises(RequestContextTooLargeError) as info:
        encode(policy(max_size=256), big, "rc.seen")
    message = str(info.value)
    size = len(json.dumps({**policy().capture(big.scope), "iat": int(time.time())}, **COMPACT))
    assert message.startswith(
        f"The request context for task 'rc.seen' is {size} bytes, over the bound of 256 "
        "(max_size=); its biggest items: header 'authorization' (327 bytes), "
        "query_string (104 bytes), header 'x-tenant' (19 bytes). "
    )
    assert encode(policy(max_size=size), big, "rc.seen")["v"] == 1  # the bound is inclusive


COMPACT: dict[str, Any] = {"sort_keys": True, "separators": (",", ":")}
