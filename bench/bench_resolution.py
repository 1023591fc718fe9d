"""Per-call cost of resolving dependencies outside a request, against the alternatives.

Run with ``nox -s bench`` (which installs fastapi-injectable for the comparison), or
``uv run python bench/bench_resolution.py`` (fastapi-injectable is then skipped if absent).

For each graph, the median per-call time (teardown included) of:

- ``floor``: the same graph written by hand (an ``AsyncExitStack`` and direct calls);
- ``fastapi``: FastAPI's own resolver, ``solve_dependencies``, on a cached ``Dependant``;
- ``async``: ``fda_core.with_fastapi_depends``;
- ``sync``: ``fda_sync.with_fastapi_depends`` called from a plain thread;
- ``injectable``: ``fastapi_injectable.injectable`` with its per-call cleanup.

Then the import time ``fda_core`` adds to ``fastapi``, and memory after 10,000 calls.
Targets are printed with the figures; they are never asserted by the test suite.
"""

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fda_core import _compat, configure, with_fastapi_depends
from fda_core._scope import build_scope, receive_no_body

try:
    import fda_sync
except ImportError:  # pragma: no cover - the core-only install
    fda_sync = None  # type: ignore[assignment]

try:
    import fastapi_injectable
except ImportError:
    fastapi_injectable = None  # type: ignore[assignment]

REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
SCALE = float(os.environ.get("BENCH_SCALE", "1"))


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

    dependant = _compat.build_dependant(endpoint)

    async def call() -> Any:
        scope = build_scope(app=app, static=None, dynamic=graph.scope, lifespan_state=None)
        async with AsyncExitStack() as request_stack, AsyncExitStack() as function_stack:
            _compat.install_exit_stacks(
                scope, request_stack=request_stack, function_stack=function_stack
            )
            solved = await _compat.solve(
                request=Request(scope, receive_no_body),
                dependant=dependant,
                exit_stack=request_stack,
                dependency_cache={},
                dependency_overrides_provider=app,
            )
            return await endpoint(**solved.values)

    return call


def injectable(graph: Graph) -> Callable[[], Awaitable[Any]] | None:
    if fastapi_injectable is None or not graph.request_free:
        return None  # it has no request to read a header from
    dependency = graph.dependency

    @fastapi_injectable.injectable(use_cache=False)
    async def job(value: Annotated[Any, Depends(dependency)]) -> Any:
        return value

    async def call() -> Any:
        try:
            return await job()
        finally:
            await fastapi_injectable.cleanup_exit_stack_of_func(job)

    return call


# --- measuring --------------------------------------------------------------------------


async def per_call_async(call: Callable[[], Awaitable[Any]], count: int) -> float:
    for _ in range(max(50, count // 10)):
        await call()
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(count):
            await call()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


def per_call_sync(call: Callable[[], Any], count: int) -> float:
    for _ in range(max(50, count // 10)):
        call()
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(count):
            call()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


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
    rows = []
    failures = []
    count = int(2000 * SCALE)
    for graph in GRAPHS:
        floor = asyncio.run(per_call_async(graph.floor, count))
        fastapi = asyncio.run(per_call_async(fastapi_resolver(graph), count))
        mine = asyncio.run(per_call_async(ours(graph), count))
        bridge_call = sync_bridge(graph)
        bridge = per_call_sync(bridge_call, count) if bridge_call else None
        injectable_call = injectable(graph)
        other = (
            asyncio.run(per_call_async(injectable_call, max(100, count // 10)))
            if injectable_call
            else None
        )
        rows.append((graph.name, floor, fastapi, mine, bridge, other))
        if graph.request_free and mine > 3 * floor:
            failures.append(f"{graph.name}: async {mine / floor:.1f}x the floor (target <= 3x)")
        if mine > fastapi:
            failures.append(f"{graph.name}: slower than FastAPI's resolver")
        if bridge is not None and bridge > 3 * mine:
            failures.append(f"{graph.name}: sync bridge {bridge / mine:.1f}x async (target <= 3x)")
        if other is not None and other < 5 * mine:
            failures.append(f"{graph.name}: only {other / mine:.1f}x faster than injectable")

    def cell(value: float | None, floor: float) -> str:
        return "n/a" if value is None else f"{value:8.1f} ({value / floor:4.1f}x)"

    print(f"per call, us (median of {REPEATS}), ratio to the hand-built floor")
    header = ("graph", "floor", "fastapi", "async", "sync bridge", "injectable")
    print(f"{header[0]:<20}" + "".join(f"{h:>18}" for h in header[1:]))
    for name, floor, *others in rows:
        print(f"{name:<20}{floor:>18.1f}" + "".join(f"{cell(v, floor):>18}" for v in others))

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
