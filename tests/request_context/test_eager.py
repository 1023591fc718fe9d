"""A request's context reaches the task, in Celery's eager mode (no broker, the same code
path as a worker: the header is captured, signed, checked and rebuilt).

Routes (``def`` and ``async def``), a dependency and a background task send tasks;
canvas, retries, sync and async code holding a ``_scope``; what the task's graph sees is
what the route's saw of every allowed input, and nothing else travels. Refused contexts
fail the task without running its body; a context over the bound fails the send.
"""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.result import AsyncResult
from fastapi import HTTPException
from fastapi.testclient import TestClient

from fastapi_depends_anywhere.sync import ambient_scope, with_fastapi_depends
from fastapi_depends_anywhere.sync.celery import (
    RequestContextRefusedError,
    RequestContextTask,
    RequestContextTooLargeError,
)
from fda_sync._integrations.context_policy import is_credential

from .rc_service import HEADER, HEADERS, Service, build

REQUEST_HEADERS = {
    "Authorization": "Bearer ann-token",
    "X-Tenant": "acme",
    "Accept-Language": "fr-CH, fr;q=0.9",
    "X-Api-Key": "k-123",
    "X-Trace-Id": "t-1",
    "X-Trace-Token": "not named in full",
    "Cookie": "session=s3cret",
    "X-Other": "not named",
}


@pytest.fixture
def service() -> Service:
    return build()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(service.api) as client:
        yield client


def allowed(name: str) -> bool:
    """What the service's allow-list names (``HEADERS``)."""
    return name in HEADERS or (not is_credential(name) and name.startswith("x-trace-"))


def as_sent(route: dict[str, Any]) -> dict[str, Any]:
    """The route's view of the request, cut to what the allow-list lets travel."""
    return {**route, "headers": [pair for pair in route["headers"] if allowed(pair[0])]}


def result(service: Service, task_id: str) -> Any:
    return AsyncResult(task_id, app=service.celery).get(timeout=60)


def test_a_def_route_sends_the_task_its_graph_sees_the_same_request(
    service: Service, client: TestClient
) -> None:
    response = client.post("/notes/7?q=one&q=two&page=3", headers=REQUEST_HEADERS)
    answer = response.json()
    route = answer["route"]
    assert route["user"] == {"name": "ann", "scopes": ["notes"]}
    assert (route["tenant"], route["locale"], route["method"]) == ("acme", "fr-CH", "POST")
    seen = result(service, answer["task"])["seen"]
    assert seen == as_sent(route)
    assert [name for name, _ in seen["headers"]] == [
        *("authorization", "x-tenant", "accept-language", "x-api-key", "x-trace-id"),
    ]


def test_nothing_travels_that_was_not_named(service: Service, client: TestClient) -> None:
    @service.api.get("/carried")
    def carried() -> Any:
        return service.tasks["carried"].delay().get()

    value = client.get("/carried?q=1", headers=REQUEST_HEADERS).json()
    data = json.loads(value["data"])
    assert sorted(data) == ["client", "headers", "iat", "method", "path", "query_string"]
    assert dict(data["headers"]) == {
        "authorization": "Bearer ann-token",
        "x-tenant": "acme",
        "accept-language": "fr-CH, fr;q=0.9",
        "x-api-key": "k-123",
        "x-trace-id": "t-1",
    }
    for secret in ("s3cret", "not named", "session"):
        assert secret not in value["data"]


def test_an_async_route_its_dependency_and_its_background_task_send_it(
    service: Service, client: TestClient
) -> None:
    headers = {**REQUEST_HEADERS, "Authorization": "Bearer bob-token"}
    response = client.get("/async/my-slug?task_id=from-background", headers=headers)
    answer = response.json()
    expected = as_sent(answer["route"])
    assert expected["user"]["name"] == "bob"
    assert expected["path_params"] == {"slug": "my-slug"}
    assert result(service, answer["task"])["seen"] == expected
    assert result(service, "from-background")["seen"] == expected


