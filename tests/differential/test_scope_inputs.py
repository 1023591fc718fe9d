"""Differential tests: generated ``_scope`` inputs give what a real route gives.

Hypothesis draws header, cookie, query and path values (text, numbers, bytes; ASCII and
not) and the form they take in ``_scope`` (a header dict or ASGI pairs, a ``str`` or
``bytes`` query string). The same request goes to a real route through ``TestClient``, as
an HTTP client sends it, and to the endpoint decorated by the async API and the sync API
(both paths): each must see the same parameter values, path and query, or raise the same
validation error.
"""

import asyncio
import functools
import string
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import pytest
from fastapi import Cookie, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fda_core
import fda_sync

from .test_plan_vs_fastapi import sync_path

EXAMPLES = 60

TOKEN = string.ascii_letters + string.digits + "-._~"
#: Header values as HTTP carries them: visible ASCII and inner spaces.
header_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/,;= ", max_size=12)
#: Query and path text: any letter of any script, and spaces; no URL delimiters.
url_text = st.text(
    alphabet=st.characters(
        categories=("L", "N", "Zs"), exclude_characters="&=#%+/?", max_codepoint=0x2FFF
    ),
    max_size=10,
)
header_value = st.one_of(
    header_text.map(str.strip),
    st.integers(-(10**6), 10**6),
    header_text.map(lambda text: text.strip().encode("latin-1")),
)
number_or_text = st.one_of(st.integers(-(10**6), 10**6), url_text.map(str.strip))


async def endpoint(
    item: Annotated[str, Path()],
    request: Request,
    x_token: Annotated[str, Header()],
    x_count: Annotated[int, Header()] = 0,
    session: Annotated[str | None, Cookie()] = None,
    q: Annotated[str, Query()] = "",
    n: Annotated[int, Query()] = 0,
) -> dict[str, Any]:
    return {
        "item": item,
        "x_token": x_token,
        "x_count": x_count,
        "session": session,
        "q": q,
        "n": n,
        "path": request.url.path,
        "query": request.url.query,
        "url_tail": str(request.url).split("/", 3)[3],
    }


def text(value: Any) -> str:
    """What an HTTP client sends for ``value``."""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def route_answer(case: dict[str, Any]) -> Any:
    app = FastAPI()
    app.get("/items/{item}")(endpoint)
    headers = {name: text(value) for name, value in case["headers"].items()}
    url = f"/items/{quote(text(case['item']))}?{case['query']}"
    with TestClient(app) as client:
        response = client.get(url, headers=headers)
    if response.status_code == 422:
        return ("invalid", sorted(tuple(e["loc"]) for e in response.json()["detail"]))
    return response.json()


def scope_of(case: dict[str, Any]) -> dict[str, Any]:
    headers: Any = case["headers"]
    if case["pairs"]:
        headers = [(name.encode("latin-1"), value) for name, value in headers.items()]
    query: Any = case["query"]
    if case["bytes_query"]:
        query = query.encode("ascii")
    item = case["item"]
    return {
        "path": f"/items/{text(item)}",
        "path_params": {"item": item},
        "query_string": query,
        "headers": headers,
    }


def answer(call: Any) -> Any:
    try:
        return call()
    except RequestValidationError as exc:
        return ("invalid", sorted(tuple(e["loc"]) for e in exc.errors()))


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if draw(st.booleans()):
        headers["x-token"] = draw(header_value)
    if draw(st.booleans()):
        headers["x-count"] = draw(header_value)
    if draw(st.booleans()):
        headers["cookie"] = "session=" + draw(st.text(alphabet=TOKEN, min_size=1, max_size=8))
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["q"] = text(draw(number_or_text))
    if draw(st.booleans()):
        params["n"] = text(draw(number_or_text))
    # The query as a URL carries it (encoded), or as typed (raw text, which is encoded).
    query = (
        urlencode(params)
        if draw(st.booleans())
        else "&".join(f"{k}={v}" for k, v in params.items())
    )
    return {
        "headers": headers,
        "pairs": draw(st.booleans()),
        "query": query,
        "bytes_query": query.isascii() and draw(st.booleans()),
        "item": draw(number_or_text.filter(lambda v: text(v) != "")),
    }


@pytest.mark.timeout(300)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(cases())
def test_generated_scopes_give_what_a_route_gives(case: dict[str, Any]) -> None:
    note(repr(case))
    expected = route_answer(case)
    app = FastAPI()
    scope = scope_of(case)
    decorated = fda_core.with_fastapi_depends(endpoint, app=app)
    assert answer(lambda: asyncio.run(decorated(_scope=scope))) == expected, "async API"
    for path in ("loop", "caller"):
        with sync_path(path):
            blocking = fda_sync.with_fastapi_depends(endpoint, app=app)
            assert answer(functools.partial(blocking, _scope=scope)) == expected, path
