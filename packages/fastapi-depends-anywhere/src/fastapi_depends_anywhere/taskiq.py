"""taskiq: the app's lifespan once per worker process, in one line, for tasks on the async
API (needs the `taskiq` extra: ``pip install "fastapi-depends-anywhere[taskiq]"``)."""

from fda_core.taskiq import lifespan_per_worker_process

__all__ = ["lifespan_per_worker_process"]
