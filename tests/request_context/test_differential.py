"""Differential: one dependency graph, run by a real route and by the task the route sends
(eager: captured, signed, checked, rebuilt as a worker does), gives the same value of every
allowed input, and the task sees nothing else.

Hypothesis draws the request: headers (named ones, credential or not, ones a pattern
names, credentials under the pattern, ones not named; repeated), a query string of any
text, path parameters (text and a number).
"""

import string
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from celery import Celery
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.security import APIKeyHeader, SecurityScopes
from fastapi.testclient import TestClient
from hypothesis import given, note, settings
from hypothesis import strategies as st

from fastapi_depends_anywhere.sync import with_fastapi_depends
from fastapi_depends_anywhere.sync.celery import RequestContextTask, carry_request_context
from fda_sync._integrations.context_policy import is_credential

NAMED = ["authorization", "x-tenant", "accept-language", "x-api-key"]
PATTERN = "x-trace-"
NOT_ALLOWED = ["cookie", "x-other", "x-forwarded-for", "x-trace-token", "x-trace-session-id"]

api = FastAPI()
celery = Celery("differential", broker="memory://", task_cls=RequestContextTask)
celery.conf.update(task_always_eager=True)
carry_request_context(
    celery,
    headers=[*NAMED, PATTERN + "*"],
    query_string=True,
    path_params=True,
    client=True,
    method=True,
    path=True,
    signing_key="the-key-of-the-differential-test",
    app=api,
)
api_key = APIKeyHeader(name="x-api-key", auto_error=False)


def get_user(scopes: SecurityScopes, authorization: Annotated[str, Header()] = "") -> str:
    return f"{authorization.removeprefix('Bearer ')}:{','.join(scopes.scopes)}"


def inputs(
    request: Request,
    user: Annotated[str, Security(get_user, scopes=["notes"])],
    key: Annotated[str | None, Depends(api_key)],
    item: Annotated[str, Path()],
    number: Annotated[int, Path()],
    x_tenant: Annotated[list[str] | None, Header()] = None,
    accept_language: Annotated[str | None, Header()] = None,
    q: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    return {
        "user": user,
        "key": key,
        "item": item,
        "number": number,
        "x_tenant": x_tenant,
        "accept_language": accept_language,
        "q": q,
        "headers": [list(pair) for pair in request.headers.items()],
        "query": [list(pair) for pair in request.query_params.multi_items()],
        "path_params": {name: str(value) for name, value in request.path_params.items()},
        "client": request.client.host if request.client else None,
        "method": request.method,
        "path": request.url.path,
    }


InputsDep = Annotated[dict[str, Any], Depends(inputs)]


@with_fastapi_depends(app=api)
def in_task(*, seen: InputsDep) -> dict[str, Any]:
    return seen


@celery.task
def task() -> dict[str, Any]:
    return in_task()


@api.put("/items/{item}/{number:int}")
def route(seen: InputsDep) -> dict[str, Any]:
    return {"route": seen, "task": task.delay().get()}


def allowed(name: str) -> bool:
    """Named in full, or by the pattern and no credential (``test_options`` pins those)."""
    return name in NAMED or (name.startswith(PATTERN) and not is_credential(name))


header_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/,;= ", max_size=12)
header_name = st.one_of(
    st.sampled_from([*NAMED, *NOT_ALLOWED]),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=6).map(
        lambda tail: PATTERN + tail
    ),
)
url_text = st.text(
    alphabet=st.characters(categories=("L", "N", "Zs", "P", "S"), max_codepoint=0x2FFF),
    max_size=8,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    headers = draw(st.lists(st.tuples(header_name, header_text.map(str.strip)), max_size=8))
    query = draw(st.lists(st.tuples(st.sampled_from(["q", "page", "other"]), url_text)))
    item = draw(st.text(alphabet=string.ascii_letters + string.digits + "-_~", min_size=1))
    number = draw(st.integers(0, 10**6))  # what the route's int convertor matches
    return {"headers": headers, "query": urlencode(query), "item": item, "number": number}


client = TestClient(api)


@settings(max_examples=80, deadline=None)
@given(requests())
def test_the_task_sees_what_the_route_saw_of_every_allowed_input(request: dict[str, Any]) -> None:
    note(repr(request))
    url = f"/items/{quote(request['item'])}/{request['number']}?{request['query']}"
    response = client.put(url, headers=request["headers"])
    assert response.status_code == 200, response.text
    answer = response.json()
    route, seen = answer["route"], answer["task"]
    # Every input read through the graph: the same.
    for name in ("user", "key", "item", "number", "x_tenant", "accept_language", "q"):
        assert seen[name] == route[name], name
    for name in ("query", "path_params", "client", "method", "path"):
        assert seen[name] == route[name], name
    # Every allowed header, in order, repeats included; no other.
    assert seen["headers"] == [pair for pair in route["headers"] if allowed(pair[0])]
    assert all(allowed(name) for name, _ in seen["headers"])
