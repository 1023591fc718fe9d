"""How the benchmarks measure: calibrated samples, interleaved across the variants.

Each variant is warmed up, and its calls per sample are chosen from the warm-up so that one
sample takes about 0.15 s (at least 20 calls; BENCH_SCALE multiplies both). A graph's
BENCH_REPEATS samples (default 7) are taken round-robin across its variants, the starting
variant rotating, so the machine's drift hits all variants alike; tables show medians.
"""

import asyncio
import gc
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
#: Seconds one sample aims at, and the fewest calls in one sample.
SAMPLE_SECONDS = 0.15 * SCALE
MIN_CALLS = max(1, round(20 * SCALE))
#: Seconds of warm-up calls per variant, from which its calls per sample are estimated.
WARMUP_SECONDS = 0.05


#: Runs a variant ``count`` times in a row; returns the elapsed seconds.
Sampler = Callable[[int], float]


def sync_sampler(call: Callable[[], Any]) -> Sampler:
    """Calls from the main thread, no event loop running."""

    def sample(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            call()
        return time.perf_counter() - start

    return sample


class LoopSampler:
    """Awaits an async variant on its own event loop, in the main thread, kept across
    samples: only the calls are timed, never the loop's start-up."""

    def __init__(self, call: Callable[[], Awaitable[Any]]) -> None:
        self.call = call
        self.loop = asyncio.new_event_loop()

    async def _timed(self, count: int) -> float:
        call = self.call
        start = time.perf_counter()
        for _ in range(count):
            await call()
        return time.perf_counter() - start

    def __call__(self, count: int) -> float:
        return self.loop.run_until_complete(self._timed(count))

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()


@dataclass
class Series:
    sample: Sampler
    count: int = 0
    samples: list[float] = field(default_factory=list)

    def calibrate(self) -> None:
        """Warm up, then pick the calls per sample that last about SAMPLE_SECONDS."""
        self.sample(1)  # a first call may set things up: never part of the estimate
        count = 1
        while (elapsed := self.sample(count)) < WARMUP_SECONDS:
            count *= 2
        self.count = max(MIN_CALLS, math.ceil(SAMPLE_SECONDS * count / elapsed))

    def take(self) -> None:
        gc.collect()  # no variant pays for the garbage of the one before it
        self.samples.append(self.sample(self.count))

    @property
    def per_call(self) -> float:
        """Median microseconds per call."""
        return statistics.median(self.samples) / self.count * 1e6


def interleave(series: list[Series]) -> None:
    """REPEATS samples of each, round-robin, the starting one rotating every round."""
    for one in series:
        one.calibrate()
    for round_ in range(REPEATS):
        shift = round_ % len(series)
        for one in series[shift:] + series[:shift]:
            one.take()


class BareLoop:
    """A loop in a daemon thread, awaited with ``run_coroutine_threadsafe``: how sync code
    awaits without this library (the floors, and peers that have no sync API)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class ThreadHop:
    """One round trip between the main thread and a helper thread: the main thread
    releases a lock the helper waits on, then waits on a lock the helper releases. The
    floor under any call that runs on another thread and is waited for."""

    def __init__(self) -> None:
        self._ping = threading.Lock()
        self._pong = threading.Lock()
        self._ping.acquire()
        self._pong.acquire()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="bench-hop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            self._ping.acquire()
            if self._stopping:
                return
            self._pong.release()

    def __call__(self) -> None:
        self._ping.release()
        self._pong.acquire()

    def close(self) -> None:
        self._stopping = True
        self._ping.release()
        self._thread.join()


class CountWarnings(logging.Handler):
    """Counts (and keeps quiet) what fastapi-injectable logs, e.g. a failed cleanup."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.first = self.first or record.getMessage()
