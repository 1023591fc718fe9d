"""Per-call cost of resolving dependencies outside a request, against the alternatives.

Run with ``nox -s bench`` (which installs fastapi-injectable for the comparison and runs
this script twice: as is, then pinned with ``--cpu 0``), or
``uv run python bench/bench_resolution.py [--cpu N]`` (fastapi-injectable is then skipped
if absent).

For each graph, the median per-call time (teardown included) of:

- ``floor``: the same graph written by hand (an ``AsyncExitStack`` and direct calls);
- ``fastapi``: FastAPI's own resolver, ``solve_dependencies``, on a cached ``Dependant``;
- ``async``: ``fda_core.with_fastapi_depends``;
- ``sync``: ``fda_sync.with_fastapi_depends`` called from the main thread, no loop running;
- ``injectable``: ``fastapi_injectable.injectable`` with its per-call cleanup.

How: each variant is warmed up, and its calls per sample are chosen from the warm-up so
that one sample takes about 0.15 s (at least 20 calls; BENCH_SCALE multiplies both). A
graph's BENCH_REPEATS samples (default 7) are taken round-robin across its variants, the
starting variant rotating, so the machine's drift hits all variants alike; the table shows
medians. Each async variant runs on its own event loop in the main thread, kept across its
samples: loop start-up is never timed.

Measured alongside, interleaved the same way: the thread-hop floor, one round trip between
the main thread and a helper thread (a ``threading.Lock`` ping-pong). Every sync bridge
call makes at least one such round trip, so the bridge's cost over async is also shown
against it. On a VM, waking a thread on another vCPU can cost tens of microseconds more
than on the same one, and varies with the host; ``--cpu N`` (or BENCH_CPU=N) pins the
whole process to one CPU before any measurement, which removes that cost (pyperf pins for
the same reason). A ``!`` after a fastapi-injectable figure means it logged a failure (its
teardown did not complete) during the calls measured; the first message is printed.

Then the import time ``fda_core`` adds to ``fastapi``, and memory after 10,000 calls.
Targets are printed with the figures; they are never asserted by the test suite.
"""

import argparse
import asyncio
import gc
import logging
import statistics
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Annotated, Any

from _fastapi import resolver
from _measure import (  # bench/, next to this script
    MIN_CALLS,
    REPEATS,
    SAMPLE_SECONDS,
    CountWarnings,
    LoopSampler,
    Series,
    ThreadHop,
    interleave,
    sync_sampler,
)
from _pinning import add_cpu_option, pin
from fastapi import Depends, FastAPI, Header
from starlette.concurrency import run_in_threadpool

from fda_core import configure, with_fastapi_depends

try:
    import fda_sync
except ImportError:  # pragma: no cover - the core-only install
    fda_sync = None  # type: ignore[assignment]

try:
    import fastapi_injectable
except ImportError:
    fastapi_injectable = None  # type: ignore[assignment]

# --- the graphs -------------------------------------------------------------------------


async def settings() -> dict[str, str]:
    return {"dsn": "sqlite://"}


def sync_settings() -> dict[str, str]:
    return {"dsn": "sqlite://"}


async def db(cfg: Annotated[dict[str, str], Depends(settings)]) -> AsyncIterator[str]:
    yield f"db:{cfg['dsn']}"


async def db_sync_settings(
    cfg: Annotated[dict[str, str], Depends(sync_settings)],
) -> AsyncIterator[str]:
    yield f"db:{cfg['dsn']}"


async def repo(conn: Annotated[str, Depends(db)]) -> str:
    return f"repo({conn})"


async def repo_sync(conn: Annotated[str, Depends(db_sync_settings)]) -> str:
    return f"repo({conn})"


async def current_user(authorization: Annotated[str, Header()]) -> str:
    return authorization.removeprefix("Bearer ")


async def repo_for_user(
    conn: Annotated[str, Depends(db)], user: Annotated[str, Depends(current_user)]
) -> str:
    return f"repo({conn}, {user})"


def _layered(count: int) -> list[Callable[..., Any]]:
    """``count`` async nodes; node i depends on nodes i-1 and i-3 (a shared-node DAG)."""
    nodes: list[Callable[..., Any]] = []
    for i in range(count):
        deps = [j for j in (i - 1, i - 3) if j >= 0]
        namespace: dict[str, Any] = {"Annotated": Annotated, "Depends": Depends, "nodes": nodes}
        params = ", ".join(f"d{j}: Annotated[int, Depends(nodes[{j}])]" for j in deps)
        body = " + ".join(f"d{j}" for j in deps) or "1"
        exec(f"async def n{i}({params}) -> int:\n    return {body}", namespace)
        nodes.append(namespace[f"n{i}"])
    return nodes


NODES = _layered(20)


@dataclass
class Graph:
    name: str
    dependency: Callable[..., Any]
    floor: Callable[[], Awaitable[Any]]
    request_free: bool
    scope: dict[str, Any] | None = None


