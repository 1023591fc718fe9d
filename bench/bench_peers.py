"""Per-call cost of this library against its peers on the same graphs: the benchmark page.

Run with ``nox -s bench`` (which installs the peers: fast-depends, fastapi-injectable,
dishka) or ``uv run --group bench python bench/bench_peers.py [--cpu N] [--page PATH]``.
It prints the markdown table of ``docs/benchmarks.md``; ``--page docs/benchmarks.md``
writes it there (``_page``).

Four graphs, each written once per API (a ``def`` body from sync code, an ``async def``
body awaited on a loop), with teardown on every call:

- ``all-def chain``: a ``def`` settings dependency, a ``def`` generator session, a
  repository class (FastAPI's tutorial graph);
- ``mixed chain``: that graph plus an ``async def`` current user;
- ``async chain``: the same graph all ``async def`` (an async generator session);
- ``yield chain``: three generator dependencies, each on the one before (engine,
  connection, transaction), ``def`` generators for the sync API, ``async def`` ones for
  the async API.

Contenders: this library (``fda_sync`` / ``fda_core.with_fastapi_depends``); FastAPI's own
resolver (``solve_dependencies`` on a cached ``Dependant``, async only: it needs a loop);
fastapi-injectable (``injectable`` with its per-call cleanup); fast-depends (``inject``);
dishka (a container scope entered per call, the graph's top object got from it); and the
hand-built floor. A sync contender that must await (fast-depends or dishka on a graph with
async steps) does so through ``run_coroutine_threadsafe`` on a loop in a daemon thread, as
the floor does. Samples are interleaved across the contenders of a row (``_measure``).
"""

import argparse
import datetime
import logging
import os
import platform
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, NewType

from _fastapi import resolver
from _measure import (
    REPEATS,
    BareLoop,
    CountWarnings,
    LoopSampler,
    Series,
    interleave,
    sync_sampler,
)
from _page import write_table
from _pinning import add_cpu_option, pin
from fastapi import Depends, FastAPI

import fda_core
import fda_sync

try:
    import fast_depends
except ImportError:
    fast_depends = None  # type: ignore[assignment]
try:
    import fastapi_injectable
except ImportError:
    fastapi_injectable = None  # type: ignore[assignment]
try:
    import dishka
except ImportError:
    dishka = None  # type: ignore[assignment]

app = FastAPI()
GRAPHS = ("all-def chain", "mixed chain", "async chain", "yield chain")
APIS = ("sync", "async")
PEERS = ("fastapi", "injectable", "fast-depends", "dishka")
TITLES = {
    "ours": "fastapi-depends-anywhere",
    "fastapi": "FastAPI's resolver",
    "injectable": "fastapi-injectable",
    "fast-depends": "fast-depends",
    "dishka": "dishka",
    "floor": "hand-built",
}


bare = BareLoop()


# --- the graphs' parts -------------------------------------------------------------------


class Settings:
    dsn = "sqlite://"


class Session:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.open = True

    def close(self) -> None:
        self.open = False


class Layer:
    """A yield chain's resource: opened on set-up, closed on teardown."""

    def __init__(self, parent: "Layer | None") -> None:
        self.depth = 1 if parent is None else parent.depth + 1
        self.open = True


def get_settings() -> Settings:
    return Settings()


async def aget_settings() -> Settings:
    return Settings()


async def get_user() -> str:
    return "alice"


def _session(settings: Settings) -> Iterator[Session]:
    db = Session(settings.dsn)
    try:
        yield db
    finally:
        db.close()


async def _asession(settings: Settings) -> AsyncIterator[Session]:
    db = Session(settings.dsn)
    try:
        yield db
    finally:
        db.close()


def _layer(parent: Layer | None) -> Iterator[Layer]:
    layer = Layer(parent)
    try:
        yield layer
    finally:
        layer.open = False


async def _alayer(parent: Layer | None) -> AsyncIterator[Layer]:
    layer = Layer(parent)
    try:
        yield layer
    finally:
        layer.open = False


