"""The plugin's fixtures, used by this suite itself (pytest-asyncio, auto mode): the cheap
twin of the inner sessions of ``test_async_plugins.py``."""

from __future__ import annotations

import asyncio
import threading
import unittest
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI

from fda_core import FastApiDepsStack, configure, override, with_fastapi_depends
from fda_core.pytest_plugin import Overrides
from fda_sync import with_fastapi_depends as sync_depends
from plugin import app as plugin_app
from plugin.app import EVENTS, DbDep, GreetingDep, UserDep, get_db, get_user


@with_fastapi_depends
async def who(*, user: UserDep) -> str:
    return user


@with_fastapi_depends
async def which_db(*, db: DbDep) -> str:
    return db


async def memory_db() -> AsyncIterator[str]:
    EVENTS.append("fake open")
    try:
        yield "memory db"
    finally:
        EVENTS.append("fake close")


@pytest.fixture(autouse=True)
def configured(fda_app: FastAPI) -> None:
    configure(app=fda_app)


@pytest.fixture
def as_bob(fda_override: Overrides) -> None:
    fda_override[get_user] = lambda: "bob"


@pytest_asyncio.fixture
async def fake_db(fda_override: Overrides) -> None:
    fda_override.update({get_db: memory_db})


async def test_a_fixtures_fakes_apply_from_the_first_line(as_bob: None, fake_db: None) -> None:
    EVENTS.clear()
    assert (await who(), await which_db()) == ("bob", "memory db")
    assert EVENTS == ["fake open", "fake close"]


async def test_the_next_test_sees_none_of_them(fda_override: Overrides) -> None:
    assert dict(fda_override) == {}
    assert (await who(), await which_db()) == ("ann", "real db")


async def test_fakes_added_in_the_test_apply_from_then_on(fda_override: Overrides) -> None:
    assert await who() == "ann"
    fda_override[get_user] = lambda: "cid"
    assert await who() == "cid"
    with override({get_user: lambda: "dan"}):
        assert await who() == "dan"
    assert await who() == "cid"
    fda_override[get_user] = lambda: "eve"  # replaced
    assert await who() == "eve"


def test_a_sync_test_and_the_sync_api(fda_override: Overrides) -> None:
    fda_override[get_user] = lambda: "fay"

    @sync_depends
    def who_sync(*, user: UserDep) -> str:
        return user

    assert who_sync() == "fay"


async def test_a_task_the_test_starts_sees_the_fakes_but_cannot_add(
    fda_override: Overrides,
) -> None:
    fda_override[get_user] = lambda: "gus"

    async def in_a_task() -> str:
        with pytest.raises(RuntimeError, match="not by a thread or task it started"):
            fda_override[get_user] = lambda: "never"
        return await who()

    assert await asyncio.create_task(in_a_task()) == "gus"
    assert await who() == "gus"


async def test_a_thread_the_test_starts_cannot_add(fda_override: Overrides) -> None:
    errors: list[Exception] = []

    def add() -> None:
        try:
            fda_override[get_user] = lambda: "never"
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=add)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert await who() == "ann"
    assert get_user not in fda_override


@pytest.mark.fda_override({get_user: lambda: "hal"})
async def test_a_marker_alone() -> None:
    assert await who() == "hal"


@pytest.mark.fda_override({get_db: memory_db, get_user: lambda: "class"})
class TestMarkers:
    @pytest.mark.fda_override({get_user: lambda: "ivy"})
    async def test_the_closest_marker_wins(self, fda_override: Overrides) -> None:
        assert set(fda_override) == {get_db, get_user}
        assert (await who(), await which_db()) == ("ivy", "memory db")

    def test_a_sync_test_in_a_marked_class(self) -> None:
        @sync_depends
        def who_sync(*, user: UserDep) -> str:
            return user

        assert who_sync() == "class"


def test_a_test_without_the_fixture_or_a_marker_is_not_wrapped(request: Any) -> None:
    assert request.node.obj is test_a_test_without_the_fixture_or_a_marker_is_not_wrapped


def test_a_test_with_the_fixture_runs_wrapped(request: Any, fda_override: Overrides) -> None:
    function = test_a_test_with_the_fixture_runs_wrapped
    assert request.node.obj is not function
    assert request.node.obj.__wrapped__ is function


#: The stacks the tests below got: one for the session.
STACKS: list[FastApiDepsStack] = []


def get_token() -> str:
    return "real token"


TokenDep = Annotated[str, Depends(get_token)]


# One worker runs the two in order (the nox sessions' --dist=loadscope), the second seeing
# the first's stack; run alone, the second checks what it can.
@pytest.mark.asyncio(loop_scope="session")
async def test_the_session_stack(fda_stack: FastApiDepsStack, fda_override: Overrides) -> None:
    STACKS.append(fda_stack)
    assert await fda_stack.resolve(GreetingDep) == "hello"  # the lifespan runs
    assert await fda_stack.resolve(DbDep) == "real db"
    # What the stack has not resolved yet, it resolves with the test's fakes...
    fda_override[get_token] = lambda: "fake token"
    assert await fda_stack.resolve(TokenDep) == "fake token"
    # ...and what it resolved, it keeps: one dependency cache, as one request has.
    fda_override[get_db] = memory_db
    assert await fda_stack.resolve(DbDep) == "real db"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_session_stack_is_the_same_one(fda_stack: FastApiDepsStack) -> None:
    assert STACKS in ([], [fda_stack])  # empty when run alone
    assert await fda_stack.resolve(DbDep) == "real db"
    if STACKS:  # for the session, what it resolved under the first test's fakes
        assert await fda_stack.resolve(TokenDep) == "fake token"


@pytest.mark.fda_override({get_user: lambda: "unit"})
class TestUnittestCases(unittest.IsolatedAsyncioTestCase):
    """unittest runs these on its own loop: the marker's fakes reach them too."""

    def setUp(self) -> None:
        configure(app=plugin_app.app)

    async def test_an_async_test_method(self) -> None:
        assert await who() == "unit"

    def test_a_sync_test_method(self) -> None:
        @sync_depends
        def who_sync(*, user: UserDep) -> str:
            return user

        assert who_sync() == "unit"
