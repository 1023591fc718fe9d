"""The configuration around each test: what a test configures is undone after it.

A snapshot, not a reset: what a conftest.py or a session fixture configured before the
test is exactly what the next test sees again.
"""

from __future__ import annotations

from fastapi import FastAPI

from fda_core import configure
from fda_core._testing.internals import ContextFactory, get_app, get_context_factory

__all__ = ["Snapshot", "restore", "snapshot"]

Snapshot = tuple[FastAPI | None, ContextFactory | None]


def snapshot() -> Snapshot:
    return get_app(), get_context_factory()


def restore(saved: Snapshot) -> None:
    """Put ``saved`` back if the test configured something else."""
    now = snapshot()
    if now[0] is not saved[0] or now[1] is not saved[1]:
        configure(app=saved[0], context_factory=saved[1])
