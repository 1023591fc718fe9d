"""Where a sync call's cost goes, part by part, in instructions counted by callgrind.

The sync API on the all-``def`` chain of ``bench_sync.py`` (settings, a generator session,
a repository class; driven from the caller's thread), against the hand-built floor and
fast-depends.

Each part of the sync call is measured by removing it, in a variant that exists only
here (its module attribute patched for the variant's calls): what the full call costs
more than that variant is the part's cost; or in isolation. The parts:

- ``lookups``: what every call looks up before it starts: the process lifespan
  (``before_call``), the app, the caller's arguments, the plan for the overrides in
  force, the context factory, the path;
- ``in-flight registry``: the call counted as in flight (the shutdown at exit sees it);
- ``context copies``: each ``def`` step run in a copy of the call's context variables,
  as FastAPI's threadpool runs it, and ``fork checks``: after each ``def`` step, whether
  the process forked meanwhile. Both are written out in the call's steps, so these two
  are measured in isolation instead: five calls of a function, plain, each in a context
  copy, and each checked;
- ``signal holding``: interrupting signals held back in the main thread during teardown;
- ``the walk``: the rest: the plan's steps, the generator's set-up and teardown, the
  body, what the call keeps for its teardown.

Instruction counts are the same on a busy machine as on a quiet one (timings move by a
third); they count user-space work, not the time system calls take (``signal.signal`` is
one per held signal).

    uv run python bench/bench_breakdown.py [--calls 400]

Needs valgrind (Debian: ``apt-get install valgrind``).
"""

import argparse
import asyncio
import contextlib
import contextvars
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import _callgrind
import bench_sync
from _page import write_table
from _pinning import add_cpu_option

import fda_sync._api.decorators
from fda_core._graph.injector import Injector
from fda_sync._bridge import this_process
from fda_sync._bridge.thread import BridgeThread
from fda_sync._caller_path import exits
from fda_sync._errors import forked_error

#: Parts measured by removing them: (part, the variant without it).
REMOVED = (
    ("lookups", "without lookups"),
    ("in-flight registry", "without in-flight registry"),
    ("signal holding", "without signal holding"),
)


@contextlib.contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


#: ``def`` steps of the all-def chain's call: settings, the session's set-up, the
#: repository, the body, the session's teardown.
DEF_STEPS = 5


def _step(value: int = 0) -> int:
    return value


def _direct() -> None:
    """A ``def`` step's own call, five times: what the isolated variants build on."""
    for _ in range(DEF_STEPS):
        _step(value=1)


CONTEXT = contextvars.copy_context()  # the isolated variants' call context


def _copies(context: contextvars.Context = CONTEXT) -> None:
    """Each step in a copy of the call's context, as the call runs it."""
    for _ in range(DEF_STEPS):
        context.copy().run(_step, value=1)


def _copies_and_checks(context: contextvars.Context = CONTEXT) -> None:
    """Each step in a copy of the context, then whether the process forked meanwhile."""
    forks = this_process.forks
    for _ in range(DEF_STEPS):
        try:
            context.copy().run(_step, value=1)
        finally:
            if this_process.forks != forks:
                raise forked_error()


def _closed_over(func: Any, kind: type[Any]) -> Any:
    """The ``kind`` object that ``func`` closes over, or a function it closes over does."""
    for cell in func.__closure__ or ():
        value = cell.cell_contents
        if isinstance(value, kind):
            return value
        if getattr(value, "__closure__", None):  # a function of the decorator
            with contextlib.suppress(LookupError):
                return _closed_over(value, kind)
    raise LookupError(f"{func!r} closes over no {kind.__name__}")


def _without_lookups(job: Any) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """The call's lookups answered from what the first call found."""
    injector = _closed_over(job, Injector)
    prepared = injector.prepare((1,), {})
    decorators: Any = fda_sync._api.decorators

    @contextlib.contextmanager
    def patch() -> Iterator[None]:
        with (
            patched(injector, "prepare", lambda args, kwargs: prepared),
            patched(injector, "context_manager", lambda: None),
            patched(decorators, "before_call", lambda: None),
            patched(decorators, "prefers_caller", lambda plan, is_async: True),
        ):
            yield

    return patch


def sync_variants() -> dict[str, tuple[Callable[[], Any], Any]]:
    """name -> (call, the patch around its calls, or None)."""
    job = bench_sync.ours("def chain")
    fd = bench_sync.with_fast_depends("def chain")
    variants: dict[str, tuple[Callable[[], Any], Any]] = {
        "hand-built floor": (lambda: bench_sync.floor_def_chain(1), None),
        "sync API": (lambda: job(1), None),
        "without lookups": (lambda: job(1), _without_lookups(job)),
        "without in-flight registry": (
            lambda: job(1),
            lambda: patched(BridgeThread, "admit", lambda self, call: None),
        ),
        "without signal holding": (
            lambda: job(1),
            lambda: patched(exits, "held_call", lambda func, *args: func(*args)),
        ),
        "isolated: 5 steps": (_direct, None),
        "isolated: 5 steps in context copies": (_copies, None),
        "isolated: 5 steps in context copies, fork checked": (_copies_and_checks, None),
    }
    if fd is not None:
        variants["fast-depends"] = (lambda: fd(1), None)
    return variants


