"""fda-sync's fixtures in a real pytest session: the sync stack and the process lifespan of
the app the ``fda_app`` ini option names, with no async plugin at all."""

from __future__ import annotations

import pytest

from plugin.inner import Inner, output

SUITE = """
from typing import Annotated

import pytest
from fastapi import Depends

from fda_core import get_app
from fda_sync import with_fastapi_depends
from myapp import DbDep, GreetingDep, UserDep, app, get_user, log


async def get_conn():
    log("conn open")
    yield "conn"
    log("conn close")  # after a bare yield: only a normal close runs it


@with_fastapi_depends(app=app)
def greet(*, greeting: GreetingDep, user: UserDep) -> str:
    return f"{greeting} {user}"


def test_the_ini_option_does_not_configure_the_app():
    assert get_app() is None


def test_the_sync_stack(fda_sync_stack):
    assert fda_sync_stack.resolve(GreetingDep) == "hello"
    assert fda_sync_stack.resolve(DbDep) == "real db"
    assert fda_sync_stack.resolve(DbDep) == "real db"  # one cache: opened once
    assert fda_sync_stack.resolve(Annotated[str, Depends(get_conn)]) == "conn"


def test_the_sync_stack_sees_the_tests_fakes(fda_sync_stack, fda_override):
    fda_override[get_user] = lambda: "bob"
    assert fda_sync_stack.resolve(UserDep) == "bob"


def test_the_process_lifespan_serves_every_sync_call(fda_process_lifespan, fda_app):
    assert fda_process_lifespan is fda_app
    assert greet() == "hello ann"  # request.state: the lifespan's state


@pytest.mark.fda_override({get_user: lambda: "cid"})
def test_a_marker_and_the_process_lifespan(fda_process_lifespan):
    assert greet() == "hello cid"


def test_the_async_stack_needs_an_async_plugin(fda_stack):
    pass
"""

INI = """
fda_app = myapp:app
"""

#: Without configure(): the ini option names the app.
CONFTEST = ""


@pytest.mark.programs
def test_the_sync_fixtures_with_no_async_plugin(inner: Inner) -> None:
    inner.files(ini=INI, conftest=CONFTEST, test_sync_suite=SUITE)
    result = inner.run("-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(passed=5, errors=1)
    text = output(result)
    assert "no plugin runs one for this test. Install pytest-asyncio" in text
    # One lifespan, shared by the stack and the process lifespan (one loop: the bridge's),
    # shut down after the stack's dependencies, after the last test. The process lifespan's
    # fixture, set up after the stack's, ends first: the stack still closes normally.
    assert inner.events() == [
        "startup",
        "db open",
        "conn open",
        "conn close",
        "db close",
        "shutdown",
    ]
