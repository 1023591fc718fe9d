"""Installed but unused, the plugin changes nothing in a project's suite but one thing: what
a test changes with ``configure()`` is undone after it, back to what conftest.py (at import)
or a wider fixture configured. ``fda_restore_config = false`` turns that off too."""

from __future__ import annotations

import re

import pytest

from plugin.inner import Inner

#: A project's suite written without the plugin: override() blocks held open by a fixture,
#: its own session stack, tests that depend on the configuration others leave behind.
SUITE = """
import pytest
from fastapi import FastAPI

from fda_core import FastApiDepsStack, configure, get_app, override, reset_config
from fda_core import with_fastapi_depends
from myapp import GreetingDep, UserDep, app, get_user


@with_fastapi_depends
async def who(*, user: UserDep) -> str:
    return user


@pytest.fixture
def as_bob():
    with override({get_user: lambda: "bob"}):
        yield


async def test_a_block_a_fixture_holds_open(as_bob):
    assert await who() == "bob"


async def test_the_next_test():
    assert await who() == "ann"


def test_the_test_function_is_the_one_defined(request):
    assert request.node.obj is test_the_test_function_is_the_one_defined


@pytest.fixture(scope="session")
async def stack():
    async with FastApiDepsStack(app=app) as stack:
        yield stack


async def test_a_session_stack_of_its_own(stack):
    assert await stack.resolve(GreetingDep) == "hello"
"""

CONFIGURATION = """
from fastapi import FastAPI

from fda_core import configure, get_app, reset_config
from myapp import app


def test_1_configures_another_app():
    configure(app=FastAPI(title="another"))


def test_2_sees_the_app_conftest_configured():
    assert get_app() is app


def test_3_resets_the_configuration():
    reset_config()


def test_4_sees_the_app_conftest_configured():
    assert get_app() is app
"""

MODULE_FIXTURE = """
import pytest
from fastapi import FastAPI

from fda_core import configure, get_app
from myapp import app

third = FastAPI(title="third")


@pytest.fixture(scope="module", autouse=True)
def configured_for_the_module():
    configure(app=third)
    yield
    configure(app=app)


def test_5_sees_the_modules_app():
    assert get_app() is third


def test_6_configures_another_app():
    configure(app=FastAPI(title="fourth"))


def test_7_sees_the_modules_app_again():
    assert get_app() is third
"""

INI = """
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""

#: Without the restore, tests 2 and 4 see what tests 1 and 3 left, and 7 what 6 left.
NOT_RESTORED = {"passed": 8, "failed": 3}


@pytest.mark.programs
@pytest.mark.parametrize(
    ("args", "outcomes"),
    [
        pytest.param((), {"passed": 11}, id="installed"),
        pytest.param(("-o", "fda_restore_config=false"), NOT_RESTORED, id="restore-off"),
        pytest.param(("-p", "no:fda_core", "-p", "no:fda_sync"), NOT_RESTORED, id="disabled"),
    ],
)
def test_a_suite_that_does_not_use_the_plugin(
    inner: Inner, args: tuple[str, ...], outcomes: dict[str, int]
) -> None:
    inner.files(
        ini=INI,
        test_a_configuration=CONFIGURATION,
        test_b_module_fixture=MODULE_FIXTURE,
        test_c_suite=SUITE,
    )
    result = inner.run("--setup-show", *args)
    result.assert_outcomes(**outcomes)
    failed = {line.split("::")[1].split()[0] for line in result.outlines if "FAILED" in line}
    if outcomes != {"passed": 11}:
        assert failed == {
            "test_2_sees_the_app_conftest_configured",
            "test_4_sees_the_app_conftest_configured",
            "test_7_sees_the_modules_app_again",
        }
    set_up = set(re.findall(r"SETUP\s+[SPMCF] (\w+)", "\n".join(result.outlines)))
    assert {"as_bob", "stack"} <= set_up
    ours = {name for name in set_up if "fda" in name}
    assert ours == (set() if "no:fda_core" in args else {"_fda_restore_config"})
    assert inner.events() == ["startup", "shutdown"]  # the suite's own stack
