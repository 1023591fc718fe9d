"""The pytest plugin of fda-core: fixtures for testing code that resolves FastAPI dependencies.

Installed with fda-core (``pytest11`` entry point ``fda_core``; ``-p no:fda_core`` turns it
off). Its fixtures do nothing until a test asks for them. One thing applies to every test:
what a test changes with ``configure()`` is undone after it, so the next test sees what
conftest.py or a session fixture configured (``fda_restore_config = false`` in the pytest
configuration turns that off).

- ``fda_app``: the app the fixtures use (``fda_app = "myapp.main:app"`` in the pytest
  configuration, else the configured one; or define your own ``fda_app`` fixture).
- ``fda_override`` and ``@pytest.mark.fda_override({...})``: fakes for one test.
- ``fda_stack``: a started async ``FastApiDepsStack`` for the session.

fda-sync's plugin adds ``fda_sync_stack`` and ``fda_process_lifespan``.
"""

import typing

import pytest

import fda_core as _api
from fda_core._testing import app as _app
from fda_core._testing import config as _config
from fda_core._testing import loops as _loops
from fda_core._testing.overrides import MARKER as _MARKER
from fda_core._testing.overrides import Fakes as _Fakes
from fda_core._testing.overrides import Overrides
from fda_core._testing.overrides import around_call as _around_call
from fda_core._testing.overrides import marked as _marked

if typing.TYPE_CHECKING:  # names for annotations only: nothing public but __all__
    from collections.abc import AsyncIterator, Callable, Generator, Iterator
    from typing import Any

    from fastapi import FastAPI

__all__ = [
    "Overrides",
    "fda_app",
    "fda_override",
    "fda_stack",
    "pytest_addoption",
    "pytest_configure",
    "pytest_runtest_call",
    "pytest_runtest_setup",
]

_RESTORE_INI = "fda_restore_config"
#: The fakes of a test that asked for ``fda_override``, kept on the test's item.
_FAKES = pytest.StashKey[_Fakes]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _app.INI,
        help='the FastAPI app of the fda_* fixtures, as "module:attribute" '
        "(default: the app given to configure())",
        default="",
    )
    parser.addini(
        _RESTORE_INI,
        help="undo what each test changes with configure() (default: true)",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(fakes): replace dependencies for this test, as fda_override.update(fakes) "
        "would (fakes: a mapping of dependency -> replacement)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _loops.check_loop_scope(item)


@pytest.hookimpl(hookwrapper=True)  # the old style: what every pluggy release runs
def pytest_runtest_call(item: pytest.Item) -> "Generator[None, object, None]":
    fakes = _fakes_of(item) if isinstance(item, pytest.Function) else None
    if fakes is not None and isinstance(item, pytest.Function):
        with _around_call(item, fakes):
            yield
        return
    yield


def _fakes_of(item: pytest.Function) -> _Fakes | None:
    """The fakes ``item`` asked for (the fixture, or markers alone), if any."""
    fakes = item.stash.get(_FAKES, None)
    if fakes is None and item.get_closest_marker(_MARKER) is not None:
        fakes = _Fakes(_marked(item))
    return fakes


@pytest.fixture(autouse=True)
def _fda_restore_config(request: pytest.FixtureRequest) -> "Iterator[None]":
    if not request.config.getini(_RESTORE_INI):
        yield
        return
    saved = _config.snapshot()
    yield
    _config.restore(saved)


@pytest.fixture(scope="session")
def fda_app(pytestconfig: pytest.Config) -> "FastAPI":
    """The FastAPI app of the ``fda_*`` fixtures: the one the ``fda_app`` ini option names
    (``"module:attribute"``), else the one given to ``configure()`` (when first needed).
    Define a ``fda_app`` fixture of your own to choose it otherwise."""
    return _app.app_under_test(pytestconfig)


@pytest.fixture
def fda_override(request: pytest.FixtureRequest) -> "Iterator[Overrides]":
    """Fakes for this test only: ``fda_override[get_db] = fake_db``.

    A mapping you add to, in the test or in fixtures (``update()`` adds several). The fakes
    apply to the test's calls, as an ``override()`` block around the test would, from its
    first line for what fixtures added; they are gone after the test. Fakes of
    ``@pytest.mark.fda_override({...})`` markers are in it already.
    """
    fakes = request.node.stash[_FAKES] = _Fakes(_marked(request.node))
    yield Overrides(fakes)
    fakes.end()


@pytest.fixture(scope="session")
def fda_stack(request: pytest.FixtureRequest) -> _api.FastApiDepsStack:
    """A started async ``FastApiDepsStack`` of ``fda_app`` for the whole session.

    The app's lifespan starts once; everything resolved from it stays open until the
    session ends, then is torn down, then the lifespan shuts down. It lives on one event
    loop, and so must the tests that use it: pytest-asyncio's session loop
    (``loop_scope="session"``), or anyio's with a session-scoped ``anyio_backend``.
    """
    name = _loops.pick(request)
    try:
        stack: _api.FastApiDepsStack = request.getfixturevalue(name)
    except pytest.fail.Exception as exc:
        if name == _loops.ANYIO_STACK and "ScopeMismatch" in str(exc):  # say how to fix it
            raise pytest.fail.Exception(_loops.SCOPE_MISMATCH, pytrace=False) from None
        raise
    return stack


def _on_session_loop(
    function: "Callable[[FastAPI], AsyncIterator[_api.FastApiDepsStack]]",
) -> object:
    """A session fixture run by pytest-asyncio on its session loop, when it is installed.

    Loaded in every pytest run of an environment with fda-core, the plugin must load
    whatever else is there: without pytest-asyncio, or with one older than loop scopes
    (0.24), it is a plain fixture, which an old pytest-asyncio may still run."""
    try:
        from pytest_asyncio import fixture
    except ImportError:  # never requested then (see _loops.pick)
        return pytest.fixture(scope="session")(function)
    try:
        return fixture(scope="session", loop_scope="session")(function)
    except TypeError:  # pytest-asyncio < 0.24
        return pytest.fixture(scope="session")(function)


@_on_session_loop
async def _fda_stack_asyncio(fda_app: "FastAPI") -> "AsyncIterator[_api.FastApiDepsStack]":
    async with _api.FastApiDepsStack(app=fda_app) as stack:
        yield stack


@pytest.fixture(scope="session")
async def _fda_stack_anyio(
    fda_app: "FastAPI", anyio_backend: "Any"
) -> "AsyncIterator[_api.FastApiDepsStack]":
    _loops.check_backend(anyio_backend)
    async with _api.FastApiDepsStack(app=fda_app) as stack:
        yield stack
