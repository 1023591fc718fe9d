"""Dramatiq: the app's lifespan once per worker process, in one line (needs the
`dramatiq` extra: ``pip install "fastapi-depends-anywhere[dramatiq]"``)."""

from fda_sync.dramatiq import lifespan_per_worker_process

__all__ = ["lifespan_per_worker_process"]
