"""Celery: the app's lifespan once per worker process, and a request's context carried to
the tasks sent while serving it (needs the `celery` extra:
``pip install "fastapi-depends-anywhere[celery]"``)."""

from fda_sync.celery import (
    RequestContextError,
    RequestContextRefusedError,
    RequestContextTask,
    RequestContextTooLargeError,
    carry_request_context,
    lifespan_per_worker_process,
)

__all__ = [
    "RequestContextError",
    "RequestContextRefusedError",
    "RequestContextTask",
    "RequestContextTooLargeError",
    "carry_request_context",
    "lifespan_per_worker_process",
]