def test_canvas_and_retries_each_task_gets_the_context_it_was_sent_with(
    service: Service, client: TestClient
) -> None:
    ann = client.post("/canvas?who=ann", headers=REQUEST_HEADERS).json()
    bob = client.post("/canvas?who=bob", headers={"Authorization": "Bearer bob-token"}).json()
    for answer in (ann, bob):
        expected = as_sent(answer["route"])
        chained = result(service, answer["chain"])
        assert chained["seen"] == chained["previous"]["seen"] == expected
        assert chained["previous"]["previous"]["seen"] == expected
        assert [result(service, task)["seen"] for task in answer["group"]] == [expected] * 2
        chord = result(service, answer["chord"])
        assert chord["seen"] == expected
        assert [part["seen"] for part in chord["previous"]] == [expected] * 2
        retried = result(service, answer["retrying"])
        assert retried == {"seen": expected, "retries": 2}
    assert ann["route"]["user"]["name"] == "ann"
    assert bob["route"]["user"]["name"] == "bob"


def test_an_override_block_in_the_task_wins_over_the_carried_header(
    service: Service, client: TestClient
) -> None:
    @service.api.get("/override")
    def route() -> Any:
        return service.tasks["overridden"].delay().get()

    seen = client.get("/override", headers=REQUEST_HEADERS).json()
    assert (seen["user"]["name"], seen["tenant"], seen["locale"]) == ("ann", "acme", "overridden")


def test_sync_code_holding_a_scope_sends_it(service: Service) -> None:
    scope = {"headers": {"authorization": "Bearer bob-token", "cookie": "a=b"}, "path": "/x"}
    seen = service.tasks["seen"]
    with ambient_scope(scope):
        from_block = seen.delay().get()["seen"]

    @with_fastapi_depends(app=service.api)
    def send() -> Any:
        return seen.delay().get()["seen"]

    from_call = send(_scope=scope)
    for view in (from_block, from_call):
        assert view["user"]["name"] == "bob"
        assert view["headers"] == [["authorization", "Bearer bob-token"]]
        assert (view["method"], view["path"], view["client"]) == ("GET", "/x", "127.0.0.1")


async def test_async_code_holding_a_scope_sends_it(service: Service) -> None:
    import fda_core

    seen = service.tasks["seen"]

    @fda_core.with_fastapi_depends(app=service.api)
    async def send() -> Any:
        # In eager mode the task runs in the caller's thread: off the event loop here.
        return await asyncio.to_thread(lambda: seen.delay().get())

    view = (await send(_scope={"headers": {"authorization": "Bearer ann-token"}}))["seen"]
    assert view["user"] == {"name": "ann", "scopes": ["notes"]}


def test_a_task_sent_outside_any_request_carries_nothing(service: Service) -> None:
    outcome = service.tasks["seen"].delay()
    assert outcome.failed()
    # No Authorization: as a route without one. (Stored as Celery wraps what it cannot pickle.)
    assert str(outcome.result) == repr(HTTPException(401, "Not authenticated"))
    assert service.tasks["carried"].delay().get() is None


def test_a_refused_context_fails_the_task_and_its_body_does_not_run(service: Service) -> None:
    seen = service.tasks["seen"]
    value = {"v": 1, "data": '{"iat":1,"headers":[["authorization","Bearer ann-token"]]}'}
    forged = seen.apply(task_id="forged", headers={HEADER: {**value, "sig": "0" * 64}})
    unsigned = seen.apply(task_id="unsigned", headers={HEADER: value})
    for outcome, reason in ((forged, "does not match its signature"), (unsigned, "not signed")):
        assert outcome.failed()
        assert isinstance(outcome.result, RequestContextRefusedError)
        assert str(outcome.result).startswith(f"Task rc.seen[{outcome.id}] was not run: ")
        assert reason in str(outcome.result)
    assert service.ran == []


def test_over_the_bound_the_send_fails_in_the_route(service: Service, client: TestClient) -> None:
    with pytest.raises(RequestContextTooLargeError, match=r"over the bound of 4096 \(max_size="):
        client.post("/notes/7", headers={**REQUEST_HEADERS, "X-Tenant": "t" * 5000})
    assert service.ran == []


def test_a_task_class_without_carry_request_context_says_so() -> None:
    celery = Celery("not-configured", task_cls=RequestContextTask)
    celery.conf.task_always_eager = True

    @celery.task
    def task() -> None: ...

    with pytest.raises(RuntimeError, match=r"'not-configured' has no carry_request_context\(\)"):
        task.delay()
