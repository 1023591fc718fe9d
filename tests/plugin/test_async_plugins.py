"""``fda_override``, its marker and ``fda_stack`` in real pytest sessions, under each async
plugin a project may run its tests with: pytest-asyncio in auto and strict mode, and
anyio's plugin (next to pytest-asyncio in strict mode, and alone)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from plugin.inner import CONFTEST, SESSION_ANYIO_BACKEND, Inner, output


@dataclass
class Mode:
    ini: str
    args: tuple[str, ...]
    test_mark: str  # what marks an async test, in this mode
    fixture: str  # what declares an async fixture, in this mode


SESSION_LOOP = '@pytest.mark.asyncio(loop_scope="session")'
MODES = {
    "asyncio-auto": Mode(
        "asyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n",
        (),
        "",
        "@pytest.fixture",
    ),
    "asyncio-strict": Mode(
        "asyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n",
        (),
        "@pytest.mark.asyncio",
        "@pytest_asyncio.fixture",
    ),
    "anyio-next-to-asyncio-strict": Mode(
        "asyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n",
        (),
        "@pytest.mark.anyio",
        "@pytest.fixture",
    ),
    "anyio-alone": Mode("", ("-p", "no:asyncio"), "@pytest.mark.anyio", "@pytest.fixture"),
}

#: The inner suite. ``{mark}`` marks async tests, ``{stack_mark}`` those using the
#: session's stack, ``{fixture}`` declares async fixtures.
SUITE = """
import threading

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient

from fda_core import override, with_fastapi_depends
from fda_sync import with_fastapi_depends as sync_depends
from myapp import DbDep, GreetingDep, UserDep, app, get_db, get_user, log


@with_fastapi_depends
async def who(*, user: UserDep) -> str:
    return user


@with_fastapi_depends
async def which_db(*, db: DbDep) -> str:
    return db


@pytest.fixture
def as_bob(fda_override):
    fda_override[get_user] = lambda: "bob"


async def memory_db():
    log("fake open")
    try:
        yield "memory db"
    finally:
        log("fake close")


{fixture}
async def fake_db(fda_override):
    fda_override[get_db] = memory_db


{mark}
async def test_a_sync_fixtures_fakes_apply_from_the_first_line(as_bob):
    assert await who() == "bob"


{mark}
async def test_an_async_fixtures_fake_with_teardown(fake_db, fda_override):
    assert await which_db() == "memory db"
    assert await which_db() == "memory db"
    assert fda_override[get_db] is memory_db


{mark}
async def test_the_next_test_sees_the_real_dependencies():
    assert await who() == "ann"
    assert await which_db() == "real db"


{mark}
async def test_fakes_added_by_the_test_apply_from_then_on(fda_override):
    assert await who() == "ann"
    fda_override[get_user] = lambda: "cid"
    assert await who() == "cid"
    with override({{get_user: lambda: "dan"}}):  # a block in the test wins
        assert await who() == "dan"
    assert await who() == "cid"


{mark}
@pytest.mark.fda_override({{get_user: lambda: "eve"}})
async def test_a_marker_alone():
    assert await who() == "eve"


@pytest.mark.fda_override({{get_db: memory_db, get_user: lambda: "ann's fake"}})
class TestMarked:
    {mark}
    @pytest.mark.fda_override({{get_user: lambda: "fay"}})  # the closest marker wins
    async def test_markers_and_the_fixture_together(self, fda_override):
        assert dict(fda_override) == {{get_db: memory_db, get_user: fda_override[get_user]}}
        assert (await who(), await which_db()) == ("fay", "memory db")
        fda_override[get_user] = lambda: "gus"
        assert await who() == "gus"


@pytest.mark.xfail(raises=ZeroDivisionError, strict=True)
{mark}
async def test_a_failing_test(fda_override):
    fda_override[get_user] = lambda: "hal"
    assert await who() == "hal"
    1 / 0


{mark}
async def test_after_a_failing_test():
    assert await who() == "ann"


{mark}
async def test_a_thread_of_the_test_cannot_add(fda_override):
    errors = []

    def add():
        try:
            fda_override[get_user] = lambda: "ivy"
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=add)
    thread.start()
    thread.join()
    assert "not by a thread or task it started" in errors[0]
    assert await who() == "ann"


def test_a_sync_test_and_the_sync_api(fda_override):
    fda_override[get_user] = lambda: "jo"

    @sync_depends
    def who_sync(*, user: UserDep) -> str:
        return user

    assert who_sync() == "jo"


def test_a_route_sees_the_same_fake_through_the_apps_dict():
    fake = lambda: "kim"  # noqa: E731
    app.dependency_overrides[get_user] = fake
    try:
        with TestClient(app) as client:
            route = client.get("/who").json()
    finally:
        app.dependency_overrides.clear()
    with override({{get_user: fake}}):

        @sync_depends
        def same(*, user: UserDep, db: DbDep) -> str:
            return f"{{user}} on {{db}}"

        assert same() == route == "kim on real db"


{stack_mark}
async def test_the_stack(fda_stack):
    assert await fda_stack.resolve(GreetingDep) == "hello"
    assert await fda_stack.resolve(DbDep) == "real db"  # open until the session ends


{stack_mark}
async def test_the_stack_sees_the_tests_fakes(fda_stack, fda_override):
    fda_override[get_user] = lambda: "lee"
    assert await fda_stack.resolve(UserDep) == "lee"
    assert await fda_stack.resolve(GreetingDep) == "hello"
"""


@pytest.mark.programs
@pytest.mark.parametrize("mode", list(MODES))
def test_the_fixtures_under_each_async_plugin(inner: Inner, mode: str) -> None:
    chosen = MODES[mode]
    stack_mark = SESSION_LOOP if mode.startswith("asyncio") else chosen.test_mark
    inner.files(
        ini=chosen.ini,
        conftest=CONFTEST + SESSION_ANYIO_BACKEND,
        test_suite=SUITE.format(
            mark=chosen.test_mark, stack_mark=stack_mark, fixture=chosen.fixture
        ),
    )
    result = inner.run(*chosen.args)
    result.assert_outcomes(passed=12, xfailed=1)
    assert "not natively supported" not in output(result)
    events = inner.events()
    # The stack's lifespan and dependencies stay open until the last test is over.
    assert events[-2:] == ["db close", "shutdown"]
    assert events.count("startup") == events.count("shutdown") == 2  # the stack, a TestClient
    # Every yield dependency opened, fake or real, was closed once.
    assert events.count("fake open") == events.count("fake close") == 3
    assert events.count("db open") == events.count("db close") == 4