db_cm = asynccontextmanager(db)
db_sync_cm = asynccontextmanager(db_sync_settings)


async def floor_chain() -> Any:
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(db_cm(await settings()))
        return await repo(conn)


async def floor_chain_sync() -> Any:
    async with AsyncExitStack() as stack:
        cfg = await run_in_threadpool(sync_settings)
        conn = await stack.enter_async_context(db_sync_cm(cfg))
        return await repo_sync(conn)


async def floor_header() -> Any:
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(db_cm(await settings()))
        user = await current_user("Bearer alice")
        return await repo_for_user(conn, user)


async def floor_layered() -> Any:
    values: list[int] = []
    for i, node in enumerate(NODES):
        values.append(await node(*[values[j] for j in (i - 1, i - 3) if j >= 0]))
    return values[-1]


GRAPHS = [
    Graph("chain (async gen)", repo, floor_chain, request_free=True),
    Graph("chain + sync dep", repo_sync, floor_chain_sync, request_free=True),
    Graph(
        "chain + Header",
        repo_for_user,
        floor_header,
        request_free=False,
        scope={"headers": {"authorization": "Bearer alice"}},
    ),
    Graph("20-node graph", NODES[-1], floor_layered, request_free=True),
]


# --- the contenders ---------------------------------------------------------------------

app = FastAPI()
configure(app=app)


def ours(graph: Graph) -> Callable[[], Awaitable[Any]]:
    dependency = graph.dependency

    @with_fastapi_depends
    async def job(*, value: Annotated[Any, Depends(dependency)]) -> Any:
        return value

    if graph.scope is None:
        return job
    return lambda: job(_scope=graph.scope)


def fastapi_resolver(graph: Graph) -> Callable[[], Awaitable[Any]]:
    """What an app would write with FastAPI's resolver, the Dependant built once."""
    dependency = graph.dependency

    async def endpoint(value: Annotated[Any, Depends(dependency)]) -> Any:
        return value

    return resolver(app, endpoint, scope=graph.scope)


def injectable(graph: Graph, calls: list[int]) -> Callable[[], Awaitable[Any]] | None:
    """Counts its calls in ``calls[0]``."""
    if fastapi_injectable is None or not graph.request_free:
        return None  # it has no request to read a header from
    dependency = graph.dependency

    @fastapi_injectable.injectable(use_cache=False)
    async def job(value: Annotated[Any, Depends(dependency)]) -> Any:
        return value

    async def call() -> Any:
        calls[0] += 1
        try:
            return await job()
        finally:
            await fastapi_injectable.cleanup_exit_stack_of_func(job)

    return call


def sync_bridge(graph: Graph) -> Callable[[], Any] | None:
    if fda_sync is None:
        return None
    dependency = graph.dependency

    @fda_sync.with_fastapi_depends
    async def job(*, value: Annotated[Any, Depends(dependency)]) -> Any:
        return value

    if graph.scope is None:
        return job
    return lambda: job(_scope=graph.scope)


@dataclass
class Row:
    name: str
    floor: float
    fastapi: float
    mine: float
    bridge: float | None
    other: float | None
    hop: float
    counts: dict[str, int]
    request_free: bool
    #: What fastapi-injectable logged (count, first message) during its calls.
    other_warnings: int = 0
    other_first: str = ""
    other_calls: int = 0


def measure(graph: Graph, hop: ThreadHop, warnings: CountWarnings) -> Row:
    loops: list[LoopSampler] = []

    def on_loop(call: Callable[[], Awaitable[Any]]) -> Series:
        loops.append(LoopSampler(call))
        return Series(loops[-1])

    series = {
        "floor": on_loop(graph.floor),
        "fastapi": on_loop(fastapi_resolver(graph)),
        "async": on_loop(ours(graph)),
    }
    bridge_call = sync_bridge(graph)
    if bridge_call is not None:
        series["sync"] = Series(sync_sampler(bridge_call))
    injectable_calls = [0]
    injectable_call = injectable(graph, injectable_calls)
    if injectable_call is not None:
        series["injectable"] = on_loop(injectable_call)
    series["hop"] = Series(sync_sampler(hop))
    warnings.count, warnings.first = 0, ""
    try:
        interleave(list(series.values()))
    finally:
        for sampler in loops:
            sampler.close()
    median = {name: one.per_call for name, one in series.items()}
    return Row(
        graph.name,
        floor=median["floor"],
        fastapi=median["fastapi"],
        mine=median["async"],
        bridge=median.get("sync"),
        other=median.get("injectable"),
        hop=median["hop"],
        counts={name: one.count for name, one in series.items()},
        request_free=graph.request_free,
        other_warnings=warnings.count,
        other_first=warnings.first,
        other_calls=injectable_calls[0],
    )


