"""Per-call cost of the sync API on the graphs sync code writes, against the alternatives.

Run with ``nox -s bench`` (which installs fast-depends and fastapi-injectable and runs this
script as is, then pinned with ``--cpu 0``), or ``uv run python bench/bench_sync.py
[--cpu N]`` (contenders that are not installed are skipped).

The graph of FastAPI's tutorial: a ``def`` settings dependency, a ``def`` generator session
(set-up, teardown), a repository class; the body is ``def job(n, *, repo)``. Four graphs:

- ``def chain``: that graph alone;
- ``def chain + async``: plus an ``async def`` current user (the one async step);
- ``def chain + bearer``: plus FastAPI's ``HTTPBearer`` current user (its ``__call__`` is
  async; it reads the request's ``Authorization`` header), the common case;
- ``async chain``: the same graph all ``async def`` (an async generator session), body too.

Variants, each called from the main thread with no loop running, teardown included:

- ``floor``: the same graph written by hand; an async step is one
  ``asyncio.run_coroutine_threadsafe(...).result()`` on a loop in a daemon thread;
- ``sync``: ``fda_sync.with_fastapi_depends``, on the path it chooses (a ``def`` graph is
  driven from the caller's thread; the async chain runs on the bridge loop);
- ``loop``: the same, forced onto the bridge loop for every graph (the path all sync calls
  took before), and ``caller``: forced to be driven from the caller's thread;
- ``fast-depends``: ``fast_depends.inject`` on the same chain (its own ``Depends``; async
  graphs awaited through ``run_coroutine_threadsafe`` on a loop in a daemon thread);
- ``injectable``: ``fastapi_injectable.injectable``, sync, with its per-call cleanup.

Measured alongside, interleaved the same way: the bare round trip, one
``run_coroutine_threadsafe(...).result()`` of a trivial coroutine. Then the memory after
10,000 more sync calls. Targets are printed with the figures; the tests never assert them.

A second table (``_sync_apis.py``) measures the other sync APIs on the ``def`` chain and on
the chain with its ``async def`` user: ``iter_with_fastapi_depends``,
``resolve_fastapi_depends`` and ``FastApiDepsStack``. ``--only calls`` or ``--only apis``
runs one table.
"""

import argparse
import gc
import logging
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import Annotated, Any

import _sync_apis
from _measure import REPEATS, BareLoop, CountWarnings, Series, interleave, sync_sampler
from _pinning import add_cpu_option, pin
from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

import fda_sync
import fda_sync._api.decorators
from fda_core._graph.scope import build_scope, receive_no_body
from fda_sync._caller_path.walk import prefers_caller

try:
    import fast_depends
except ImportError:
    fast_depends = None  # type: ignore[assignment]

try:
    import fastapi_injectable
except ImportError:
    fastapi_injectable = None  # type: ignore[assignment]

app = FastAPI()
SCOPE = {"headers": {"authorization": "Bearer alice"}}


bare = BareLoop()


async def noop() -> None:
    return None


# --- the graphs --------------------------------------------------------------------------


class Settings:
    dsn = "sqlite://"


class Session:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.open = True

    def close(self) -> None:
        self.open = False


def get_settings() -> Settings:
    return Settings()


