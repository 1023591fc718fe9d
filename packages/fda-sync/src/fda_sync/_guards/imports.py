"""A sync call made while its thread imports a module, whose loop side imports it too.

``async def get_setting(): from mypkg import settings``, resolved by a sync call made
while ``mypkg`` is being imported: the importing thread holds ``mypkg``'s import lock and
waits for the loop; the loop thread waits for that lock. Python's own deadlock detection
only sees threads that both wait for import locks, so the waiting caller looks: if the
loop's thread is blocked on an import lock its own thread holds, it stops waiting with an
error that names the module (its import then fails, which frees the loop).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from fda_sync._errors import BridgeError

__all__ = ["ImportDeadlockError", "import_deadlock"]


class ImportDeadlockError(BridgeError):
    """The bridge loop waits for a module that the waiting caller is importing."""


def import_deadlock(loop_thread: int | None) -> ImportDeadlockError | None:
    """The error to raise if ``loop_thread`` waits for an import lock this thread holds."""
    bootstrap: Any = sys.modules.get("_frozen_importlib")
    blocking = getattr(bootstrap, "_blocking_on", None)
    if loop_thread is None or blocking is None:
        return None
    blocked = blocking.get(loop_thread)
    if blocked is None:
        return None
    me = threading.get_ident()
    try:
        locks: list[Any] = [*blocked]  # Python 3.12+: the locks the thread waits for
    except TypeError:
        locks = [blocked]  # earlier: the lock
    for lock in locks:
        if getattr(lock, "owner", None) == me:
            return _error(str(getattr(lock, "name", "?")))
    return None


def _error(module: str) -> ImportDeadlockError:
    return ImportDeadlockError(
        f"Deadlock: this sync call was made while `{module}` is being imported, and code it "
        f"runs on the bridge loop (an async dependency or body) imports `{module}` too, "
        "which waits for this import to finish. Import what the dependency needs at the top "
        f"of its module (or make it a `def` dependency), or make the call once `{module}` "
        "is imported (in a function, not at import time)."
    )
