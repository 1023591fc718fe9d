"""Fixtures shared by every test: a clean configuration and a recorder of events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fda_core import reset_config

pytest_plugins = ["pytester"]


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
