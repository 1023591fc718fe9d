"""The pytest plugins' fixtures as a typed test suite annotates them (never executed)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from fastapi import FastAPI
from typing_extensions import assert_type

import fda_core
import fda_sync
from fda_core.pytest_plugin import Overrides


def get_db() -> Generator[str, None, None]:
    yield "db"


def fake_db() -> str:
    return "fake"


class FakeDb:
    """A class replaces a dependency as well as a function does."""


async def test_async(
    fda_app: FastAPI, fda_override: Overrides, fda_stack: fda_core.FastApiDepsStack
) -> None:
    fda_override[get_db] = fake_db
    fda_override.update({get_db: FakeDb})
    assert_type(fda_override[get_db], Callable[..., Any])
    assert_type(dict(fda_override), dict[Callable[..., Any], Callable[..., Any]])
    assert_type(await fda_stack.resolve(get_db), str)


def test_sync(fda_sync_stack: fda_sync.FastApiDepsStack, fda_process_lifespan: FastAPI) -> None:
    assert_type(fda_sync_stack.resolve(get_db), str)
