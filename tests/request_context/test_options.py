"""``carry_request_context``'s options: bad input is refused with an error that names it,
and the allow-list lets through what it names and nothing else (a credential header only
when named in full)."""

from typing import Any

import pytest
from celery import Celery
from fastapi import FastAPI

from fastapi_depends_anywhere import RequestContextMiddleware
from fastapi_depends_anywhere.sync.celery import RequestContextTask, carry_request_context
from fda_sync._integrations.context_policy import ContextPolicy, is_credential

KEY = "k" * 32


def celery_app() -> Celery:
    return Celery("options", task_cls=RequestContextTask)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"headers": "authorization"}, TypeError, r"single value 'authorization'.*\['author"),
        ({"headers": [b"authorization"]}, TypeError, r"must be a str, got bytes b'author"),
        ({"headers": ["x-tenant", 7]}, TypeError, r"must be a str, got int 7"),
        ({"headers": ["x tenant"]}, ValueError, r"'x tenant' is not a header name"),
        ({"headers": [""]}, ValueError, r"'' is not a header name"),
        ({"headers": ["x-*-id"]}, ValueError, r"'x-\*-id' is not a header name"),
        ({"query_string": "yes"}, TypeError, r"query_string= takes True or False, got 'yes'"),
        ({"signing_key": 1234}, TypeError, r"signing_key=: a key must be bytes or str, got int"),
        ({"signing_key": "short"}, ValueError, r"a key of 5 bytes is too short.*token_hex"),
        ({"signing_key": KEY, "fallback_keys": KEY}, TypeError, r"takes a list of keys"),
        ({"signing_key": KEY, "fallback_keys": [None]}, TypeError, r"got NoneType"),
        ({"fallback_keys": [KEY]}, ValueError, r"give the key that signs as signing_key="),
        ({"max_age": 0}, ValueError, r"max_age= takes a number of seconds > 0.*got 0"),
        ({"max_age": "1h"}, ValueError, r"max_age=.*got '1h'"),
        ({"max_size": 0}, ValueError, r"max_size= takes a number of bytes > 0, got 0"),
        ({"max_size": 4.5}, ValueError, r"max_size=.*got 4.5"),
        ({"app": "app"}, TypeError, r"carry_request_context\(app=...\) expects the FastAPI"),
    ],
)
def test_bad_options_are_refused_by_name(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        carry_request_context(celery_app(), **options)


def test_an_unknown_option_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'header'"):
        carry_request_context(celery_app(), header=["authorization"])  # type: ignore[call-arg]


def test_it_needs_the_celery_app_and_its_task_class() -> None:
    with pytest.raises(TypeError, match="expects the Celery application, got <fastapi"):
        carry_request_context(FastAPI())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"task_cls=RequestContextTask"):
        carry_request_context(Celery("plain"))


def test_the_middleware_is_added_once_to_the_app_given() -> None:
    api = FastAPI()
    celery = celery_app()
    carry_request_context(celery, app=api)
    carry_request_context(celery, headers=["x-tenant"], app=api)  # replaces the options
    assert [m.cls for m in api.user_middleware] == [RequestContextMiddleware]


def _policy(headers: list[str], **items: bool) -> ContextPolicy:
    return ContextPolicy.of(
        headers=headers,
        items=items,
        signing_key=None,
        fallback_keys=(),
        max_age=None,
        max_size=4096,
    )


REQUEST = {
    "method": "PATCH",
    "path": "/notes/7",
    "query_string": b"q=1&q=2",
    "path_params": {"note_id": 7},
    "client": ("203.0.113.9", 5555),
    "headers": [
        (b"authorization", b"Bearer ann-token"),
        (b"cookie", b"session=s3cret"),
        (b"x-api-key", b"k-123"),
        (b"x-tenant", b"acme"),
        (b"x-trace-id", b"t-1"),
        (b"x-trace-token", b"leak"),
        (b"x-trace-session", b"leak"),
        (b"accept-language", b"fr"),
    ],
}


def test_nothing_travels_unless_named() -> None:
    assert _policy([]).capture(REQUEST) == {}
    only_query = _policy([], query_string=True, path_params=False)
    assert only_query.capture(REQUEST) == {"query_string": "q=1&q=2"}


def test_named_items_travel_as_text() -> None:
    policy = _policy(
        ["X-Tenant", "authorization"],
        query_string=True,
        path_params=True,
        client=True,
        method=True,
        path=True,
    )
    assert policy.capture(REQUEST) == {
        "headers": [["authorization", "Bearer ann-token"], ["x-tenant", "acme"]],
        "query_string": "q=1&q=2",
        "path_params": {"note_id": "7"},
        "client": "203.0.113.9",
        "method": "PATCH",
        "path": "/notes/7",
    }


def test_a_pattern_never_names_a_credential_header() -> None:
    assert _policy(["x-trace-*"]).capture(REQUEST) == {"headers": [["x-trace-id", "t-1"]]}
    everything = _policy(["*"]).capture(REQUEST)["headers"]
    assert [name for name, _ in everything] == ["x-tenant", "x-trace-id", "accept-language"]
    named = _policy(["*", "cookie", "x-api-key"]).capture(REQUEST)["headers"]
    assert [name for name, _ in named] == [
        *("cookie", "x-api-key", "x-tenant", "x-trace-id", "accept-language"),
    ]


@pytest.mark.parametrize(
    "name",
    ["authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-user", "x-csrftoken"],
)
def test_credential_headers(name: str) -> None:
    assert is_credential(name)


@pytest.mark.parametrize("name", ["x-tenant", "accept-language", "x-request-id", "keep-alive"])
def test_not_credential_headers(name: str) -> None:
    assert not is_credential(name)


def test_the_worker_rebuilds_only_what_it_allows() -> None:
    carried = _policy(["*", "authorization"], method=True).capture(REQUEST)
    assert _policy(["x-tenant"], path=True).rebuild(carried) == {
        "headers": [(b"x-tenant", b"acme")]
    }
