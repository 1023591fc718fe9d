"""Memory over many calls on each path: what a long-running worker would see grow.

For each path, after a warm-up of 10,000 calls, ``--calls`` more calls (default 100,000)
in blocks of 10,000; after each block (and a garbage collection) the process's resident
set size (RSS, from ``/proc/self/statm``) and the bytes ``tracemalloc`` sees allocated.
Reported: the growth per 10,000 calls (median of the blocks), and over the whole run.

The paths, on the graph of FastAPI's tutorial (settings, a generator session, a
repository class):

- ``sync, caller path``: ``fda_sync.with_fastapi_depends`` on the ``def`` graph, driven
  from the caller's thread;
- ``sync, loop path``: the same on the ``async def`` graph, one task on the bridge loop
  per call;
- ``async``: ``fda_core.with_fastapi_depends`` on the ``async def`` graph, awaited on
  one loop.

    uv run python bench/bench_memory.py [--calls 100000] [--cpu N] [--page docs/benchmarks.md]
"""

import argparse
import asyncio
import gc
import itertools
import os
import statistics
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from _page import write_table
from _pinning import add_cpu_option, pin
from fastapi import Depends, FastAPI

import fda_core
import fda_sync

BLOCK = 10_000
WARMUP = 10_000
#: Flat: what a block may add, once warm (RSS moves by whole pages, and the allocator
#: keeps freed memory for reuse).
TARGET_TRACED = 1024
TARGET_RSS = 64 * 1024

app = FastAPI()


class Session:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn


def settings() -> str:
    return "sqlite://"


def session(dsn: Annotated[str, Depends(settings)]) -> Iterator[Session]:
    yield Session(dsn)


class Repo:
    def __init__(self, db: Annotated[Session, Depends(session)]) -> None:
        self.db = db


async def asettings() -> str:
    return "sqlite://"


async def asession(dsn: Annotated[str, Depends(asettings)]) -> AsyncIterator[Session]:
    yield Session(dsn)


class ARepo:
    def __init__(self, db: Annotated[Session, Depends(asession)]) -> None:
        self.db = db


@fda_sync.with_fastapi_depends(app=app)
def sync_def(n: int, *, repo: Annotated[Repo, Depends()]) -> int:
    return n + len(repo.db.dsn)


@fda_sync.with_fastapi_depends(app=app)
async def sync_async(n: int, *, repo: Annotated[ARepo, Depends()]) -> int:
    return n + len(repo.db.dsn)


@fda_core.with_fastapi_depends(app=app)
async def async_job(n: int, *, repo: Annotated[ARepo, Depends()]) -> int:
    return n + len(repo.db.dsn)


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


_PAGE = os.sysconf("SC_PAGE_SIZE")


def run_blocks(block: Callable[[int], Any], calls: int) -> tuple[list[int], list[int]]:
    """RSS and traced bytes after the warm-up and after each block of calls."""
    block(WARMUP)
    gc.collect()
    tracemalloc.start()
    sizes, traced = [rss()], [tracemalloc.get_traced_memory()[0]]
    for _ in range(calls // BLOCK):
        block(BLOCK)
        gc.collect()
        sizes.append(rss())
        traced.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    return sizes, traced


def sync_block(call: Callable[[int], Any]) -> Callable[[int], Any]:
    def block(count: int) -> None:
        for _ in range(count):
            call(1)

    return block


#: The async path's loop, kept across blocks as an app keeps its loop (a new loop per
#: block would count each loop's own start-up).
LOOP = asyncio.new_event_loop()


def async_block(count: int) -> None:
    async def many() -> None:
        for _ in range(count):
            await async_job(1)

    LOOP.run_until_complete(many())


PATHS: dict[str, Callable[[int], Any]] = {
    "sync, caller path": sync_block(sync_def),
    "sync, loop path": sync_block(sync_async),
    "async": async_block,
}


def growth(values: list[int]) -> tuple[float, int]:
    """Median growth per block, and the growth over the whole run."""
    steps = [after - before for before, after in itertools.pairwise(values)]
    return statistics.median(steps), values[-1] - values[0]


def kib(value: float) -> str:
    return f"{value / 1024:+.1f} KiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--page", type=Path, help="write the table into this page")
    add_cpu_option(parser)
    args = parser.parse_args()
    pin(parser, args.cpu)
    lines = [
        f"Memory after a warm-up of {WARMUP:,} calls, over {args.calls:,} more "
        f"(Python {sys.version.split()[0]}):",
        "",
        "| path | RSS per 10k calls | RSS over the run | traced per 10k calls | traced over the "
        "run |",
        "|---|---:|---:|---:|---:|",
    ]
    failures = []
    for name, block in PATHS.items():
        sizes, traced = run_blocks(block, args.calls)
        rss_step, rss_total = growth(sizes)
        traced_step, traced_total = growth(traced)
        lines.append(
            f"| {name} | {kib(rss_step)} | {kib(rss_total)} | {kib(traced_step)} | "
            f"{kib(traced_total)} |"
        )
        if traced_step > TARGET_TRACED or rss_step > TARGET_RSS:
            failures.append(f"{name}: grows by {kib(traced_step)} traced, {kib(rss_step)} RSS")
    text = "\n".join(lines)
    print(text)
    print("\n" + ("\n".join(f"MISSED: {f}" for f in failures) or "all targets met (flat)"))
    if args.page is not None:
        write_table(args.page, "memory", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
