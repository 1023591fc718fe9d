"""Fork safety: a child forgets its parent's loop and starts its own at its first call.

A child inherits a loop object that no thread runs, and maybe a lock held by a thread it
does not have (design rule 2). ``os.register_at_fork`` makes every bridge forget its loop
in the child and replace its lock; ``LoopState.pid`` checked on each call is the second
line. A fork also waits (``FORK_WAIT`` at most) for a bridge start-up in flight
in another thread: the child never inherits a module half-imported on the loop's thread,
nor a loop half-started.
"""

from __future__ import annotations

import os
import threading

from fda_sync._bridge.state import this_process

__all__ = ["FORK_WAIT"]

#: How long a fork waits for a bridge that starts in another thread.
FORK_WAIT = 10.0

_fork_waited: list[bool] = []


def _before_fork() -> None:
    _fork_waited.append(this_process.starting.acquire(timeout=FORK_WAIT))


def _after_fork_in_parent() -> None:
    if _fork_waited.pop():
        this_process.starting.release()


def _after_fork_in_child() -> None:
    this_process.forks += 1
    _fork_waited.clear()
    this_process.starting = threading.Lock()
    this_process.stopping_lock = threading.Lock()  # a shutdown in the parent is its own
    for bridge in list(this_process.bridges):
        bridge.forget_parent()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
