"""Celery: the app's lifespan once per worker process, in one line.

```python
celery = Celery("myapp", broker=...)
lifespan_per_worker_process(celery)
```

Needs Celery: ``pip install "fda-sync[celery]"`` (or ``"fastapi-depends-anywhere[celery]"``).
"""

from fda_sync._integrations.celery import lifespan_per_worker_process

__all__ = ["lifespan_per_worker_process"]
