"""taskiq: the app's lifespan once per worker process, in one line.

```python
broker = ListQueueBroker("redis://...")
lifespan_per_worker_process(broker)
```

Needs taskiq: ``pip install "fda-core[taskiq]"`` (or ``"fastapi-depends-anywhere[taskiq]"``).
"""

from fda_core._integrations.taskiq import lifespan_per_worker_process

__all__ = ["lifespan_per_worker_process"]
