"""Decorators used with options keep the decorated function's return type (never executed).

``@decorator(app=...)`` returns a decorator; without a generic protocol, type checkers
infer ``Never`` for the ``async def`` case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from fastapi import FastAPI
from typing_extensions import assert_type

import fastapi_depends_anywhere as fda
from fastapi_depends_anywhere import sync
from fastapi_depends_anywhere.sync.runners import runnify_with_fastapi_depends

app = FastAPI()


@fda.with_fastapi_depends(app=app, scope={"method": "POST"}, context={"job": "x"})
async def async_depends() -> int:
    return 1


@fda.with_fastapi_lifecycle(app=app)
async def async_lifecycle() -> str:
    return ""


@fda.aiter_with_fastapi_depends(app=app)
async def async_numbers() -> AsyncIterator[int]:
    yield 1


@fda.runnify_with_fastapi_depends(app=app)
async def async_command() -> bytes:
    return b""


@sync.with_fastapi_depends(app=app)
async def sync_of_async() -> int:
    return 1


@sync.with_fastapi_depends(app=app)
def sync_of_def(x: int) -> float:
    return float(x)


@sync.with_fastapi_lifecycle(app=app)
async def sync_lifecycle() -> str:
    return ""


@runnify_with_fastapi_depends(app=app)
async def sync_command() -> bytes:
    return b""


@sync.iter_with_fastapi_depends(app=app)
def sync_numbers() -> Iterator[int]:
    yield 1


async def positional_options() -> str:
    return ""


def sync_positional_options() -> float:
    return 1.0


# 1.x passed ``scope`` and ``context`` positionally.
async_positional = fda.with_fastapi_depends(positional_options, {"method": "POST"}, {"job": "x"})
sync_positional = sync.with_fastapi_depends(sync_positional_options, {"method": "POST"}, None)


async def check_async() -> None:
    assert_type(await async_depends(), int)
    assert_type(await async_positional(), str)
    assert_type(await async_lifecycle(), str)
    assert_type(async_command(), bytes)
    async for number in async_numbers():
        assert_type(number, int)


def check_sync() -> None:
    assert_type(sync_of_async(), int)
    assert_type(sync_positional(), float)
    assert_type(sync_of_def(1), float)
    assert_type(sync_lifecycle(), str)
    assert_type(sync_command(), bytes)
    for number in sync_numbers():
        assert_type(number, int)
