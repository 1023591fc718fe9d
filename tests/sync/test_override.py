"""``override()`` with the sync API: each thread's block reaches its own calls, on both paths
(the bridge loop copies the caller's context; the caller's thread reads it itself)."""

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

import fda_sync._api.decorators
from fda_sync import (
    FastApiDepsStack,
    iter_with_fastapi_depends,
    override,
    resolve_fastapi_depends,
    with_fastapi_depends,
)

THREADS = 32
CALLS = 20


def get_name() -> str:
    return "real"


def get_session(name: Annotated[str, Depends(get_name)]) -> Iterator[str]:
    yield f"session of {name}"


def test_32_threads_each_under_its_own_override_see_only_their_fake(
    app: FastAPI, path: str
) -> None:
    @with_fastapi_depends(app=app)
    def work(*, session: Annotated[str, Depends(get_session)]) -> str:
        return session

    barrier = threading.Barrier(THREADS)
    mismatches: list[str] = []
    # One block object for all the threads: each one's entry is its own.
    shared = override({get_session: lambda: "shared"})

    def worker(index: int) -> None:
        # Half the fakes are async (their step runs on the loop), half def.
        async def async_fake() -> str:
            return f"fake{index}"

        def def_fake() -> str:
            return f"fake{index}"

        try:
            with override({get_name: async_fake if index % 2 else def_fake}):
                barrier.wait(timeout=120)  # every block open at once
                for _ in range(CALLS):
                    if (got := work()) != f"session of fake{index}":
                        mismatches.append(f"{index}: {got}")
                with shared:
                    if (got := work()) != "shared":
                        mismatches.append(f"{index} shared: {got}")
            if (got := work()) != "session of real":
                mismatches.append(f"{index} after: {got}")
        except BaseException as exc:
            mismatches.append(f"{index}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads)
    assert mismatches == []


@pytest.mark.chosen_path
def test_an_override_that_makes_the_graph_async_moves_the_call_to_the_loop(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path is chosen per call from the plan under the block's overrides."""
    driven: list[str] = []
    call_in_caller = fda_sync._api.decorators.call_in_caller

    def spy(*args: object, **kwargs: object) -> object:
        driven.append(threading.current_thread().name)
        return call_in_caller(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fda_sync._api.decorators, "call_in_caller", spy)

    @with_fastapi_depends(app=app)
    def work(*, session: Annotated[str, Depends(get_session)]) -> str:
        return session

    async def token() -> str:
        return "t"

    async def async_name(
        a: Annotated[str, Depends(token)], b: Annotated[str, Depends(token, use_cache=False)]
    ) -> AsyncIterator[str]:
        yield f"async {a}{b}"

    assert work() == "session of real"
    assert driven == ["MainThread"]  # all def: driven from this thread
    with override({get_name: async_name}):
        assert work() == "session of async tt"
    assert driven == ["MainThread"]  # mostly async now: one task on the loop
    assert work() == "session of real"
    assert driven == ["MainThread"] * 2


def test_iter_resolve_and_stack_honour_the_callers_block(app: FastAPI) -> None:
    @iter_with_fastapi_depends(app=app)
    def stream(*, session: Annotated[str, Depends(get_session)]) -> Iterator[str]:
        yield session

    def func(*, session: Annotated[str, Depends(get_session)]) -> None: ...

    with override({get_name: lambda: "fake"}):
        assert list(stream()) == ["session of fake"]
        with resolve_fastapi_depends(func, dependency_overrides_provider=app) as values:
            assert values == {"session": "session of fake"}
    assert list(stream()) == ["session of real"]

    with FastApiDepsStack(app=app) as stack:  # started outside the block
        results: list[str] = []

        def other_thread() -> None:
            with override({get_name: lambda: "thread"}):
                results.append(stack.resolve(get_session))

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(timeout=240)
        assert results == ["session of thread"]
        assert stack.resolve(Annotated[str, Depends(get_name, use_cache=False)]) == "real"


def test_the_bridge_gets_the_block_of_the_thread_that_calls(app: FastAPI) -> None:
    """An async body runs on the loop: the calls it makes see the caller's block."""

    @with_fastapi_depends(app=app)
    async def work(*, name: Annotated[str, Depends(get_name)]) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return name

    with override({get_name: lambda: "fake"}):
        assert work() == "fake"
    assert work() == "real"