# --- FastAPI's flavour: this library, FastAPI's resolver, fastapi-injectable ---------------


def get_db(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    yield from _session(settings)


async def aget_db(settings: Annotated[Settings, Depends(aget_settings)]) -> AsyncIterator[Session]:
    async for db in _asession(settings):
        yield db


class Repo:
    def __init__(self, db: Annotated[Session, Depends(get_db)]) -> None:
        self.db = db


class ARepo:
    def __init__(self, db: Annotated[Session, Depends(aget_db)]) -> None:
        self.db = db


def engine() -> Iterator[Layer]:
    yield from _layer(None)


def connection(parent: Annotated[Layer, Depends(engine)]) -> Iterator[Layer]:
    yield from _layer(parent)


def transaction(parent: Annotated[Layer, Depends(connection)]) -> Iterator[Layer]:
    yield from _layer(parent)


async def aengine() -> AsyncIterator[Layer]:
    async for layer in _alayer(None):
        yield layer


async def aconnection(parent: Annotated[Layer, Depends(aengine)]) -> AsyncIterator[Layer]:
    async for layer in _alayer(parent):
        yield layer


async def atransaction(parent: Annotated[Layer, Depends(aconnection)]) -> AsyncIterator[Layer]:
    async for layer in _alayer(parent):
        yield layer


def def_chain(n: int, *, repo: Annotated[Repo, Depends()]) -> int:
    return n + len(repo.db.dsn)


async def adef_chain(n: int, *, repo: Annotated[Repo, Depends()]) -> int:
    return n + len(repo.db.dsn)


def mixed_chain(
    n: int, *, repo: Annotated[Repo, Depends()], user: Annotated[str, Depends(get_user)]
) -> int:
    return n + len(repo.db.dsn) + len(user)


async def amixed_chain(
    n: int, *, repo: Annotated[Repo, Depends()], user: Annotated[str, Depends(get_user)]
) -> int:
    return n + len(repo.db.dsn) + len(user)


def async_chain(n: int, *, repo: Annotated[ARepo, Depends()]) -> int:
    return n + len(repo.db.dsn)


async def aasync_chain(n: int, *, repo: Annotated[ARepo, Depends()]) -> int:
    return n + len(repo.db.dsn)


def yield_chain(n: int, *, tx: Annotated[Layer, Depends(transaction)]) -> int:
    return n + tx.depth


async def ayield_chain(n: int, *, tx: Annotated[Layer, Depends(atransaction)]) -> int:
    return n + tx.depth


BODIES: dict[tuple[str, str], Callable[..., Any]] = {
    ("all-def chain", "sync"): def_chain,
    ("all-def chain", "async"): adef_chain,
    ("mixed chain", "sync"): mixed_chain,
    ("mixed chain", "async"): amixed_chain,
    ("async chain", "sync"): async_chain,
    ("async chain", "async"): aasync_chain,
    ("yield chain", "sync"): yield_chain,
    ("yield chain", "async"): ayield_chain,
}


def ours(graph: str, api: str) -> Callable[[], Any]:
    body = BODIES[graph, api]
    job = (fda_sync if api == "sync" else fda_core).with_fastapi_depends(app=app)(body)
    return lambda: job(1)


def fastapi_resolver(graph: str, api: str) -> Callable[[], Any] | None:
    """What an app would write with FastAPI's resolver, the ``Dependant`` built once."""
    if api == "sync":
        return None  # it only awaits
    return resolver(app, BODIES[graph, api], 1)


def injectable(graph: str, api: str) -> Callable[[], Any] | None:
    if fastapi_injectable is None:
        return None
    job = fastapi_injectable.injectable(use_cache=False)(BODIES[graph, api])
    cleanup = fastapi_injectable.cleanup_exit_stack_of_func
    if api == "sync":
        run = fastapi_injectable.run_coroutine_sync

        def call() -> Any:
            try:
                return job(1)
            finally:
                run(cleanup(job))

        return call

    async def acall() -> Any:
        try:
            return await job(1)
        finally:
            await cleanup(job)

    return acall


# --- fast-depends' flavour: its own Depends, as parameter defaults ----------------------


def with_fast_depends(graph: str, api: str) -> Callable[[], Any] | None:
    if fast_depends is None:
        return None
    D, inject = fast_depends.Depends, fast_depends.inject

    def fd_db(settings: Settings = D(get_settings)) -> Iterator[Session]:
        yield from _session(settings)

    async def fd_adb(settings: Settings = D(aget_settings)) -> AsyncIterator[Session]:
        async for db in _asession(settings):
            yield db

    class FdRepo:
        def __init__(self, db: Session = D(fd_db)) -> None:
            self.db = db

    class FdARepo:
        def __init__(self, db: Session = D(fd_adb)) -> None:
            self.db = db

    def fd_engine() -> Iterator[Layer]:
        yield from _layer(None)

    def fd_connection(parent: Layer = D(fd_engine)) -> Iterator[Layer]:
        yield from _layer(parent)

    def fd_transaction(parent: Layer = D(fd_connection)) -> Iterator[Layer]:
        yield from _layer(parent)

    async def fd_aengine() -> AsyncIterator[Layer]:
        async for layer in _alayer(None):
            yield layer

    async def fd_aconnection(parent: Layer = D(fd_aengine)) -> AsyncIterator[Layer]:
        async for layer in _alayer(parent):
            yield layer

    async def fd_atransaction(parent: Layer = D(fd_aconnection)) -> AsyncIterator[Layer]:
        async for layer in _alayer(parent):
            yield layer

    job: Callable[..., Any]
    if graph == "all-def chain" and api == "sync":

        @inject
        def job(n: int, repo: FdRepo = D(FdRepo)) -> int:
            return n + len(repo.db.dsn)

        return lambda: job(1)
    if graph == "yield chain" and api == "sync":

        @inject
        def job(n: int, tx: Layer = D(fd_transaction)) -> int:  # type: ignore[misc]
            return n + tx.depth

        return lambda: job(1)
    if graph == "all-def chain":

        @inject
        async def job(n: int, repo: FdRepo = D(FdRepo)) -> int:  # type: ignore[misc]
            return n + len(repo.db.dsn)

    elif graph == "mixed chain":

        @inject
        async def job(  # type: ignore[misc]
            n: int, repo: FdRepo = D(FdRepo), user: str = D(get_user)
        ) -> int:
            return n + len(repo.db.dsn) + len(user)

    elif graph == "async chain":

        @inject
        async def job(n: int, repo: FdARepo = D(FdARepo)) -> int:  # type: ignore[misc]
            return n + len(repo.db.dsn)

    else:

        @inject
        async def job(n: int, tx: Layer = D(fd_atransaction)) -> int:  # type: ignore[misc]
            return n + tx.depth

    if api == "sync":  # a graph with async steps: sync code awaits it on a loop
        return lambda: bare.run(job(1))
    return lambda: job(1)


# --- dishka's flavour: a provider per graph, a request scope per call -------------------

UserName = NewType("UserName", str)
EngineLayer = NewType("EngineLayer", Layer)
ConnectionLayer = NewType("ConnectionLayer", Layer)
TransactionLayer = NewType("TransactionLayer", Layer)


class DiRepo:
    def __init__(self, db: Session) -> None:
        self.db = db


def di_session(settings: Settings) -> Iterator[Session]:
    yield from _session(settings)


async def di_asession(settings: Settings) -> AsyncIterator[Session]:
    async for db in _asession(settings):
        yield db


async def di_user() -> UserName:
    return UserName("alice")


def di_engine() -> Iterator[EngineLayer]:
    for layer in _layer(None):
        yield EngineLayer(layer)


def di_connection(parent: EngineLayer) -> Iterator[ConnectionLayer]:
    for layer in _layer(parent):
        yield ConnectionLayer(layer)


def di_transaction(parent: ConnectionLayer) -> Iterator[TransactionLayer]:
    for layer in _layer(parent):
        yield TransactionLayer(layer)


async def di_aengine() -> AsyncIterator[EngineLayer]:
    async for layer in _alayer(None):
        yield EngineLayer(layer)


async def di_aconnection(parent: EngineLayer) -> AsyncIterator[ConnectionLayer]:
    async for layer in _alayer(parent):
        yield ConnectionLayer(layer)


async def di_atransaction(parent: ConnectionLayer) -> AsyncIterator[TransactionLayer]:
    async for layer in _alayer(parent):
        yield TransactionLayer(layer)


def with_dishka(graph: str, api: str) -> Callable[[], Any] | None:
    if dishka is None:
        return None
    provider = dishka.Provider(scope=dishka.Scope.REQUEST)
    has_async = graph != "all-def chain" and not (graph == "yield chain" and api == "sync")
    if graph == "yield chain":
        steps = (
            (di_engine, di_connection, di_transaction)
            if api == "sync"
            else (di_aengine, di_aconnection, di_atransaction)
        )
        for step in steps:
            provider.provide(step)
        wanted: tuple[Any, ...] = (TransactionLayer,)
    else:
        provider.provide(get_settings if graph != "async chain" else aget_settings)
        provider.provide(di_session if graph != "async chain" else di_asession)
        provider.provide(DiRepo)
        wanted = (DiRepo,)
        if graph == "mixed chain":
            provider.provide(di_user)
            wanted = (DiRepo, UserName)

    def result(values: list[Any]) -> int:
        if graph == "yield chain":
            return 1 + int(values[0].depth)
        return 1 + len(values[0].db.dsn) + sum(len(v) for v in values[1:])

    if api == "sync" and not has_async:
        container = dishka.make_container(provider)

        def call() -> Any:
            with container() as scope:
                return result([scope.get(key) for key in wanted])

        return call
    acontainer = dishka.make_async_container(provider)

    async def acall() -> Any:
        async with acontainer() as scope:
            return result([await scope.get(key) for key in wanted])

    if api == "sync":
        return lambda: bare.run(acall())
    return acall


# --- the hand-built floor ------------------------------------------------------------------


def floor(graph: str, api: str) -> Callable[[], Any]:
    if graph == "yield chain":
        return _floor_yield_chain if api == "sync" else _afloor_yield_chain
    if api == "async":
        return {
            "all-def chain": _afloor_def_chain,
            "mixed chain": _afloor_mixed_chain,
            "async chain": _afloor_async_chain,
        }[graph]
    if graph == "all-def chain":
        return _floor_def_chain
    if graph == "mixed chain":
        return _floor_mixed_chain
    return lambda: bare.run(_afloor_async_chain())


def _floor_def_chain(user: str = "") -> int:
    generator = _session(get_settings())
    db = next(generator)
    try:
        return 1 + len(db.dsn) + len(user)
    finally:
        for _ in generator:
            pass


def _floor_mixed_chain() -> int:
    return _floor_def_chain(bare.run(get_user()))


def _floor_yield_chain() -> int:
    engine_ = _layer(None)
    connection_ = _layer(next(engine_))
    transaction_ = _layer(next(connection_))
    try:
        return 1 + next(transaction_).depth
    finally:
        for generator in (transaction_, connection_, engine_):
            for _ in generator:
                pass


async def _afloor_def_chain() -> int:
    return _floor_def_chain()


async def _afloor_mixed_chain() -> int:
    return _floor_def_chain(await get_user())


async def _afloor_async_chain() -> int:
    generator = _asession(await aget_settings())
    db = await generator.__anext__()
    try:
        return 1 + len(db.dsn)
    finally:
        async for _ in generator:
            pass


async def _afloor_yield_chain() -> int:
    engine_ = _alayer(None)
    connection_ = _alayer(await engine_.__anext__())
    transaction_ = _alayer(await connection_.__anext__())
    try:
        return 1 + (await transaction_.__anext__()).depth
    finally:
        for generator in (transaction_, connection_, engine_):
            async for _ in generator:
                pass


# --- measuring, and the page's table --------------------------------------------------------

MAKERS: dict[str, Callable[[str, str], Callable[[], Any] | None]] = {
    "ours": ours,
    "floor": floor,
    "fastapi": fastapi_resolver,
    "injectable": injectable,
    "fast-depends": with_fast_depends,
    "dishka": with_dishka,
}
COLUMNS = ("floor", *PEERS)


@dataclass
class Row:
    graph: str
    api: str
    figures: dict[str, float] = field(default_factory=dict[str, float])
    warnings: int = 0


def measure(graph: str, api: str, warnings: CountWarnings) -> Row:
    loops: list[LoopSampler] = []
    series: dict[str, Series] = {}
    expected = None
    for name, make in MAKERS.items():
        call = make(graph, api)
        if call is None:
            continue
        if api == "sync":
            value = call()
            series[name] = Series(sync_sampler(call))
        else:
            loops.append(LoopSampler(call))
            value = loops[-1].loop.run_until_complete(call())
            series[name] = Series(loops[-1])
        expected = value if expected is None else expected
        if value != expected:
            sys.exit(f"{graph} ({api}): {name} returned {value!r}, the others {expected!r}")
    warnings.count = 0
    try:
        interleave(list(series.values()))
    finally:
        for sampler in loops:
            sampler.close()
    return Row(graph, api, {name: one.per_call for name, one in series.items()}, warnings.count)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}"


