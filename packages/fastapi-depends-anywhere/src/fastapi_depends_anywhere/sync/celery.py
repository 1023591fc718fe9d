"""Celery: the app's lifespan once per worker process, in one line (needs the `celery`
extra: ``pip install "fastapi-depends-anywhere[celery]"``)."""

from fda_sync.celery import lifespan_per_worker_process

__all__ = ["lifespan_per_worker_process"]