def import_overhead() -> tuple[float, float]:
    """Median seconds of ``import fastapi`` and of ``import fda_core`` after it."""

    def run(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        return float(out)

    timer = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    fastapi_times = [run(timer.format("import fastapi")) for _ in range(REPEATS)]
    ours_times = [run("import fastapi; " + timer.format("import fda_core")) for _ in range(REPEATS)]
    return statistics.median(fastapi_times), statistics.median(ours_times)


async def memory_growth(call: Callable[[], Awaitable[Any]]) -> float:
    """KiB still allocated after 10,000 more calls, once caches are warm."""
    for _ in range(1000):
        await call()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(10_000):
        await call()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cpu_option(parser)
    pin(parser, parser.parse_args().cpu)
    other_version = version("fastapi-injectable") if fastapi_injectable else "absent"
    print(
        f"Python {sys.version.split()[0]}, fastapi {version('fastapi')}, "
        f"fastapi-injectable {other_version}; {REPEATS} samples per variant, "
        f"~{SAMPLE_SECONDS:.2f} s each (>= {MIN_CALLS} calls)\n"
    )
    warnings = CountWarnings()
    injectable_logger = logging.getLogger("fastapi_injectable")
    injectable_logger.addHandler(warnings)
    injectable_logger.propagate = False
    hop = ThreadHop()
    try:
        rows = [measure(graph, hop, warnings) for graph in GRAPHS]
    finally:
        hop.close()

    failures = []
    for row in rows:
        if row.request_free and row.mine > 3 * row.floor:
            failures.append(
                f"{row.name}: async {row.mine / row.floor:.1f}x the floor (target <= 3x)"
            )
        if row.mine > row.fastapi:
            failures.append(f"{row.name}: slower than FastAPI's resolver")
        if row.bridge is not None and row.bridge > 3 * row.mine:
            failures.append(
                f"{row.name}: sync bridge {row.bridge / row.mine:.1f}x async (target <= 3x)"
            )
        if row.other is not None and row.other < 5 * row.mine:
            failures.append(f"{row.name}: only {row.other / row.mine:.1f}x faster than injectable")

    def cell(value: float | None, floor: float, mark: str = "") -> str:
        if value is None:
            return "n/a"
        ratio = value / floor
        return (
            f"{value:.1f} ({ratio:4.1f}x){mark}"
            if ratio < 100
            else f"{value:.1f} ({ratio:.0f}x){mark}"
        )

    print(f"per call, us (median of {REPEATS}), ratio to the hand-built floor")
    header = ("graph", "floor", "fastapi", "async", "sync bridge", "injectable")
    print(f"{header[0]:<20}" + f"{header[1]:>10}" + "".join(f"{h:>20}" for h in header[2:]))
    for row in rows:
        mark = "!" if row.other_warnings else ""
        print(
            f"{row.name:<20}{row.floor:>10.1f}"
            + "".join(f"{cell(v, row.floor):>20}" for v in (row.fastapi, row.mine, row.bridge))
            + f"{cell(row.other, row.floor, mark):>20}"
        )
    hops = [row.hop for row in rows]
    print(
        f"thread-hop floor: {statistics.median(hops):.1f} us, one round trip main thread -> "
        f"helper thread -> main thread\n  (threading.Lock ping-pong, sampled with each graph: "
        f"{' / '.join(f'{h:.1f}' for h in hops)} us)"
    )
    for row in rows:
        if row.other_warnings:
            print(
                f"! {row.name}: fastapi-injectable logged {row.other_warnings} warnings in "
                f"{row.other_calls} calls, its teardown did not complete:\n    {row.other_first}"
            )
    names = list(rows[0].counts)
    print(f"calls per sample ({' / '.join(names)}):")
    for row in rows:
        print(f"  {row.name:<20}" + " / ".join(str(row.counts.get(n, "-")) for n in names))

    if any(row.bridge is not None for row in rows):
        print("\nsync bridge against async (target: <= 3x), and what it adds over the hop floor")
        for row in rows:
            if row.bridge is None:
                continue
            extra = row.bridge - row.mine
            print(
                f"  {row.name:<20}{row.bridge / row.mine:4.1f}x async; bridge - async "
                f"{extra:6.1f} us = {extra / row.hop:4.1f}x the thread-hop floor "
                f"({row.hop:.1f} us), {extra - row.hop:+7.1f} us on top of it"
            )

    fastapi_import, ours_import = import_overhead()
    share = ours_import / fastapi_import
    print(
        f"\nimport fastapi {fastapi_import * 1e3:.1f} ms; import fda_core after it "
        f"+{ours_import * 1e3:.1f} ms ({share:.0%}, target <= 20%)"
    )
    if share > 0.2:
        failures.append(f"import fda_core adds {share:.0%} to import fastapi")

    growth = asyncio.run(memory_growth(ours(GRAPHS[0])))
    print(f"memory after 10,000 more async calls: {growth:+.1f} KiB (target: no growth)")
    if growth > 64:
        failures.append(f"memory grew by {growth:.1f} KiB over 10,000 calls")

    print("\n" + ("\n".join(f"MISSED: {f}" for f in failures) or "all targets met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
