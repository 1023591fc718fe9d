"""Fixtures shared by every test: a clean configuration and a recorder of events."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from fda_core import reset_config

pytest_plugins = ["pytester"]

# A shell that starts the suite in the background (``pytest &`` without job control) starts
# it with Ctrl-C ignored, and the processes the tests start inherit that. The tests of
# interrupts need Python's usual handler, as an interactive run or CI has it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of real workers or programs runs processes: ``-m "not process"`` leaves it out."""
    for item in items:
        if item.get_closest_marker("workers") or item.get_closest_marker("programs"):
            item.add_marker(pytest.mark.process)


@pytest.fixture(autouse=True)
def _clean_config() -> Iterator[None]:
    reset_config()
    yield
    reset_config()


class Events(list[str]):
    """What happened, in order: setups, teardowns, bodies, lifespan phases."""

    def add(self, event: str) -> None:
        self.append(event)


@pytest.fixture
def events() -> Events:
    return Events()
