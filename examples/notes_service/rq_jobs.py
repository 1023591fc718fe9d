"""RQ jobs on the sync API:
``rq worker --worker-class notes_service.rq_jobs.LifespanWorker``.

A job is a plain function. It calls ``add_notes`` (``batches.py``) decorated with
``fastapi_depends_anywhere.sync``: a plain blocking call that resolves the dependencies,
runs, and commits or rolls back. ``LifespanWorker`` runs the jobs in the worker's own
process (RQ's ``SimpleWorker``) and the app's lifespan once for all of them; RQ imports it
from here, so importing this module configures the app first.
"""

import os
from typing import Any

import notes_service.app  # noqa: F401  # configures the FastAPI app
from fastapi_depends_anywhere.sync import with_fastapi_depends
from fastapi_depends_anywhere.sync.rq import LifespanWorker
from notes_service import batches

__all__ = ["LifespanWorker", "import_notes"]

add_notes = with_fastapi_depends(batches.add_notes)  # a plain blocking call


def import_notes(token: str, texts: list[str]) -> dict[str, Any]:
    """Import a batch of notes for the owner of ``token``."""
    return {"ids": add_notes(texts, _scope=batches.bearer(token)), "pid": os.getpid()}
