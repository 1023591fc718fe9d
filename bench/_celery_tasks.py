"""The worker of bench_celery.py: the example service's task, twice in one worker.

``notes.import_notes`` is the example's own: its calls share the process lifespan
(``lifespan_per_worker_process``). ``bench.import_notes_per_task`` runs the same function
inside a lifespan of its own per task (``with_fastapi_lifecycle``), as tasks did before:
on a second FastAPI app with the same lifespan, so the process lifespan of the first one
does not serve it.
"""

import os
from typing import Any

from fastapi import FastAPI

from fastapi_depends_anywhere.sync import with_fastapi_depends, with_fastapi_lifecycle
from notes_service.app import lifespan
from notes_service.tasks import add_notes, bearer, celery, import_notes

__all__ = ["celery", "import_notes", "import_notes_per_task"]

per_task_app = FastAPI(lifespan=lifespan)
add_notes_per_task = with_fastapi_lifecycle(
    with_fastapi_depends(add_notes.__wrapped__, app=per_task_app), app=per_task_app
)


@celery.task(name="bench.import_notes_per_task")
def import_notes_per_task(token: str, texts: list[str]) -> dict[str, Any]:
    """``notes.import_notes``, with the app's lifespan started and shut down around it."""
    return {"ids": add_notes_per_task(texts, _scope=bearer(token)), "pid": os.getpid()}
