"""The process lifespan: started once (now or at the first sync call), shared by every
sync call, stack and lifecycle of the process, stopped once; its bad inputs."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

import fda_core
from fda_sync import (
    BridgeError,
    FastApiDepsStack,
    iter_with_fastapi_depends,
    override,
    resolve_fastapi_depends,
    start_process_lifespan,
    stop_process_lifespan,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)
from fda_sync._api.process_lifespan import _process

from .conftest import Recorder

pytestmark = pytest.mark.chosen_path


def state_pool(request: Request) -> str:
    return str(request.state.pool)


async def state_pool_async(request: Request) -> str:
    return str(request.state.pool)


Pool = Annotated[str, Depends(state_pool)]
AsyncPool = Annotated[str, Depends(state_pool_async)]


@pytest.fixture(autouse=True)
def no_process_lifespan_left() -> Iterator[None]:
    yield
    if _process.app is not None:
        stop_process_lifespan()


@pytest.fixture
def configured(app: FastAPI) -> Iterator[FastAPI]:
    fda_core.configure(app=app)
    yield app
    fda_core.reset_config()


def test_one_startup_shared_by_every_kind_of_sync_call(
    configured: FastAPI, recorder: Recorder
) -> None:
    @with_fastapi_depends
    def def_graph(*, pool: Pool) -> str:
        return pool

    @with_fastapi_depends
    async def async_graph(*, pool: AsyncPool) -> str:
        return pool

    @with_fastapi_lifecycle
    @with_fastapi_depends
    def in_lifecycle(*, pool: AsyncPool) -> str:
        return pool

    @iter_with_fastapi_depends
    def pools(*, pool: AsyncPool) -> Iterator[str]:
        yield pool

    start_process_lifespan()
    assert recorder.events == ["startup"]
    assert def_graph() == async_graph() == in_lifecycle() == "the-pool"
    assert list(pools()) == ["the-pool"]
    with FastApiDepsStack() as stack:
        assert stack.resolve(Pool) == "the-pool"

    def uses(pool: AsyncPool) -> None: ...

    with resolve_fastapi_depends(uses) as values:
        assert values == {"pool": "the-pool"}
    assert recorder.events == ["startup"]  # the lifecycle and the stack shared it

    stop_process_lifespan()
    assert recorder.events == ["startup", "shutdown"]
    assert in_lifecycle() == "the-pool"  # on its own again: startup and shutdown
    assert recorder.events == ["startup", "shutdown", "startup", "shutdown"]
    with pytest.raises(AttributeError):
        def_graph()  # no lifespan runs: request.state has no pool


def test_a_lazy_one_starts_once_for_many_threads_calling_at_once(
    configured: FastAPI, recorder: Recorder
) -> None:
    @with_fastapi_depends
    def def_graph(*, pool: Pool) -> str:
        return pool

    start_process_lifespan(lazy=True)
    assert recorder.events == []
    barrier = threading.Barrier(16, timeout=120)
    results: list[str] = []

    def call() -> None:
        barrier.wait()
        results.append(def_graph())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert results == ["the-pool"] * 16
    assert recorder.events == ["startup"]
    stop_process_lifespan()
    assert recorder.events == ["startup", "shutdown"]


def test_stop_tears_a_stack_still_open_down_before_the_lifespan(
    configured: FastAPI, recorder: Recorder
) -> None:
    """A stack still open when the process lifespan stops is torn down (not waited
    for), while the lifespan's resources are still open; then the lifespan shuts down."""

    async def connection(request: Request) -> AsyncIterator[str]:
        recorder.add(f"open on {request.state.pool}")
        try:
            yield request.state.pool
        except BaseException as exc:
            recorder.add(f"saw {type(exc).__name__}")
            raise
        finally:
            recorder.add("close")

    start_process_lifespan()
    stack = FastApiDepsStack().start()
    assert stack.resolve(connection) == "the-pool"
    stop_process_lifespan()
    assert recorder.events == [
        "startup",
        "open on the-pool",
        "saw CancelledError",
        "close",
        "shutdown",
    ]
    with pytest.raises(RuntimeError, match=r"closed \(or closing\)"):
        stack.resolve(Pool)
    stack.close()  # closed already: nothing more
    assert recorder.events[-1] == "shutdown"


def test_a_lazy_one_stopped_before_any_call_never_starts(
    configured: FastAPI, recorder: Recorder
) -> None:
    @with_fastapi_depends
    def def_graph(*, pool: Pool) -> str:
        return pool

    start_process_lifespan(lazy=True)
    stop_process_lifespan()
    with pytest.raises(AttributeError):
        def_graph()
    assert recorder.events == []


