"""Resolve FastAPI dependencies outside route handlers: the async core.

Background tasks, scripts, CLI commands, tests, notebooks and workers get exactly what a
route handler with the same signature would get.
"""

from importlib.metadata import version as _version

from fda_core._api.aiter import aiter_with_fastapi_depends
from fda_core._api.check import check_routes_and_dependencies_are_async
from fda_core._api.decorators import with_fastapi_depends, with_fastapi_lifecycle
from fda_core._api.request_context import RequestContextMiddleware, ambient_scope
from fda_core._api.resolve import resolve_fastapi_depends
from fda_core._api.runnify import runnify_with_fastapi_depends
from fda_core._api.stack import FastApiDepsStack
from fda_core._config import (
    configure,
    get_app,
    get_context_factory,
    is_configured,
    reset_config,
)
from fda_core._override import override

__version__ = _version("fda-core")

__all__ = [
    "FastApiDepsStack",
    "RequestContextMiddleware",
    "__version__",
    "aiter_with_fastapi_depends",
    "ambient_scope",
    "check_routes_and_dependencies_are_async",
    "configure",
    "get_app",
    "get_context_factory",
    "is_configured",
    "override",
    "reset_config",
    "resolve_fastapi_depends",
    "runnify_with_fastapi_depends",
    "with_fastapi_depends",
    "with_fastapi_lifecycle",
]
