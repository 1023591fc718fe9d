"""taskiq tasks on the async API: ``taskiq worker notes_service.taskiq_tasks:broker``.

A task is a coroutine, run on the worker's event loop. It awaits ``add_notes``
(``batches.py``) decorated with the async ``fastapi_depends_anywhere.with_fastapi_depends``:
the dependencies resolve, the body runs, the session commits or rolls back. The app's
lifespan runs once per worker process: it starts with the worker's broker, before the
first task, and shuts down with it.
"""

import os
from typing import Any

from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

import notes_service.app  # noqa: F401  # configures the FastAPI app
from fastapi_depends_anywhere import with_fastapi_depends
from fastapi_depends_anywhere.taskiq import lifespan_per_worker_process
from notes_service import batches
from notes_service.settings import get_settings

url = get_settings().broker_url
broker = ListQueueBroker(url).with_result_backend(RedisAsyncResultBackend(url))
lifespan_per_worker_process(broker)  # the app's lifespan: once per worker process

add_notes = with_fastapi_depends(batches.add_notes)


@broker.task(task_name="notes.import_notes")
async def import_notes(token: str, texts: list[str]) -> dict[str, Any]:
    """Import a batch of notes for the owner of ``token``."""
    return {"ids": await add_notes(texts, _scope=batches.bearer(token)), "pid": os.getpid()}
