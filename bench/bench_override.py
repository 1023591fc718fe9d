"""What scoped overrides (``override()``) cost a call, with and without a block open.

Run with ``nox -s bench -- override`` or ``uv run python bench/bench_override.py [--cpu N]``.

For the async API (an async graph) and the sync API (the tutorial ``def`` graph, driven
from the caller's thread), the median per-call time of:

- ``before``: the per-call entry points (``Injector.call``, ``Injector.prepare``,
  ``Analysis.plan``) as they were before scoped overrides, swapped in around its samples;
- ``no block``: the code as it is, no ``override()`` block open (the feature's cost to
  every call: one ``ContextVar.get``);
- ``in a block``: the same call inside ``with override({get_settings: fake})``;
- ``app dict``: the same fake in ``app.dependency_overrides`` instead, no block.

Samples are calibrated and interleaved as in the other benchmarks (``_measure``).

A whole call is tens of microseconds, and a busy machine moves it by more than the feature
costs; so the steps the feature adds are also timed alone, in nanoseconds (``timeit``, the
best of BENCH_REPEATS runs): finding the block (``current_block``), and the plan lookup
(``Analysis.plan``) against the one before. Targets, printed with the figures: with no block
the plan lookup costs at most 50 ns more than before; in a block it costs under 1% of
compiling the plan (it finds the plan compiled for the block's overrides), about what the
same override in the app's dict costs.
"""

import argparse
import sys
import timeit
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from _measure import REPEATS, LoopSampler, Sampler, Series, interleave, sync_sampler
from _pinning import add_cpu_option, pin
from fastapi import Depends, FastAPI

import fda_core
import fda_sync
from fda_core._config import get_context_factory, resolve_app
from fda_core._graph import analysis as _analysis
from fda_core._graph import injector as _injector
from fda_core._graph.compiler import compile_plan
from fda_core._graph.plan import Plan
from fda_core._graph.resolution import call_planned
from fda_core._override import current_block

# --- the per-call entry points without scoped overrides (as before the feature) ---------


def _plan_before(self: _analysis.Analysis, provided: frozenset[str], overrides: Any) -> Plan | None:
    key = (provided, tuple(overrides.items())) if overrides else provided
    try:
        return self._plans[key]
    except KeyError:
        pass
    plan = compile_plan(self.dependant(provided), overrides)
    with self._lock:
        self._plans[key] = plan
    return plan


async def _call_before(
    self: _injector.Injector, body: Any, args: Any, kwargs: Any, call_scope: Any
) -> Any:
    analysis = self.analysis
    args, kwargs = analysis.arrange(args, kwargs)
    app = resolve_app(self.app)
    if not analysis.unresolved and get_context_factory() is None:
        plan = _plan_before(analysis, analysis.provided(args, kwargs), app.dependency_overrides)
        if plan is not None:
            request = self.request(app, call_scope)
            return await call_planned(plan, request, body, args, kwargs)
    raise AssertionError("the benchmark's graphs are planned")


def _prepare_before(self: _injector.Injector, args: Any, kwargs: Any) -> Any:
    analysis = self.analysis
    args, kwargs = analysis.arrange(args, kwargs)
    app = resolve_app(self.app)
    if analysis.unresolved:
        analysis.check_unresolved(args, kwargs)
    plan = _plan_before(analysis, analysis.provided(args, kwargs), app.dependency_overrides)
    return args, kwargs, app, plan


@contextmanager
def before() -> Iterator[None]:
    cls = _injector.Injector
    call, prepare = cls.call, cls.prepare
    cls.call, cls.prepare = _call_before, _prepare_before  # type: ignore[assignment]
    try:
        yield
    finally:
        cls.call, cls.prepare = call, prepare  # type: ignore[method-assign]


def within(context: Callable[[], Any], sampler: Sampler) -> Sampler:
    """``sampler`` run inside ``context()`` (entered outside the timed calls' loop)."""

    def sample(count: int) -> float:
        with context():
            return sampler(count)

    return sample


# --- the graphs ------------------------------------------------------------------------


async def async_settings() -> str:
    return "sqlite://"


async def async_fake_settings() -> str:
    return "fake://"


async def async_db(dsn: Annotated[str, Depends(async_settings)]) -> AsyncIterator[str]:
    yield "db:" + dsn


def def_settings() -> str:
    return "sqlite://"


def def_fake_settings() -> str:
    return "fake://"


def def_db(dsn: Annotated[str, Depends(def_settings)]) -> Iterator[str]:
    yield "db:" + dsn


