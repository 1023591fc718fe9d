"""Which event loop the session's async stack lives on, and which tests may use it.

An async ``FastApiDepsStack`` belongs to the loop that started it, and so does what it
resolves (pools, clients). A session-scoped stack therefore needs one loop for the whole
session, run by the plugin that runs the tests: pytest-asyncio's session loop
(``loop_scope="session"``), or anyio's runner, which one session-scoped async fixture
keeps alive for the session (with ``anyio_backend`` session-scoped too).
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = [
    "ANYIO_STACK",
    "ASYNCIO_STACK",
    "SCOPE_MISMATCH",
    "STACK",
    "check_backend",
    "check_loop_scope",
    "pick",
]

#: The public fixture, and the two that implement it, one per plugin.
STACK = "fda_stack"
ANYIO_STACK = "_fda_stack_anyio"
ASYNCIO_STACK = "_fda_stack_asyncio"

_SESSION_LOOP = (
    "{test} uses fda_stack, which lives on pytest-asyncio's session event loop (as "
    "everything it resolves does), but this test runs on a loop of {scope!r} scope. Run it "
    'on the session loop: mark it `@pytest.mark.asyncio(loop_scope="session")`, or set '
    '`asyncio_default_test_loop_scope = "session"` in your pytest configuration.'
)


def _has_pytest_asyncio(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("asyncio")


def _asyncio_auto_mode(config: pytest.Config) -> bool:
    if not _has_pytest_asyncio(config):
        return False
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(mode) == "auto"


def pick(request: pytest.FixtureRequest) -> str:
    """The fixture that starts the stack on the loop the requesting test runs on."""
    config = request.config
    if "anyio_backend" in request.fixturenames:
        if _asyncio_auto_mode(config):
            pytest.fail(
                "This is an anyio test, but pytest-asyncio's auto mode "
                "runs async fixtures such as fda_stack on its own event loop, not on "
                "anyio's. Use `asyncio_mode = strict` next to anyio's plugin, or run the "
                "test with pytest-asyncio (without @pytest.mark.anyio).",
                pytrace=False,
            )
        return ANYIO_STACK
    if _has_pytest_asyncio(config):
        return ASYNCIO_STACK
    pytest.fail(
        "fda_stack is started on an event loop, and no plugin runs one for this test. "
        "Install pytest-asyncio, or mark the test @pytest.mark.anyio (anyio's plugin "
        "comes with FastAPI); a sync test uses fda_sync_stack (pip install fda-sync).",
        pytrace=False,
    )


def check_backend(anyio_backend: Any) -> None:
    """The stack runs on asyncio: refuse trio with a message rather than a hang."""
    name = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]
    if name != "asyncio":
        pytest.fail(
            f"fda_stack runs on asyncio, and this test runs on anyio's {name!r} backend: "
            "run the tests that use it on asyncio (an `anyio_backend` fixture returning "
            '"asyncio").',
            pytrace=False,
        )


SCOPE_MISMATCH = (
    "fda_stack lives for the whole session on one event loop, and anyio's plugin keeps one "
    "per `anyio_backend`, which is module-scoped unless you override it. Give it session "
    "scope in conftest.py:\n\n"
    '    @pytest.fixture(scope="session")\n'
    "    def anyio_backend():\n"
    '        return "asyncio"\n'
)


def check_loop_scope(item: pytest.Item) -> None:
    """Fail a pytest-asyncio test that uses the stack from a loop other than the session's:
    what the stack resolved would be used across loops."""
    if STACK not in getattr(item, "fixturenames", ()) or not _has_pytest_asyncio(item.config):
        return
    marker = item.get_closest_marker("asyncio")
    if marker is None or "anyio_backend" in getattr(item, "fixturenames", ()):
        return  # not run by pytest-asyncio: a sync test, or anyio's
    scope = (
        marker.kwargs.get("loop_scope")
        or marker.kwargs.get("scope")
        or item.config.getini("asyncio_default_test_loop_scope")
    )
    if scope != "session":
        pytest.fail(_SESSION_LOOP.format(test=item.nodeid, scope=scope), pytrace=False)