def load() -> str:
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().split()[0]


def cell(value: float | None, ours_: float, mark: str = "") -> str:
    if value is None:
        return "n/a"
    ratio = value / ours_
    shown = f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"  # a floor far below: 0.0018
    return f"{shown}\N{MULTIPLICATION SIGN} ({value:.1f} µs){mark}"


def table(rows: list[Row], header: str) -> str:
    versions = ", ".join(
        f"{name} {version(dist)}"
        for name, dist, module in (
            ("FastAPI", "fastapi", True),
            ("fastapi-injectable", "fastapi-injectable", fastapi_injectable),
            ("fast-depends", "fast-depends", fast_depends),
            ("dishka", "dishka", dishka),
        )
        if module
    )
    lines = [header, ""]
    for api in APIS:
        title = (
            "Sync API: a `def` body called from sync code, no loop running"
            if api == "sync"
            else "Async API: an `async def` body awaited on a loop"
        )
        lines += [
            f"**{title}.** Each cell: time per call as a multiple of this library's "
            "(above 1: slower than this library), then µs per call (median).",
            "",
            "| graph | this library | " + " | ".join(TITLES[c] for c in COLUMNS) + " |",
            "|---|---:|" + "---:|" * len(COLUMNS),
        ]
        for row in rows:
            if row.api != api:
                continue
            ours_ = row.figures["ours"]
            mark = "¹" if row.warnings else ""
            cells = [
                cell(row.figures.get(c), ours_, mark if c == "injectable" else "") for c in COLUMNS
            ]
            lines.append(f"| {row.graph} | {ours_:.1f} µs | " + " | ".join(cells) + " |")
        lines.append("")
    if any(row.warnings for row in rows):
        lines.append("¹ fastapi-injectable logged failures of its teardown during these calls.")
        lines.append("")
    lines.append(f"Versions: {versions}; {REPEATS} samples per contender, interleaved.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cpu_option(parser)
    parser.add_argument("--page", type=Path, help="write the table into this page")
    args = parser.parse_args()
    pin(parser, args.cpu)
    warnings = CountWarnings()
    injectable_logger = logging.getLogger("fastapi_injectable")
    injectable_logger.addHandler(warnings)
    injectable_logger.propagate = False
    started, load_before = datetime.datetime.now(datetime.timezone.utc), load()
    try:
        rows = [measure(graph, api, warnings) for api in APIS for graph in GRAPHS]
    finally:
        bare.close()
    pinned = f"pinned to CPU {args.cpu}" if args.cpu is not None else "not pinned"
    header = (
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}, {pinned}; Python "
        f"{platform.python_version()}; 1-minute load average {load_before} at the start, "
        f"{load()} at the end."
    )
    text = table(rows, header)
    print(text)
    if args.page is not None:
        write_table(args.page, "peers", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
