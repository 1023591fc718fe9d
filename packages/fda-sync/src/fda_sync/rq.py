"""RQ: worker classes that run the app's lifespan once per worker, or once per job.

```bash
rq worker --worker-class yourapp.tasks.LifespanWorker
```

Needs RQ: ``pip install "fda-sync[rq]"`` (or ``"fastapi-depends-anywhere[rq]"``).
"""

from fda_sync._integrations.rq import LifespanPerJobWorker, LifespanWorker

__all__ = ["LifespanPerJobWorker", "LifespanWorker"]
