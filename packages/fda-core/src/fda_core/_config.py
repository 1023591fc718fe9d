"""Process-wide configuration: the default app and the context factory.

Decorators look the app up when they are *called*, not when they are applied, so modules
can be decorated at import time before the app exists or is configured. The readers
(``get_app``, ``get_context_factory``, ``is_configured``) answer as 1.x's did: ``None`` or
``False`` when nothing is configured, so ``if get_app() is None: configure(...)`` works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

__all__ = [
    "ContextFactory",
    "configure",
    "get_app",
    "get_context_factory",
    "is_configured",
    "reset_config",
    "resolve_app",
]

#: Called with a decorator's ``context`` mapping; returns a sync or async context manager.
ContextFactory = Callable[[Mapping[str, Any]], Any]


@dataclass
class _Config:
    app: FastAPI | None = None
    context_factory: ContextFactory | None = None
    configured: bool = False


_config = _Config()
_lock = threading.Lock()

# "No FastAPI app configured" first: 1.x's message, which its users' tests match.
_NO_APP = (
    "No FastAPI app configured to resolve dependencies against. Call "
    "`fastapi_depends_anywhere.configure(app=app)` once at startup, or pass the app "
    "explicitly: `@with_fastapi_depends(app=app)` / `FastApiDepsStack(app=app)`."
)


def configure(
    app: FastAPI | None = None,
    context_factory: ContextFactory | None = None,
) -> None:
    """Set the app (and optional context factory) used when none is passed explicitly."""
    if app is not None:
        check_app(app, "configure(app=...)")
    with _lock:
        _config.app = app
        _config.context_factory = context_factory
        _config.configured = True


def get_app() -> FastAPI | None:
    """Return the configured app, or ``None`` if none is configured (as in 1.x).

    A call that needs an app and finds none raises a ``RuntimeError`` saying how to
    configure one; this reader does not.
    """
    return _config.app


def get_context_factory() -> ContextFactory | None:
    """Return the configured context factory, or ``None`` if none is configured."""
    return _config.context_factory


def is_configured() -> bool:
    """Whether ``configure()`` was called since the start or the last ``reset_config()``."""
    return _config.configured


def reset_config() -> None:
    """Forget the configured app and context factory (useful between tests)."""
    with _lock:
        _config.app = None
        _config.context_factory = None
        _config.configured = False


def check_app(app: object, where: str) -> None:
    """Refuse what is not a FastAPI app (an APIRouter, say) with a message naming it."""
    if not isinstance(app, FastAPI):
        raise TypeError(
            f"{where} expects the FastAPI application, got {app!r}. Pass the FastAPI() "
            "instance the router is included in."
        )


def resolve_app(app: FastAPI | None) -> FastAPI:
    """The explicit app if given, else the configured one, else a clear error. (Every
    call looks it up: the checks are written out.)"""
    if app is None:
        configured = _config.app
        if configured is None:
            raise RuntimeError(_NO_APP)
        return configured
    # Typed as an app, yet users pass routers: the check runs all the same.
    if not isinstance(app, FastAPI):  # pyright: ignore[reportUnnecessaryIsInstance]
        check_app(app, "app=")
    return app
