"""RQ: worker classes that run the app's lifespan once per worker, or once per job (needs
the `rq` extra: ``pip install "fastapi-depends-anywhere[rq]"``)."""

from fda_sync.rq import LifespanPerJobWorker, LifespanWorker

__all__ = ["LifespanPerJobWorker", "LifespanWorker"]
