"""Celery tasks on the sync API: ``celery -A notes_service.tasks worker``.

A task is a plain function. It calls ``add_notes`` (``batches.py``) decorated with
``fastapi_depends_anywhere.sync``: each call resolves the dependencies on the process's
bridge loop, runs, and commits or rolls back. The app's lifespan (the engine and its
connection pool) runs once per worker process, started by the first task and shut down
with the process.
"""

import os
from typing import Any

from celery import Celery

import notes_service.app  # noqa: F401  # configures the FastAPI app
from fastapi_depends_anywhere.sync import with_fastapi_depends
from fastapi_depends_anywhere.sync.celery import lifespan_per_worker_process
from notes_service import batches
from notes_service.batches import RejectedNoteError, bearer
from notes_service.settings import get_settings

__all__ = ["RejectedNoteError", "add_notes", "bearer", "celery", "import_notes"]

settings = get_settings()
# `celery -A notes_service.tasks` finds it by its name: no other `app` or `celery` here.
celery = Celery("notes_service", broker=settings.broker_url, backend=settings.broker_url)
celery.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_time_limit=60,  # a task that hangs is killed, not waited for
)
lifespan_per_worker_process(celery)  # the app's lifespan: once per worker process

add_notes = with_fastapi_depends(batches.add_notes)  # a plain blocking call


@celery.task(name="notes.import_notes")
def import_notes(token: str, texts: list[str]) -> dict[str, Any]:
    """Import a batch of notes for the owner of ``token``."""
    return {"ids": add_notes(texts, _scope=bearer(token)), "pid": os.getpid()}
