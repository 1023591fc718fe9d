"""``runnify_with_fastapi_depends``: a blocking call with lifespan and dependencies.

The sync API's runner (``fda_sync.runners``) has the same signature and types, declared
here once: it runs on the bridge loop instead of a new event loop per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from fastapi import FastAPI

from fda_core._api.decorating import BlockingDecorator, bare_or_with_options, mark_blocking
from fda_core._api.decorators import with_fastapi_depends, with_fastapi_lifecycle

__all__ = ["runnify_with_fastapi_depends"]

T = TypeVar("T")

_MISSING_ASYNCER = (
    "runnify_with_fastapi_depends needs the asyncer extra: "
    'pip install "fastapi-depends-anywhere[asyncer]"'
)


def _runnify(func: Callable[..., Any], app: FastAPI | None) -> Callable[..., Any]:
    try:
        from asyncer import runnify
    except ImportError as exc:
        raise ImportError(_MISSING_ASYNCER, name="asyncer") from exc
    runner = runnify(with_fastapi_lifecycle(with_fastapi_depends(func, app=app), app=app))
    mark_blocking(runner)
    return runner


@overload
def runnify_with_fastapi_depends(
    func: Callable[..., Awaitable[T]], *, app: FastAPI | None = None
) -> Callable[..., T]: ...
@overload
def runnify_with_fastapi_depends(
    func: Callable[..., T], *, app: FastAPI | None = None
) -> Callable[..., T]: ...
@overload
def runnify_with_fastapi_depends(
    func: None = None, *, app: FastAPI | None = None
) -> BlockingDecorator: ...
def runnify_with_fastapi_depends(
    func: Callable[..., Any] | None = None, *, app: FastAPI | None = None
) -> Any:
    """Make a blocking function that starts the lifespan, resolves dependencies and runs
    ``func`` in a new event loop: a script or CLI command needs no ``asyncio.run()``.

    Needs the ``asyncer`` extra; without it, decorating raises ``ImportError``.
    """
    return bare_or_with_options(func, lambda f: _runnify(f, app), "runnify_with_fastapi_depends")