def test_starting_twice_is_refused(configured: FastAPI, recorder: Recorder) -> None:
    start_process_lifespan(lazy=True)
    with pytest.raises(RuntimeError, match=r"started already .* stop_process_lifespan\(\)"):
        start_process_lifespan()
    with pytest.raises(RuntimeError, match="started already"):
        start_process_lifespan(lazy=True)
    assert recorder.events == []
    stop_process_lifespan()
    start_process_lifespan()  # after a stop, again
    assert recorder.events == ["startup"]


def test_stopping_what_was_not_started_is_refused(configured: FastAPI) -> None:
    with pytest.raises(RuntimeError, match=r"No process lifespan .* start_process_lifespan\(\)"):
        stop_process_lifespan()
    start_process_lifespan()
    stop_process_lifespan()
    with pytest.raises(RuntimeError, match="stopped already"):
        stop_process_lifespan()


def test_no_app_configured_says_how_to_configure_one() -> None:
    fda_core.reset_config()
    with pytest.raises(RuntimeError, match=r"configure\(app=app\)"):
        start_process_lifespan()
    with pytest.raises(RuntimeError, match=r"configure\(app=app\)"):
        start_process_lifespan(lazy=True)
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        start_process_lifespan(APIRouter())  # type: ignore[arg-type]
    assert _process.app is None


class Flaky:
    """A lifespan whose startup fails until told otherwise, after everyone waits on it."""

    def __init__(self) -> None:
        self.attempts = 0
        self.fail = True
        self.entered = threading.Event()
        self.release = threading.Event()
        self.app = FastAPI(lifespan=self.lifespan)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        self.attempts += 1
        self.entered.set()
        while not self.release.is_set():  # noqa: ASYNC110 - set from another thread
            await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("the database is down")
        yield {"pool": "the-pool"}


def test_a_failing_startup_reaches_every_waiting_call_and_the_next_call_retries() -> None:
    flaky = Flaky()

    @with_fastapi_depends(app=flaky.app)
    def def_graph(*, pool: Pool) -> str:
        return pool

    start_process_lifespan(flaky.app, lazy=True)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            def_graph()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    threads[0].start()
    assert flaky.entered.wait(120)
    for thread in threads[1:]:
        thread.start()
    flaky.release.set()
    for thread in threads:
        thread.join(240)
    assert len(errors) == 8
    assert all(isinstance(e, ConnectionError) and str(e) == "the database is down" for e in errors)
    assert flaky.attempts == 1  # the waiting calls got the error of the one startup

    flaky.fail = False
    assert def_graph() == "the-pool"  # the next call tries again
    assert flaky.attempts == 2


def test_an_explicit_start_that_fails_raises_and_may_be_called_again() -> None:
    flaky = Flaky()
    flaky.release.set()
    with pytest.raises(ConnectionError, match="the database is down"):
        start_process_lifespan(flaky.app)
    assert _process.app is None
    flaky.fail = False
    start_process_lifespan(flaky.app)
    assert flaky.attempts == 2


def test_from_a_running_event_loop_it_is_refused_before_anything_starts(
    configured: FastAPI, recorder: Recorder
) -> None:
    @with_fastapi_depends
    def def_graph(*, pool: Pool) -> str:
        return pool

    async def in_a_coroutine() -> None:
        with pytest.raises(BridgeError, match=r"asyncio\.to_thread"):
            start_process_lifespan()
        start_process_lifespan(lazy=True)  # nothing runs yet: allowed
        with pytest.raises(BridgeError, match=r"asyncio\.to_thread"):
            def_graph()

    asyncio.run(in_a_coroutine())
    assert recorder.events == []
    assert def_graph() == "the-pool"  # from a plain thread, the first call starts it
    assert recorder.events == ["startup"]


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "eager"])
def test_started_inside_an_override_block_it_never_sees_the_blocks_fakes(lazy: bool) -> None:
    def get_db() -> str:
        return "real"

    Db = Annotated[str, Depends(get_db)]
    seen: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        seen.append(await which_db())  # startup, and a task it starts, resolve too
        task = asyncio.create_task(which_db())
        yield
        seen.append(await task)
        seen.append(await which_db())

    app = FastAPI(lifespan=lifespan)

    @fda_core.with_fastapi_depends(app=app)
    async def which_db(db: Db) -> str:
        return db

    @with_fastapi_depends(app=app)
    def handler(db: Db) -> str:
        return db

    if lazy:
        start_process_lifespan(app, lazy=True)
    with override({get_db: lambda: "fake"}):
        if not lazy:
            start_process_lifespan(app)
        assert handler() == "fake"  # the block's own call: its fakes
    assert handler() == "real"
    stop_process_lifespan()
    assert seen == ["real", "real", "real"]
