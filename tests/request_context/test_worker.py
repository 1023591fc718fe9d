"""A request's context crosses a real broker to real workers: a ``redis-server`` of the
test's own, a prefork worker (two children) and a threads worker (four threads).

Routes behind ``TestClient`` and behind a real uvicorn server send tasks; in the worker,
the same graph (``Security`` with scopes, headers, query, path, client) sees what the
route saw of every allowed input, for each of two users at once, through chains, groups,
chords and retries. Contexts forged, altered, unsigned or signed with an unknown key are
refused (the task fails with the reason, its body never runs); a context signed with the
previous key is accepted; one over the bound is refused at send.
"""

import asyncio
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from celery import signals
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync.test_celery import _stop, redis_server, start_worker

import fda_core
from fastapi_depends_anywhere.sync.celery import (
    RequestContextRefusedError,
    RequestContextTooLargeError,
)
from fda_sync._integrations.celery_context import _policies
from fda_sync._integrations.context_policy import ContextPolicy
from fda_sync._integrations.context_wire import encode

from .rc_service import HEADER, KEY, OLD_KEY, Service, build
from .test_eager import REQUEST_HEADERS, as_sent

# The nox sessions run a module's tests on one xdist worker (--dist=loadscope): the
# deployment starts once. With tests of other modules in between (-n 0 and --dist=load
# also work), the session fixture still starts it once per worker.
pytestmark = [pytest.mark.process, pytest.mark.workers, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
BOB = {"Authorization": "Bearer bob-token", "X-Tenant": "umbrella", "Accept-Language": "de"}


@dataclass
class Deployment:
    """The broker, and per pool: the service as the web process builds it, the worker."""

    broker: str
    runs: Path
    services: dict[str, Service]
    workers: dict[str, Any]
    logs: dict[str, Path]

    def result(self, task_id: str, pool: str = "prefork") -> Any:
        result = AsyncResult(task_id, app=self.services[pool].celery)
        try:
            return result.get(timeout=240)
        except CeleryTimeoutError:
            raise AssertionError(f"no result of task {task_id} in 240 s: {result.state}") from None

    def ran(self, task_id: str) -> bool:
        return (self.runs / task_id).exists()


@pytest.fixture(scope="session")  # not "module": other modules' tests may run in between
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("request-context")
    runs = folder / "runs"
    runs.mkdir()
    with redis_server(folder) as broker:
        services, workers, logs = {}, {}, {}
        for pool, concurrency in (("prefork", 2), ("threads", 4)):
            queue = f"fda-rc-{pool}-{uuid.uuid4().hex}"
            services[pool] = build(broker, runs, queue)
            env = {
                **os.environ,
                "FDA_RC_BROKER": broker,
                "FDA_RC_RUNS": str(runs),
                "FDA_RC_QUEUE": queue,
                "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            }
            logs[pool] = folder / f"{pool}.log"
            workers[pool] = start_worker("rc_worker", queue, logs[pool], env, pool, concurrency)
        deployment = Deployment(broker, runs, services, workers, logs)
        try:
            yield deployment
        finally:
            for worker in workers.values():
                _stop(worker, signal.SIGQUIT)
            for service in services.values():
                service.celery.close()


@pytest.fixture
def prefork(deployment: Deployment) -> Iterator[TestClient]:
    with TestClient(deployment.services["prefork"].api) as client:
        yield client


def test_the_workers_security_sees_the_user_of_the_request(
    deployment: Deployment, prefork: TestClient
) -> None:
    answers = [
        prefork.post("/notes/7?q=one", headers=REQUEST_HEADERS).json(),
        prefork.post("/notes/8?q=two", headers=BOB).json(),
    ]
    results = [deployment.result(answer["task"]) for answer in answers]
    assert [answer["route"]["user"]["name"] for answer in answers] == ["ann", "bob"]
    for answer, result in zip(answers, results, strict=True):
        assert result["seen"] == as_sent(answer["route"])
        assert result["pid"] != deployment.workers["prefork"].pid  # a child of the pool


def test_behind_a_real_uvicorn_server(deployment: Deployment) -> None:
    service = deployment.services["prefork"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service.api, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped at start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            answer = client.post("/notes/9?page=2", headers=BOB).json()
            background = client.get("/async/s?task_id=" + uuid.uuid4().hex, headers=BOB).json()
    finally:
        server.should_exit = True
        thread.join(120)
    assert answer["route"]["client"] == "127.0.0.1"
    assert deployment.result(answer["task"])["seen"] == as_sent(answer["route"])
    assert deployment.result(background["task"])["seen"] == as_sent(background["route"])


def test_canvas_and_retries_two_users_at_once(deployment: Deployment, prefork: TestClient) -> None:
    with ThreadPoolExecutor(2) as pool:
        ann, bob = pool.map(
            lambda headers: prefork.post("/canvas", headers=headers).json(),
            [REQUEST_HEADERS, BOB],
        )
    for answer in (ann, bob):
        expected = as_sent(answer["route"])
        chained = deployment.result(answer["chain"])
        assert chained["seen"] == chained["previous"]["seen"] == expected
        assert chained["previous"]["previous"]["seen"] == expected
        assert [deployment.result(task)["seen"] for task in answer["group"]] == [expected] * 2
        chord = deployment.result(answer["chord"])
        assert [chord["seen"], *(part["seen"] for part in chord["previous"])] == [expected] * 3
        assert deployment.result(answer["retrying"]) == {"seen": expected, "retries": 2}
    assert (ann["route"]["user"]["name"], bob["route"]["user"]["name"]) == ("ann", "bob")


def test_a_threads_worker_keeps_each_tasks_context_apart(deployment: Deployment) -> None:
    service = deployment.services["threads"]
    with TestClient(service.api) as client, ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda n: client.post(f"/notes/{n}", headers=[REQUEST_HEADERS, BOB][n % 2]).json(),
                range(16),
            )
        )
    for answer in answers:
        assert deployment.result(answer["task"], "threads")["seen"] == as_sent(answer["route"])


async def test_async_code_holding_a_scope_sends_it(deployment: Deployment) -> None:
    seen = deployment.services["prefork"].tasks["seen"]

    @fda_core.with_fastapi_depends(app=deployment.services["prefork"].api)
    async def send() -> str:
        return str(seen.delay().id)  # a publish, on the event loop

    task_id = await send(_scope={"headers": {"authorization": "Bearer ann-token"}})
    result = await asyncio.to_thread(deployment.result, task_id)
    assert result["seen"]["user"] == {"name": "ann", "scopes": ["notes"]}
    assert result["seen"]["headers"] == [["authorization", "Bearer ann-token"]]


def _send_raw(deployment: Deployment, value: Any) -> Any:
    """Send ``rc.seen`` by name (as a client without RequestContextTask sends it) with
    ``value`` as the message's context; the task's result."""
    celery = deployment.services["prefork"].celery
    return celery.send_task("rc.seen", headers={HEADER: value})


def _refusal(deployment: Deployment, value: Any) -> Exception:
    """The failure of ``rc.seen`` sent with ``value``; its body never ran."""
    result = _send_raw(deployment, value)
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is checked by the caller
        result.get(timeout=240)
    assert not deployment.ran(result.id)
    return info.value


def test_forged_altered_unsigned_and_unknown_key_contexts_are_refused(
    deployment: Deployment, prefork: TestClient
) -> None:
    service = deployment.services["prefork"]

    @service.api.get("/carried")
    def carried() -> Any:
        return service.tasks["carried"].delay().get(timeout=240)

    genuine = prefork.get("/carried", headers=REQUEST_HEADERS).json()
    assert genuine["sig"]  # as the worker received it: signed
    cases = {
        "altered": {**genuine, "data": genuine["data"].replace("ann-token", "bob-token")},
        "forged": {**genuine, "sig": "f" * 64},
        "unsigned": {"v": 1, "data": genuine["data"]},
        "unknown key": encode(_signing_with("another-key-the-worker-never-had"), _ann(), "x"),
    }
    reasons = {
        "altered": "does not match its signature: it was altered",
        "forged": "does not match its signature",
        "unsigned": "is not signed, and this worker accepts only signed contexts",
        "unknown key": "signed with a key this worker does not have",
    }
    for case, value in cases.items():
        error = _refusal(deployment, value)
        assert isinstance(error, RequestContextRefusedError), (case, error)
        assert "was not run: the request context it carries" in str(error)
        assert reasons[case] in str(error), case


def test_a_context_signed_with_the_previous_key_is_accepted(deployment: Deployment) -> None:
    result = _send_raw(deployment, encode(_signing_with(OLD_KEY), _ann(), "rc.seen"))
    assert result.get(timeout=240)["seen"]["user"]["name"] == "ann"
    assert deployment.ran(result.id)


def test_over_the_bound_the_send_fails_and_nothing_is_queued(
    deployment: Deployment, prefork: TestClient
) -> None:
    published: list[str] = []

    def on_publish(sender: Any = None, **_: Any) -> None:
        published.append(str(sender))

    signals.after_task_publish.connect(on_publish, weak=False)
    try:
        with pytest.raises(RequestContextTooLargeError, match="over the bound of 4096"):
            prefork.post("/notes/7", headers={**REQUEST_HEADERS, "X-Trace-Blob": "b" * 5000})
        answer = prefork.post("/notes/7", headers=REQUEST_HEADERS).json()  # the control
    finally:
        signals.after_task_publish.disconnect(on_publish)
    assert published == ["rc.seen"]  # the control's message only
    assert deployment.result(answer["task"])["seen"] == as_sent(answer["route"])


header_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:/,;= ", max_size=10)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tenant=header_value.map(str.strip),
    trace=header_value.map(str.strip),
    query=st.lists(st.tuples(st.sampled_from(["q", "page"]), header_value), max_size=4),
)
def test_generated_requests_through_the_worker(
    deployment: Deployment, prefork: TestClient, tenant: str, trace: str, query: list[Any]
) -> None:
    headers = {"Authorization": "Bearer bob-token", "X-Tenant": tenant, "X-Trace-Id": trace}
    answer = prefork.post("/notes/1", params=query, headers=headers).json()
    assert deployment.result(answer["task"])["seen"] == as_sent(answer["route"])


def _signing_with(key: str) -> ContextPolicy:
    """The policy of the test's service, signing with ``key``."""
    for celery, policy in _policies.items():
        if celery.main == "rc_service":
            return ContextPolicy(
                policy.headers, policy.prefixes, policy.items, (key.encode(),), None, 4096
            )
    raise AssertionError("no rc_service policy")


def _ann() -> Any:
    from fda_core._graph.ambient import RequestSource

    return RequestSource({"headers": {"authorization": "Bearer ann-token"}})


assert KEY != OLD_KEY