class Repo:
    def __init__(self, db: Annotated[str, Depends(def_db)]) -> None:
        self.db = db


def nanoseconds(
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], int]],
) -> dict[str, float]:
    """ns per call of each ``(label, statement, context, number)``: the best of REPEATS
    rounds, the cases interleaved in each round (drift hits them alike)."""
    best: dict[str, float] = {}
    for _ in range(REPEATS):
        for label, statement, context, number in cases:
            with context():
                elapsed = timeit.timeit(statement, number=number) / number * 1e9
            best[label] = min(best.get(label, elapsed), elapsed)
    return best


def steps(app: FastAPI, job: Any) -> list[str]:
    """The steps the feature adds to a call, timed alone."""
    analysis = _analysis.analyse(job.__wrapped__)
    provided: frozenset[str] = frozenset()
    overrides = {async_settings: async_fake_settings}

    def lookup() -> Plan | None:  # as Injector.call does it
        block = current_block()
        scoped = None if block is None else block.view(app)
        return analysis.plan(provided, app.dependency_overrides, scoped)

    @contextmanager
    def nothing() -> Iterator[None]:
        yield

    @contextmanager
    def app_dict() -> Iterator[None]:
        app.dependency_overrides.update(overrides)
        try:
            yield
        finally:
            app.dependency_overrides.clear()

    def block() -> Any:
        return fda_core.override(overrides)

    n = 20_000
    figures = nanoseconds(
        [
            ("find the block, none open", current_block, nothing, n),
            ("find the block, one open", lambda: current_block().view(app), block, n),  # type: ignore[union-attr]
            (
                "plan lookup before",
                lambda: _plan_before(analysis, provided, app.dependency_overrides),
                nothing,
                n,
            ),
            ("plan lookup, no block", lookup, nothing, n),
            ("plan lookup, app dict", lookup, app_dict, n),
            ("plan lookup, in a block", lookup, block, n),
            (
                "compile the plan",
                lambda: compile_plan(analysis.dependant(provided), overrides),
                nothing,
                200,
            ),
        ]
    )
    print(f"\nthe feature's steps alone, ns per call (best of {REPEATS})")
    for label, value in figures.items():
        print(f"  {label:<28}{value:>10.0f}")
    failures = []
    extra = figures["plan lookup, no block"] - figures["plan lookup before"]
    if extra > 50:
        failures.append(f"no block: the plan lookup costs {extra:.0f} ns more than before")
    share = figures["plan lookup, in a block"] / figures["compile the plan"]
    if share > 0.01:
        failures.append(f"in a block: the plan lookup costs {share:.1%} of a compile")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cpu_option(parser)
    pin(parser, parser.parse_args().cpu)
    app = FastAPI()

    @fda_core.with_fastapi_depends(app=app)
    async def async_job(*, db: Annotated[str, Depends(async_db)]) -> str:
        return db

    @fda_sync.with_fastapi_depends(app=app)
    def sync_job(*, repo: Annotated[Repo, Depends()]) -> str:
        return repo.db

    @contextmanager
    def app_dict(dependency: Any, fake: Any) -> Iterator[None]:
        app.dependency_overrides[dependency] = fake
        try:
            yield
        finally:
            app.dependency_overrides.clear()

    @contextmanager
    def nothing() -> Iterator[None]:
        yield

    apis: list[tuple[str, Callable[[], Sampler], Any, Any]] = [
        ("async API", lambda: LoopSampler(async_job), async_settings, async_fake_settings),
        ("sync API", lambda: sync_sampler(sync_job), def_settings, def_fake_settings),
    ]
    variants = ("before", "no block", "in a block", "app dict")
    print(f"per call, us (median of {REPEATS}; differences under a few us are the machine's)")
    print(f"{'':<12}" + "".join(f"{v:>14}" for v in variants))
    for name, make, dependency, fake in apis:
        contexts: list[Callable[[], Any]] = [
            before,
            nothing,
            lambda d=dependency, f=fake: fda_core.override({d: f}),
            lambda d=dependency, f=fake: app_dict(d, f),
        ]
        samplers = [make() for _ in variants]
        series = [Series(within(c, s)) for c, s in zip(contexts, samplers, strict=True)]
        interleave(series)
        for sampler in samplers:
            if isinstance(sampler, LoopSampler):
                sampler.close()
        figures = [s.per_call for s in series]
        print(f"{name:<12}" + "".join(f"{f:>14.2f}" for f in figures))
    failures = steps(app, async_job)
    print("\n" + ("\n".join(f"MISSED: {f}" for f in failures) or "all targets met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
