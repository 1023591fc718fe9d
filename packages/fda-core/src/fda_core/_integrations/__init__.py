"""Hooks into task queues: where a worker process starts and stops the app's lifespan.

Each hook imports its queue lazily, from its public module (``fda_core.taskiq``; the sync
ones are in ``fda_sync._integrations``), and refuses to import without it:
``missing_extra`` names the pip command. ``Hooked`` keeps a hook from being installed twice
on one broker.
"""

from __future__ import annotations

import threading
import weakref
from typing import NoReturn

from fastapi import FastAPI

from fda_core._config import check_app

__all__ = ["Hooked", "missing_extra"]


def missing_extra(
    exc: ImportError, module: str, queue: str, extra: str, distribution: str
) -> NoReturn:
    """Raise the error of a hook module imported without its queue installed (``exc``,
    from importing the queue's package, named ``extra`` too); ``exc`` itself if the queue
    is installed but failed to import (its own error says why)."""
    if exc.name is None or exc.name.split(".")[0] != extra:
        raise exc
    raise ImportError(
        f"{module} needs {queue}, an optional dependency: install the `{extra}` extra, "
        f'`pip install "{distribution}[{extra}]"` (or `"fastapi-depends-anywhere[{extra}]"`).'
    ) from exc


class Hooked:
    """The brokers a hook was installed on, and the app it was given for each.

    Installing it again on the same broker for the same app does nothing (a module
    imported twice); for another app, it is refused: a worker process runs one app's
    lifespan.
    """

    def __init__(self, hook: str, expects: str, kind: type[object]) -> None:
        self.hook, self.expects, self.kind = hook, expects, kind
        self._apps: weakref.WeakKeyDictionary[object, FastAPI | None] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def first(self, target: object, app: FastAPI | None) -> bool:
        """Check both arguments; whether the hook is still to install on ``target``."""
        if not isinstance(target, self.kind):
            raise TypeError(
                f"{self.hook}() expects {self.expects}, got {target!r}; the FastAPI app "
                "goes in `app=`."
            )
        if app is not None:
            check_app(app, f"{self.hook}(app=...)")
        with self._lock:
            if target not in self._apps:
                self._apps[target] = app
                return True
            installed = self._apps[target]
        if installed is not app:
            raise RuntimeError(
                f"{self.hook}() was called already for this broker, with "
                f"app={_name(installed)}; now with app={_name(app)}. A worker process runs "
                "one app's lifespan: remove one of the two calls."
            )
        return False


def _name(app: FastAPI | None) -> str:
    return "None (the configured app)" if app is None else f"FastAPI(title={app.title!r})"