def get_db(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    db = Session(settings.dsn)
    try:
        yield db
    finally:
        db.close()


class Repo:
    def __init__(self, db: Annotated[Session, Depends(get_db)]) -> None:
        self.db = db


async def current_user() -> str:
    return "alice"


bearer = HTTPBearer()


def bearer_user(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> str:
    return credentials.credentials


async def async_settings() -> Settings:
    return Settings()


async def async_db(
    settings: Annotated[Settings, Depends(async_settings)],
) -> AsyncIterator[Session]:
    db = Session(settings.dsn)
    try:
        yield db
    finally:
        db.close()


class AsyncRepo:
    def __init__(self, db: Annotated[Session, Depends(async_db)]) -> None:
        self.db = db


def floor_def_chain(n: int) -> int:
    generator = get_db(get_settings())
    repo = Repo(next(generator))
    try:
        return n + len(repo.db.dsn)
    finally:
        for _ in generator:
            pass


def floor_with_async(n: int) -> int:
    generator = get_db(get_settings())
    repo = Repo(next(generator))
    try:
        user = bare.run(current_user())
        return n + len(repo.db.dsn) + len(user)
    finally:
        for _ in generator:
            pass


def floor_with_bearer(n: int) -> int:
    generator = get_db(get_settings())
    repo = Repo(next(generator))
    try:
        scope = build_scope(app=app, static=None, dynamic=SCOPE, lifespan_state=None)
        request = Request(scope, receive_no_body)
        credentials = bare.run(bearer(request))
        assert credentials is not None
        return n + len(repo.db.dsn) + len(credentials.credentials)
    finally:
        for _ in generator:
            pass


async def floor_async_job(n: int) -> int:
    generator = async_db(await async_settings())
    repo = AsyncRepo(await generator.__anext__())
    try:
        return n + len(repo.db.dsn)
    finally:
        async for _ in generator:
            pass


def floor_async_chain(n: int) -> int:
    return int(bare.run(floor_async_job(n)))


# --- the contenders ------------------------------------------------------------------------


def ours(graph: str) -> Callable[[int], Any]:
    if graph == "def chain":

        @fda_sync.with_fastapi_depends(app=app)
        def job(n: int, *, repo: Annotated[Repo, Depends()]) -> int:
            return n + len(repo.db.dsn)

        return job
    if graph == "def chain + async":

        @fda_sync.with_fastapi_depends(app=app)
        def job_user(
            n: int, *, repo: Annotated[Repo, Depends()], user: Annotated[str, Depends(current_user)]
        ) -> int:
            return n + len(repo.db.dsn) + len(user)

        return job_user
    if graph == "def chain + bearer":

        @fda_sync.with_fastapi_depends(app=app)
        def job_bearer(
            n: int, *, repo: Annotated[Repo, Depends()], user: Annotated[str, Depends(bearer_user)]
        ) -> int:
            return n + len(repo.db.dsn) + len(user)

        return lambda n: job_bearer(n, _scope=SCOPE)

    @fda_sync.with_fastapi_depends(app=app)
    async def async_job(n: int, *, repo: Annotated[AsyncRepo, Depends()]) -> int:
        return n + len(repo.db.dsn)

    return async_job


def forced(graph: str, path: str) -> Callable[[int], Any]:
    """``ours``, every call on ``path`` (decided at call time: patched around each call)."""
    return _sync_apis.forced(ours(graph), path)


def with_fast_depends(graph: str) -> Callable[[int], Any] | None:
    if fast_depends is None or graph == "def chain + bearer":
        return None  # it has no request to read a header from
    inject = fast_depends.inject

    def fd_get_db(settings: Settings = fast_depends.Depends(get_settings)) -> Iterator[Session]:
        db = Session(settings.dsn)
        try:
            yield db
        finally:
            db.close()

    class FdRepo:
        def __init__(self, db: Session = fast_depends.Depends(fd_get_db)) -> None:
            self.db = db

    if graph == "def chain":

        @inject
        def job(n: int, repo: FdRepo = fast_depends.Depends(FdRepo)) -> int:
            return n + len(repo.db.dsn)

        return job
    if graph == "def chain + async":

        @inject
        async def job_user(
            n: int,
            repo: FdRepo = fast_depends.Depends(FdRepo),
            user: str = fast_depends.Depends(current_user),
        ) -> int:
            return n + len(repo.db.dsn) + len(user)

        return lambda n: bare.run(job_user(n))

    async def fd_async_db(
        settings: Settings = fast_depends.Depends(async_settings),
    ) -> AsyncIterator[Session]:
        db = Session(settings.dsn)
        try:
            yield db
        finally:
            db.close()

    class FdAsyncRepo:
        def __init__(self, db: Session = fast_depends.Depends(fd_async_db)) -> None:
            self.db = db

    @inject
    async def async_job(n: int, repo: FdAsyncRepo = fast_depends.Depends(FdAsyncRepo)) -> int:
        return n + len(repo.db.dsn)

    return lambda n: bare.run(async_job(n))


def with_injectable(graph: str, calls: list[int]) -> Callable[[int], Any] | None:
    """Counts its calls in ``calls[0]``."""
    if fastapi_injectable is None or graph == "def chain + bearer":
        return None
    injectable = fastapi_injectable.injectable
    cleanup = fastapi_injectable.cleanup_exit_stack_of_func
    run = fastapi_injectable.run_coroutine_sync

    if graph == "def chain":

        @injectable(use_cache=False)
        def job(n: int, *, repo: Annotated[Repo, Depends()]) -> int:
            return n + len(repo.db.dsn)

    elif graph == "def chain + async":

        @injectable(use_cache=False)
        def job(  # type: ignore[misc]
            n: int, *, repo: Annotated[Repo, Depends()], user: Annotated[str, Depends(current_user)]
        ) -> int:
            return n + len(repo.db.dsn) + len(user)

    else:

        @injectable(use_cache=False)
        def job(n: int, *, repo: Annotated[AsyncRepo, Depends()]) -> int:  # type: ignore[misc]
            return n + len(repo.db.dsn)

    def call(n: int) -> Any:
        calls[0] += 1
        try:
            return job(n)
        finally:
            run(cleanup(job))

    return call


FLOORS = {
    "def chain": floor_def_chain,
    "def chain + async": floor_with_async,
    "def chain + bearer": floor_with_bearer,
    "async chain": floor_async_chain,
}
GRAPHS = list(FLOORS)
COLUMNS = ("floor", "sync", "loop", "caller", "fast-depends", "injectable")


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Row:
    graph: str
    path: str  # the one the sync API chose
    figures: dict[str, float]
    rcts: float
    warnings: int = 0
    first_warning: str = ""
    injectable_calls: int = 0


def measure(graph: str, warnings: CountWarnings) -> Row:
    injectable_calls = [0]
    contenders: dict[str, Callable[[int], Any] | None] = {
        "floor": FLOORS[graph],
        "sync": ours(graph),
        "loop": forced(graph, "loop"),
        "caller": forced(graph, "caller"),
        "fast-depends": with_fast_depends(graph),
        "injectable": with_injectable(graph, injectable_calls),
    }
    series = {
        name: Series(sync_sampler(lambda call=call: call(1)))
        for name, call in contenders.items()
        if call is not None
    }
    series["rcts"] = Series(sync_sampler(lambda: bare.run(noop())))
    warnings.count, warnings.first = 0, ""
    interleave(list(series.values()))
    figures = {name: one.per_call for name, one in series.items() if name != "rcts"}
    return Row(
        graph,
        path=chosen_path(graph),
        figures=figures,
        rcts=series["rcts"].per_call,
        warnings=warnings.count,
        first_warning=warnings.first,
        injectable_calls=injectable_calls[0],
    )


def chosen_path(graph: str) -> str:
    """Which path the sync API takes for ``graph`` (asked of its own choice)."""
    seen: list[bool] = []
    module: Any = fda_sync._api.decorators

    def spy(plan: Any, body_is_async: bool) -> bool:
        seen.append(prefers_caller(plan, body_is_async))
        return seen[-1]

    module.prefers_caller = spy
    try:
        ours(graph)(1)
    finally:
        module.prefers_caller = prefers_caller
    return "caller" if seen[-1] else "loop"


def memory_growth(call: Callable[[int], Any]) -> float:
    """KiB still allocated after 10,000 more calls, once caches are warm."""
    for _ in range(1000):
        call(1)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(10_000):
        call(1)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / 1024


def cell(value: float | None, floor: float) -> str:
    if value is None:
        return "n/a"
    ratio = value / floor
    return f"{value:.1f} ({ratio:.1f}x)" if ratio < 100 else f"{value:.0f} ({ratio:.0f}x)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cpu_option(parser)
    parser.add_argument(
        "--only", choices=("calls", "apis"), help="run one table: decorated calls, other APIs"
    )
    options = parser.parse_args()
    pin(parser, options.cpu)
    if options.only == "apis":
        try:
            api_rows = measure_apis()
        finally:
            bare.close()
        _sync_apis.report(api_rows, cell)
        return 0
    versions = {
        name: version(name) if module else "absent"
        for name, module in (
            ("fast-depends", fast_depends),
            ("fastapi-injectable", fastapi_injectable),
        )
    }
    print(
        f"Python {sys.version.split()[0]}, fastapi {version('fastapi')}, "
        + ", ".join(f"{name} {v}" for name, v in versions.items())
        + f"; {REPEATS} samples per variant\n"
    )
    warnings = CountWarnings()
    injectable_logger = logging.getLogger("fastapi_injectable")
    injectable_logger.addHandler(warnings)
    injectable_logger.propagate = False
    try:
        rows = [measure(graph, warnings) for graph in GRAPHS]
        growth = memory_growth(ours("def chain"))
        mixed_growth = memory_growth(ours("def chain + bearer"))
        api_rows = measure_apis() if options.only is None else []
    finally:
        bare.close()

    print("per call, us (median), ratio to the hand-built floor; 'sync' takes the path shown")
    print(f"{'graph':<20}{'path':>8}" + "".join(f"{c:>18}" for c in COLUMNS))
    for row in rows:
        values = [row.figures.get(c) for c in COLUMNS]
        mark = "!" if row.warnings else ""
        print(
            f"{row.graph:<20}{row.path:>8}"
            + "".join(f"{cell(v, row.figures['floor']):>18}" for v in values[:-1])
            + f"{cell(values[-1], row.figures['floor']) + mark:>18}"
        )
    rcts = [row.rcts for row in rows]
    print(f"bare run_coroutine_threadsafe round trip: {' / '.join(f'{r:.1f}' for r in rcts)} us")
    for row in rows:
        if row.warnings:
            print(
                f"! {row.graph}: fastapi-injectable logged {row.warnings} warnings in "
                f"{row.injectable_calls} calls:\n    {row.first_warning}"
            )

    by_graph = {row.graph: row for row in rows}
    failures = []
    chain = by_graph["def chain"].figures
    if "fast-depends" in chain and chain["sync"] > 0.5 * chain["fast-depends"]:
        failures.append(
            f"def chain: {chain['sync'] / chain['fast-depends']:.2f}x fast-depends (target <= 0.5x)"
        )
    if chain["sync"] > 10 * chain["floor"]:
        failures.append(
            f"def chain: {chain['sync'] / chain['floor']:.1f}x the floor (target <= 10x)"
        )
    for graph in ("def chain + async", "def chain + bearer"):
        row = by_graph[graph]
        budget = chain["sync"] + row.rcts
        if row.figures["sync"] > budget:
            failures.append(
                f"{graph}: {row.figures['sync']:.1f} us > def chain {chain['sync']:.1f} us + one "
                f"bare round trip {row.rcts:.1f} us"
            )
    print(
        f"\nmemory after 10,000 more sync calls: def chain {growth:+.1f} KiB, "
        f"def chain + bearer {mixed_growth:+.1f} KiB (target: no growth)"
    )
    for name, value in (("def chain", growth), ("def chain + bearer", mixed_growth)):
        if value > 64:
            failures.append(f"{name}: memory grew by {value:.1f} KiB over 10,000 calls")
    print("\n" + ("\n".join(f"MISSED: {f}" for f in failures) or "all targets met"))
    if api_rows:
        _sync_apis.report(api_rows, cell)
    return 0


def measure_apis() -> list[_sync_apis.Row]:
    floors = {graph: FLOORS[graph] for graph in _sync_apis.GRAPHS}
    return _sync_apis.measure(floors, Repo, current_user, app)


if __name__ == "__main__":
    sys.exit(main())
