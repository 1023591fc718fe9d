"""A gate on the bridge loop, for the gevent workers' tests (Celery, gunicorn).

The first calls wait there until ``size`` of them wait together; then it stays open. A call
waiting for the loop must leave its hub to the calls after it, or none gets through: the
workers' tests pass only if waits are cooperative.
"""

import asyncio


class Gate:
    """Touched on the bridge loop only."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.waiting = 0
        self.most = 0  # calls waiting at once, at most
        self._open: asyncio.Event | None = None  # made on the loop

    async def wait(self) -> None:
        if self._open is None:
            self._open = asyncio.Event()
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        if self.waiting >= self.size:
            self._open.set()  # for good: later calls pass through
        try:
            await self._open.wait()
        finally:
            self.waiting -= 1
