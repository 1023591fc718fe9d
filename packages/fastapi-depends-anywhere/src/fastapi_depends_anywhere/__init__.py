"""Run FastAPI dependency injection anywhere: background tasks, scripts, CLI commands,
tests, notebooks and workers."""

from importlib.metadata import version as _version

from fda_core import (
    FastApiDepsStack,
    aiter_with_fastapi_depends,
    check_routes_and_dependencies_are_async,
    configure,
    get_app,
    get_context_factory,
    is_configured,
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
    "__version__",
    "aiter_with_fastapi_depends",
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
