"""The parts of the plugin, in-process: the ``Overrides`` object, the test wrapper, the
configuration snapshot, the app of the ini option, and the entry points that load it."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from fda_core import configure, get_app, reset_config, with_fastapi_depends
from fda_core._testing import app as app_option
from fda_core._testing import config, loops
from fda_core._testing.overrides import Fakes, Overrides, wrap
from plugin.app import UserDep, get_user


@with_fastapi_depends
async def who(*, user: UserDep) -> str:
    return user


@pytest.fixture(autouse=True)
def configured() -> None:
    configure(app=FastAPI())


# --- Overrides ------------------------------------------------------------------------


def test_overrides_is_a_mapping_that_is_added_to() -> None:
    def fake() -> str:
        return "fake"

    overrides = Overrides(Fakes({get_user: fake}))
    assert (dict(overrides), len(overrides), get_user in overrides) == ({get_user: fake}, 1, True)
    overrides.update({get_user: str})
    assert overrides[get_user] is str
    with pytest.raises(TypeError, match="cannot be removed"):
        del overrides[get_user]
    assert overrides[get_user] is str


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: {Depends(get_user): str}, "use the callable inside Depends"),
        (lambda: {Annotated[str, Depends(get_user)]: str}, "use the callable inside Depends"),
        (lambda: {get_user: "bob"}, "must be a callable FastAPI can call"),
        (lambda: [(get_user, str)], "takes a mapping of dependency -> replacement"),
    ],
    ids=["Depends", "Annotated", "not-callable", "not-a-mapping"],
)
def test_a_bad_fake_is_refused_where_it_is_added(make: Any, message: str) -> None:
    try:
        fakes = make()
    except TypeError:  # FastAPI < 0.121.3: no dict can hold a Depends as a key
        with pytest.raises(TypeError, match="unhashable type: 'Depends'"):
            make()
        return
    overrides = Overrides(Fakes())
    with pytest.raises(TypeError, match=message):
        overrides.update(fakes)  # type: ignore[arg-type]
    assert dict(overrides) == {}


def test_after_the_test_nothing_can_be_added() -> None:
    fakes = Fakes()
    overrides = Overrides(fakes)
    fakes.end()
    with pytest.raises(RuntimeError, match="the test is over"):
        overrides[get_user] = str


async def test_applied_opens_the_block_and_closes_what_was_added_in_it() -> None:
    fakes = Fakes({get_user: lambda: "bob"})
    overrides = Overrides(fakes)
    with fakes.applied():
        assert await who() == "bob"
        overrides[get_user] = lambda: "cid"
        assert await who() == "cid"
    assert await who() == "ann"
    assert overrides[get_user]() == "cid"  # kept, for a next call (Hypothesis' examples)
    with fakes.applied():
        assert await who() == "cid"


async def test_a_task_or_thread_of_the_call_cannot_add() -> None:
    fakes = Fakes()
    overrides = Overrides(fakes)

    async def task() -> None:
        overrides[get_user] = str

    errors: list[BaseException] = []

    def thread() -> None:
        try:
            overrides[get_user] = str
        except RuntimeError as exc:
            errors.append(exc)

    with fakes.applied():
        with pytest.raises(RuntimeError, match="not by a thread or task it started"):
            await asyncio.create_task(task())
        runner = threading.Thread(target=thread)
        runner.start()
        runner.join()
    assert len(errors) == 1
    assert dict(overrides) == {}


async def test_wrap_keeps_what_plugins_look_at() -> None:
    async def test_async() -> str:
        return await who()

    def test_sync() -> str:
        return "sync"

    test_async.marked = True  # type: ignore[attr-defined]
    fakes = Fakes({get_user: lambda: "bob"})
    wrapped_async, wrapped_sync = wrap(test_async, fakes), wrap(test_sync, fakes)
    assert inspect.iscoroutinefunction(wrapped_async)
    assert not inspect.iscoroutinefunction(wrapped_sync)
    assert (wrapped_async.__name__, wrapped_async.__wrapped__) == ("test_async", test_async)  # type: ignore[attr-defined]
    assert not hasattr(wrapped_async, "marked")  # anyio's marks on its own wrappers
    assert (await wrapped_async(), wrapped_sync()) == ("bob", "sync")


# --- The configuration ---------------------------------------------------------------


def test_restore_puts_back_the_app_and_the_context_factory() -> None:
    app = get_app()

    def factory(context: object) -> None:
        return None

    configure(app=app, context_factory=factory)
    saved = config.snapshot()
    assert saved == (app, factory)
    reset_config()
    config.restore(saved)
    assert config.snapshot() == (app, factory)
    other = FastAPI()
    configure(app=other)
    config.restore((None, None))
    assert config.snapshot() == (None, None)


# --- The app of the fda_app ini option -----------------------------------------------


@pytest.fixture
def module_with_an_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "fda_plugin_sample.py").write_text(
        "from fastapi import FastAPI\n"
        "class holder:\n"
        "    app = FastAPI(title='nested')\n"
        "app = FastAPI(title='top')\n"
        "router = object()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fda_plugin_sample", raising=False)
    return "fda_plugin_sample"


def test_the_ini_option_names_an_app_by_module_and_attribute(module_with_an_app: str) -> None:
    assert app_option.load_app(f"{module_with_an_app}:app").title == "top"
    assert app_option.load_app(f"{module_with_an_app}:holder.app").title == "nested"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fda_plugin_sample", 'write it as "module:attribute"'),
        ("fda_plugin_sample:", 'write it as "module:attribute"'),
        ("fda_plugin_sample:missing", "has no attribute 'missing'"),
        ("fda_plugin_sample:router", "not a FastAPI application"),
    ],
)
def test_a_bad_ini_option_is_a_clear_failure(
    module_with_an_app: str, spec: str, message: str
) -> None:
    with pytest.raises(pytest.fail.Exception, match=message):
        app_option.load_app(spec)


def test_without_the_ini_option_the_configured_app(pytestconfig: pytest.Config) -> None:
    assert app_option.app_under_test(pytestconfig) is get_app()
    reset_config()
    with pytest.raises(pytest.fail.Exception) as failed:
        app_option.app_under_test(pytestconfig)
    for fix in ('fda_app = "myapp.main:app"', "configure(app=app)", "a `fda_app` fixture"):
        assert fix in str(failed.value)


# --- The event loop of the stack -----------------------------------------------------


@pytest.mark.parametrize("backend", ["trio", ("trio", {"restrict_keyboard_interrupt": True})])
def test_the_stack_refuses_trio_by_name(backend: object) -> None:
    with pytest.raises(pytest.fail.Exception, match="runs on asyncio"):
        loops.check_backend(backend)


@pytest.mark.parametrize("backend", ["asyncio", ("asyncio", {"use_uvloop": False})])
def test_the_stack_runs_on_asyncio(backend: object) -> None:
    loops.check_backend(backend)


# --- Entry points ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distribution", "plugins"),
    [
        ("fda-core", {"fda_core": "fda_core.pytest_plugin"}),
        ("fda-sync", {"fda_sync": "fda_sync.pytest_plugin"}),
        ("fastapi-depends-anywhere", {}),  # its two dependencies bring both
    ],
)
def test_each_distribution_registers_its_own_plugin(
    distribution: str, plugins: dict[str, str]
) -> None:
    found = importlib.metadata.distribution(distribution).entry_points
    assert {ep.name: ep.value for ep in found if ep.group == "pytest11"} == plugins


def test_this_session_runs_with_both_plugins(pytestconfig: pytest.Config) -> None:
    manager = pytestconfig.pluginmanager
    assert manager.has_plugin("fda_core")
    assert manager.has_plugin("fda_sync")
    markers = pytestconfig.getini("markers")
    assert any(marker.startswith("fda_override(") for marker in markers)
