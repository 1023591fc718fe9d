"""Cost of one blocking call through the sync bridge, against the alternatives.

Run with ``uv run python bench/bench_bridge.py`` (``--quick`` for fewer calls; ``--cpu N``
or BENCH_CPU=N pins the whole process to CPU N first, which takes the VM's cost of waking a
thread on another vCPU out of the figures).

Three ways for sync code to run a coroutine on an event loop in another thread, measured
in the same run:

- ``bare``: a loop in a daemon thread, ``asyncio.run_coroutine_threadsafe(...).result()``
  (no fork handling, no cancellation, coroutine created in the caller's thread);
- ``portal``: anyio's ``BlockingPortal.call`` (two cross-thread round trips per call);
- ``bridge``: fda-sync's bridge (every guard of RELIABILITY.md: PID check, running-loop
  check, contextvars copied, cancellation on interrupt, BaseExceptions carried).

First the round trip of one trivial call from one thread (median), then the throughput of
trivial calls from 1, 4, 16 and 64 threads at once. Then, for scale, whole sync API calls
(``with_fastapi_depends`` with one async yield dependency). Target: the bridge keeps at
least 70% of the bare loop's throughput at 64 threads. Never asserted by the tests.
"""

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from _pinning import add_cpu_option, pin  # bench/, next to this script
from anyio.from_thread import start_blocking_portal
from fastapi import Depends, FastAPI

from fda_sync import with_fastapi_depends
from fda_sync._bridge import get_bridge

THREADS = (1, 4, 16, 64)
TARGET = 0.70


async def noop() -> None:
    return None


@contextmanager
def bare_loop() -> Iterator[Callable[[], None]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call() -> None:
        asyncio.run_coroutine_threadsafe(noop(), loop).result()

    try:
        yield call
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@contextmanager
def portal() -> Iterator[Callable[[], None]]:
    with start_blocking_portal() as blocking_portal:

        def call() -> None:
            blocking_portal.call(noop)

        yield call


@contextmanager
def bridge() -> Iterator[Callable[[], None]]:
    run = get_bridge().run

    def call() -> None:
        run(noop)

    yield call


CONTENDERS: dict[str, Callable[[], Any]] = {"bare": bare_loop, "portal": portal, "bridge": bridge}


def throughput(call: Callable[[], None], threads: int, total: int) -> float:
    """Calls per second with ``threads`` threads sharing ``total`` calls."""
    per_thread = total // threads
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        start.wait()
        for _ in range(per_thread):
            call()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in workers:
        thread.join()
    return per_thread * threads / (time.perf_counter() - began)


def round_trip(call: Callable[[], None], calls: int) -> float:
    """Median microseconds of one call from one thread."""
    samples = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e6


def sync_api_calls() -> dict[str, Callable[[], None]]:
    app = FastAPI()

    async def resource() -> AsyncIterator[int]:
        yield 1

    Resource = Annotated[int, Depends(resource)]

    @with_fastapi_depends(app=app)
    def def_body(*, r: Resource) -> int:
        return r

    @with_fastapi_depends(app=app)
    async def async_body(*, r: Resource) -> int:
        return r

    return {"def body": def_body, "async def body": async_body}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, noisier figures")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    add_cpu_option(parser)
    options = parser.parse_args()
    pin(parser, options.cpu)
    total = 3_200 if options.quick else 12_800
    rounds = 1 if options.quick else options.rounds

    print(f"Python {sys.version.split()[0]}, {total} calls per measurement, median of {rounds}")
    print("\nRound trip of one trivial call, one thread (median, microseconds)")
    with bare_loop() as bare, portal() as anyio_portal, bridge() as ours:
        calls = {"bare": bare, "portal": anyio_portal, "bridge": ours}
        for call in calls.values():  # warm up
            throughput(call, 4, 400)
        for name, call in calls.items():
            print(f"  {name:<8}{round_trip(call, total // 4):>10.1f} us")

        print("\nThroughput, trivial calls (calls/s; bridge/bare ratio)")
        print(f"  {'threads':>7}{'bare':>10}{'portal':>10}{'bridge':>10}{'ratio':>8}")
        ratios = {}
        for threads in THREADS:
            figures: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(rounds):  # interleaved: the machine's noise hits all alike
                for name, call in calls.items():
                    figures[name].append(throughput(call, threads, total))
            median = {name: statistics.median(values) for name, values in figures.items()}
            ratios[threads] = median["bridge"] / median["bare"]
            print(
                f"  {threads:>7}{median['bare']:>10,.0f}{median['portal']:>10,.0f}"
                f"{median['bridge']:>10,.0f}{ratios[threads]:>8.0%}"
            )

    print("\nWhole sync API calls: with_fastapi_depends + one async yield dependency")
    print(f"  {'body':<16}{'round trip':>12}{'1 thread':>12}{'64 threads':>12}")
    for name, call in sync_api_calls().items():
        throughput(call, 4, 400)  # warm up
        one = throughput(call, 1, total // 4)
        many = throughput(call, 64, total // 4)
        print(f"  {name:<16}{round_trip(call, total // 8):>10.0f}us{one:>10,.0f}/s{many:>10,.0f}/s")

    verdict = "met" if ratios[64] >= TARGET else "MISSED"
    print(f"\nTarget: bridge >= {TARGET:.0%} of bare at 64 threads: {ratios[64]:.0%} ({verdict})")


if __name__ == "__main__":
    main()
