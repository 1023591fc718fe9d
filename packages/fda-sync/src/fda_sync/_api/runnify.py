"""``runnify_with_fastapi_depends``: lifespan, dependencies and a blocking call in one.

The async API's runner with the same signature and types (declared there once), but it
needs no ``asyncer``: the bridge loop runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

import fda_core
from fda_core._api.decorating import (
    bare_or_with_options,
    is_async_callable,
    reject_generators,
    typed_as,
)
from fda_sync._api.decorators import bridged, with_fastapi_depends, with_fastapi_lifecycle

__all__ = ["runnify_with_fastapi_depends"]


def _runnify(func: Callable[..., Any], app: FastAPI | None) -> Callable[..., Any]:
    reject_generators(func, "runnify_with_fastapi_depends")
    if is_async_callable(func):
        # One blocking call: lifespan, dependencies and body all in one task on the loop.
        inner = fda_core.with_fastapi_lifecycle(
            fda_core.with_fastapi_depends(func, app=app), app=app
        )
        return bridged(func, inner)
    # The body runs in the caller's thread, inside the lifespan, with its dependencies.
    return with_fastapi_lifecycle(with_fastapi_depends(func, app=app), app=app)


@typed_as(fda_core.runnify_with_fastapi_depends)
def runnify_with_fastapi_depends(
    func: Callable[..., Any] | None = None, *, app: FastAPI | None = None
) -> Any:
    """Make a plain function that starts the lifespan, resolves dependencies and runs
    ``func`` (``def`` or ``async def``), then shuts down: a script needs nothing else.

    Typed as the async API's ``runnify_with_fastapi_depends``: the function it returns
    gives ``func``'s result, awaited if ``func`` is ``async def``.
    """
    return bare_or_with_options(func, lambda f: _runnify(f, app), "runnify_with_fastapi_depends")
