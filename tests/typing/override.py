"""``override()`` as a block and as a decorator keeps types (never executed)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from typing_extensions import assert_type

import fastapi_depends_anywhere as fda
from fastapi_depends_anywhere import sync

app = FastAPI()


def get_db() -> Iterator[str]:
    yield "db"


def fake_db() -> str:
    return "fake"


class FakeDb:
    """A class replaces a dependency as well as a function does."""


@fda.override({get_db: fake_db})
async def test_async(tmp: int) -> bool:
    return True


@sync.override({get_db: FakeDb}, app=app)
def test_sync(tmp: int) -> str:
    return ""


async def check() -> None:
    assert_type(await test_async(1), bool)
    assert_type(test_sync(1), str)
    with fda.override({get_db: fake_db}):
        pass
    async with fda.override({get_db: fake_db}, app=app):
        pass
