"""Run FastAPI dependency injection anywhere: background tasks, scripts, CLI commands,
tests, notebooks and workers."""

from importlib.metadata import version as _version

from fda_core import (
    FastApiDepsStack,
    RequestContextMiddleware,
    aiter_with_fastapi_depends,
    ambient_scope,
    check_routes_and_dependencies_are_async,
    configure,
    get_app,
    override,
    reset_config,
    resolve_fastapi_depends,
    runnify_with_fastapi_depends,
    with_fastapi_depends,
    with_fastapi_lifecycle,
)

__version__ = _version("fastapi-depends-anywhere")

__all__ = [
    "FastApiDepsStack",
    "RequestContextMiddleware",
    "__version__",
    "aiter_with_fastapi_depends",
    "ambient_scope",
    "check_routes_and_dependencies_are_async",
    "configure",
    "get_app",
    "override",
    "reset_config",
    "resolve_fastapi_depends",
    "runnify_with_fastapi_depends",
    "with_fastapi_depends",
    "with_fastapi_lifecycle",
]
