"""The queue hooks in this process, without a broker server: what they install, what they
refuse, and an in-process worker of each (Dramatiq's ``StubBroker``, taskiq's
``InMemoryBroker``) running tasks in one lifespan. The real workers are in
``test_dramatiq.py``, ``test_rq.py`` and ``test_taskiq.py``."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from queue_imports import REASON

from fda_core import configure
from fda_sync._api.process_lifespan import _process, stop_if_running


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def app(log: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        log.append("startup")
        yield {"greeting": "hello"}
        log.append("shutdown")

    return FastAPI(lifespan=lifespan)


@pytest.fixture(autouse=True)
def _no_process_lifespan_left() -> Iterator[None]:
    yield
    stop_if_running()
    assert _process.app is None


def greeting(request: Request) -> str:
    return str(request.state.greeting)


# --- Dramatiq -------------------------------------------------------------------------


def test_dramatiq_actors_share_one_lifespan_in_an_in_process_worker(
    app: FastAPI, log: list[str]
) -> None:
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from fda_sync import with_fastapi_depends
    from fda_sync.dramatiq import lifespan_per_worker_process

    broker = StubBroker()
    lifespan_per_worker_process(broker, app=app)
    lifespan_per_worker_process(broker, app=app)  # again: nothing more
    assert [type(m).__name__ for m in broker.middleware].count("_ProcessLifespan") == 1
    seen: list[str] = []

    def opened() -> Iterator[None]:
        log.append("open")
        yield
        log.append("close")

    @with_fastapi_depends(app=app)
    def handle(
        n: int, *, said: Annotated[str, Depends(greeting)], _: Annotated[None, Depends(opened)]
    ) -> None:
        seen.append(f"{said} {n}")

    @dramatiq.actor(broker=broker, max_retries=0)
    def work(n: int) -> None:
        handle(n)

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    assert _process.app is app
    assert log == []
    try:
        for n in range(6):
            work.send(n)
        broker.join(work.queue_name, fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert sorted(seen) == [f"hello {n}" for n in range(6)]
    assert log[0] == "startup"
    assert log[-1] == "shutdown"
    assert log.count("startup") == 1
    assert log.count("open") == log.count("close") == 6
    assert _process.app is None


def test_dramatiq_hook_wants_a_broker_and_a_fastapi_app(app: FastAPI) -> None:
    from dramatiq.brokers.stub import StubBroker

    from fda_sync.dramatiq import lifespan_per_worker_process

    with pytest.raises(TypeError, match=r"expects the Dramatiq broker, got .*FastAPI.* `app=`"):
        lifespan_per_worker_process(app)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        lifespan_per_worker_process(StubBroker(), app=APIRouter())  # type: ignore[arg-type]
    broker = StubBroker()
    lifespan_per_worker_process(broker, app=app)
    with pytest.raises(RuntimeError, match=r"called already for this broker.*one app's lifespan"):
        lifespan_per_worker_process(broker, app=FastAPI(title="other"))


# --- RQ -------------------------------------------------------------------------------


def test_rq_workers_check_their_fastapi_app_before_any_job() -> None:
    from fda_sync.rq import LifespanPerJobWorker, LifespanWorker

    with pytest.raises(TypeError, match=r"Misconfigured\.fastapi_app expects the FastAPI app"):

        class Misconfigured(LifespanWorker):
            fastapi_app = APIRouter()  # type: ignore[assignment]

    # No app configured: the worker fails as it starts working, before it takes a job.
    worker = object.__new__(LifespanPerJobWorker)  # RQ's __init__ would connect to Redis
    with pytest.raises(RuntimeError, match="No FastAPI app configured"):
        worker.work(burst=True)
    assert _process.app is None


# --- taskiq ---------------------------------------------------------------------------


async def test_taskiq_tasks_resolve_in_the_lifespan_the_worker_startup_started(
    app: FastAPI, log: list[str]
) -> None:
    pytest.importorskip("taskiq", reason=REASON, exc_type=ImportError)
    from taskiq import InMemoryBroker

    from fda_core import with_fastapi_depends
    from fda_core.taskiq import lifespan_per_worker_process

    configure(app=app)
    broker = InMemoryBroker()  # runs the worker's startup and shutdown events too...
    broker.is_worker_process = True  # ...and is a worker's broker here
    lifespan_per_worker_process(broker)
    lifespan_per_worker_process(broker)  # again: nothing more

    async def opened() -> AsyncIterator[None]:
        log.append("open")
        yield
        log.append("close")

    @broker.task
    @with_fastapi_depends
    async def work(
        n: int, *, said: Annotated[str, Depends(greeting)], _: Annotated[None, Depends(opened)]
    ) -> str:
        return f"{said} {n}"

    await broker.startup()
    assert log == ["startup"]
    try:
        sent = [await work.kiq(n) for n in range(3)]
        results = [await task.wait_result(timeout=60) for task in sent]
    finally:
        await broker.shutdown()
    assert [result.return_value for result in results] == ["hello 0", "hello 1", "hello 2"]
    assert log == ["startup", *["open", "close"] * 3, "shutdown"]


def test_taskiq_hook_wants_a_broker_and_a_fastapi_app(app: FastAPI) -> None:
    pytest.importorskip("taskiq", reason=REASON, exc_type=ImportError)
    from taskiq import InMemoryBroker

    from fda_core.taskiq import lifespan_per_worker_process

    with pytest.raises(TypeError, match=r"expects the taskiq broker, got .*FastAPI.* `app=`"):
        lifespan_per_worker_process(app)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        lifespan_per_worker_process(InMemoryBroker(), app=APIRouter())  # type: ignore[arg-type]
    broker = InMemoryBroker()
    lifespan_per_worker_process(broker)
    with pytest.raises(RuntimeError, match=r"app=None \(the configured app\); now with app=Fast"):
        lifespan_per_worker_process(broker, app=app)


def test_taskiq_hook_leaves_an_in_memory_broker_of_the_apps_own_process_alone(
    log: list[str],
) -> None:
    """taskiq's advice for tests: an InMemoryBroker, started by the app's lifespan. It runs
    the worker's startup event in the app's process, inside that lifespan: the hook must
    not start the lifespan again there (which would start the broker again, and wait for
    itself)."""
    pytest.importorskip("taskiq", reason=REASON, exc_type=ImportError)
    from fastapi.testclient import TestClient
    from taskiq import InMemoryBroker

    from fda_core.taskiq import lifespan_per_worker_process

    broker = InMemoryBroker()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        log.append("startup")
        await broker.startup()
        yield {"greeting": "hello"}
        await broker.shutdown()
        log.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    lifespan_per_worker_process(broker, app=app)

    @broker.task
    async def ping() -> str:
        return "pong"

    @app.get("/ping")
    async def send() -> str:
        result = await (await ping.kiq()).wait_result(timeout=60)
        return str(result.return_value)

    with TestClient(app) as client:
        assert client.get("/ping").json() == "pong"
    assert log == ["startup", "shutdown"]  # the server's lifespan, once
