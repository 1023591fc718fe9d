"""Dramatiq actors on the sync API: ``dramatiq notes_service.dramatiq_actors``.

An actor is a plain function, run by a worker thread. It calls ``add_notes``
(``batches.py``) decorated with ``fastapi_depends_anywhere.sync``: a plain blocking call
that resolves the dependencies, runs, and commits or rolls back. The app's lifespan runs
once per worker process, started by the first actor that needs it and shut down when the
worker stops.
"""

import dramatiq
from dramatiq.brokers.redis import RedisBroker

import notes_service.app  # noqa: F401  # configures the FastAPI app
from fastapi_depends_anywhere.sync import with_fastapi_depends
from fastapi_depends_anywhere.sync.dramatiq import lifespan_per_worker_process
from notes_service import batches
from notes_service.settings import get_settings

broker = RedisBroker(url=get_settings().broker_url)
dramatiq.set_broker(broker)
lifespan_per_worker_process(broker)  # the app's lifespan: once per worker process

add_notes = with_fastapi_depends(batches.add_notes)  # a plain blocking call


@dramatiq.actor(actor_name="notes.import_notes", max_retries=0)
def import_notes(token: str, texts: list[str]) -> None:
    """Import a batch of notes for the owner of ``token``."""
    add_notes(texts, _scope=batches.bearer(token))