#: The async API against FastAPI's resolver: bench_resolution.py's graphs that need no
#: thread (a ``def`` step's thread-pool hop would count another thread's work).
ASYNC_GRAPHS = ("chain (async gen)", "chain + Header")
#: Awaits per counted call of an async variant: one ``run_until_complete`` for several
#: awaits, its own cost measured alone (``EMPTY_BATCH``) and taken off.
BATCH = 5
EMPTY_BATCH = "async: an empty batch"


def async_variants() -> dict[str, Callable[[], Any]]:
    """name -> a batch of ``BATCH`` awaited calls, each on the same loop."""
    import bench_resolution  # (its import configures the app its graphs use)

    loop = asyncio.new_event_loop()

    def batch(make: Callable[[], Awaitable[Any]]) -> Callable[[], Any]:
        async def calls() -> None:
            for _ in range(BATCH):
                await make()

        return lambda: loop.run_until_complete(calls())

    async def nothing() -> None:
        return None

    variants = {EMPTY_BATCH: batch(nothing)}
    for graph in bench_resolution.GRAPHS:
        if graph.name in ASYNC_GRAPHS:
            variants[f"async API: {graph.name}"] = batch(bench_resolution.ours(graph))
            variants[f"FastAPI's resolver: {graph.name}"] = batch(
                bench_resolution.fastapi_resolver(graph)
            )
    return variants


def names() -> list[str]:
    return [*sync_variants(), *async_variants()]


def serve(calls: int) -> None:
    """In the process callgrind runs: every variant, in the order ``main`` expects."""
    for name, (call, patch) in sync_variants().items():
        with patch() if patch is not None else contextlib.nullcontext():
            _callgrind.serve({name: call}, calls, empty=name == "hand-built floor")
    _callgrind.serve(async_variants(), calls // BATCH, empty=False)  # ``calls`` awaits each


def table(counts: dict[str, float]) -> str:
    full, floor = counts["sync API"], counts["hand-built floor"]
    summary = (
        f"The sync API on the all-def chain, driven from the caller's thread: {full:,.0f} "
        f"instructions per call, {full / floor:.1f}\N{MULTIPLICATION SIGN} the hand-built "
        f"floor's {floor:,.0f}"
    )
    if "fast-depends" in counts:
        fd = counts["fast-depends"]
        summary += f", {full / fd:.2f}\N{MULTIPLICATION SIGN} fast-depends' {fd:,.0f}"
    parts = {part: full - counts[variant] for part, variant in REMOVED}
    direct = counts["isolated: 5 steps"]
    copies = counts["isolated: 5 steps in context copies"]
    parts["context copies (5 steps)"] = copies - direct
    checked = counts["isolated: 5 steps in context copies, fork checked"]
    parts["fork checks (5 steps)"] = checked - copies
    parts["the walk (the rest)"] = full - sum(parts.values()) - floor
    parts["the graph's own code (the floor)"] = floor
    lines = [
        f"{summary} (Python {sys.version.split()[0]}, instructions counted by callgrind).",
        "",
        "| part | instructions per call | share of the call |",
        "|---|---:|---:|",
    ]
    lines += [f"| {part} | {cost:,.0f} | {cost / full:.0%} |" for part, cost in parts.items()]
    return "\n".join([*lines, "", *async_table(counts)])


def async_table(counts: dict[str, float]) -> list[str]:
    """The async API against FastAPI's resolver, per call: a batch's count less the empty
    batch's (``count`` divides by ``calls``, ``BATCH`` times the batches served)."""
    empty = counts[EMPTY_BATCH]
    lines = [
        "The async API against FastAPI's resolver (`solve_dependencies`, the `Dependant` "
        "built once) on `bench_resolution.py`'s graphs, instructions per call:",
        "",
        "| graph | async API | FastAPI's resolver | async API / FastAPI's |",
        "|---|---:|---:|---:|",
    ]
    for graph in ASYNC_GRAPHS:
        ours = counts[f"async API: {graph}"] - empty
        theirs = counts[f"FastAPI's resolver: {graph}"] - empty
        ratio = f"{ours / theirs:.2f}\N{MULTIPLICATION SIGN}"
        lines.append(f"| {graph} | {ours:,.0f} | {theirs:,.0f} | {ratio} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls counted per variant")
    parser.add_argument("--page", type=Path, help="write the table into this page")
    add_cpu_option(parser)  # accepted for nox -s bench: instruction counts need no pinning
    args = parser.parse_args()
    if _callgrind.in_child():
        serve(args.calls)
        return 0
    if not _callgrind.available():
        sys.exit("bench_breakdown.py needs valgrind (Debian: apt-get install valgrind)")
    counts = _callgrind.count(Path(__file__), ["--calls", str(args.calls)], names(), args.calls)
    bench_sync.bare.close()
    text = table(counts)
    print(text)
    if args.page is not None:
        write_table(args.page, "breakdown", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
