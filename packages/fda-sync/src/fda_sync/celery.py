"""Celery: the app's lifespan once per worker process, and a request's context carried to
the tasks sent while serving it.

```python
celery = Celery("myapp", broker=..., task_cls=RequestContextTask)
lifespan_per_worker_process(celery)
carry_request_context(celery, headers=["authorization", "x-tenant"], app=app)
```

Needs Celery: ``pip install "fda-sync[celery]"`` (or ``"fastapi-depends-anywhere[celery]"``).
"""

from fda_sync._integrations.celery import lifespan_per_worker_process
from fda_sync._integrations.celery_context import RequestContextTask, carry_request_context
from fda_sync._integrations.context_wire import (
    RequestContextError,
    RequestContextRefusedError,
    RequestContextTooLargeError,
)

__all__ = [
    "RequestContextError",
    "RequestContextRefusedError",
    "RequestContextTask",
    "RequestContextTooLargeError",
    "carry_request_context",
    "lifespan_per_worker_process",
]
