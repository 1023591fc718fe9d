"""The sync API of fastapi-depends-anywhere: call dependency-injected code from sync code.

Celery tasks, Django views, CLI scripts: every decorator returns a plain sync callable, for
``def`` and ``async def`` functions alike. Dependencies resolve on one daemon event loop
per process (the bridge); a ``def`` body runs in the caller's thread.
"""

from importlib.metadata import version as _version

from fda_core import ambient_scope, override
from fda_sync._api.decorators import with_fastapi_depends, with_fastapi_lifecycle
from fda_sync._api.iter import iter_with_fastapi_depends
from fda_sync._api.process_lifespan import (
    shutdown_worker_process,
    start_process_lifespan,
    stop_process_lifespan,
)
from fda_sync._api.resolve import resolve_fastapi_depends
from fda_sync._api.runnify import runnify_with_fastapi_depends
from fda_sync._api.stack import FastApiDepsStack
from fda_sync._errors import BridgeError
from fda_sync._integrations.django import scope_from_django

__version__ = _version("fda-sync")

__all__ = [
    "BridgeError",
    "FastApiDepsStack",
    "__version__",
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
