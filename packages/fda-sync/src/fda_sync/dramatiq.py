"""Dramatiq: the app's lifespan once per worker process, in one line.

```python
broker = RedisBroker(url=...)
lifespan_per_worker_process(broker)
```

Needs Dramatiq: ``pip install "fda-sync[dramatiq]"`` (or
``"fastapi-depends-anywhere[dramatiq]"``).
"""

from fda_sync._integrations.dramatiq import lifespan_per_worker_process

__all__ = ["lifespan_per_worker_process"]
