"""The sync API: call FastAPI-dependency-injected code from sync code (Celery tasks,
Django views, CLI scripts) without managing an event loop.

Every decorator accepts ``def`` and ``async def`` functions and returns a plain sync
callable. Dependencies run on one daemon event loop per process; a ``def`` body runs in the
caller's thread. See ``docs/sync.md``.
"""

from fda_sync import (
    BridgeError,
    FastApiDepsStack,
    ambient_scope,
    iter_with_fastapi_depends,
    override,
    resolve_fastapi_depends,
    runnify_with_fastapi_depends,
    scope_from_django,
    shutdown_worker_process,
    start_process_lifespan,
    stop_process_lifespan,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)

__all__ = [
    "BridgeError",
    "FastApiDepsStack",
    "ambient_scope",
    "iter_with_fastapi_depends",
    "override",
    "resolve_fastapi_depends",
    "runnify_with_fastapi_depends",
    "scope_from_django",
    "shutdown_worker_process",
    "start_process_lifespan",
    "stop_process_lifespan",
    "with_fastapi_depends",
    "with_fastapi_lifecycle",
]
