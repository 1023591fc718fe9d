"""The other sync APIs on the graphs of ``bench_sync.py``: a generator, a ``with`` block, a stack.

Each is measured on the ``def`` chain alone and with its ``async def`` user (the mixed
graph), per use, teardown included, against the same work written by hand (the floor):

- ``iter``: ``iter_with_fastapi_depends``, a generator of one item, iterated to its end;
- ``resolve``: ``with resolve_fastapi_depends(target) as values: ...``;
- ``stack``: ``with FastApiDepsStack(app=app) as stack: stack.resolve(answer)``, its
  lifespan's start-up and shutdown included (two round trips on every path: a lifespan is
  async). The floor is the graph alone.

Columns as in the first table: the path the sync API chooses (``sync``), forced onto the
bridge loop (``loop``) and forced to be driven from the caller's thread (``caller``).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from _measure import Series, interleave, sync_sampler
from fastapi import Depends, FastAPI

import fda_sync
import fda_sync._api.decorators
from fda_sync._caller_path.walk import prefers_caller

APIS = ("iter", "resolve", "stack")
GRAPHS = ("def chain", "def chain + async")
COLUMNS = ("floor", "sync", "loop", "caller")


@dataclass
class Row:
    api: str
    graph: str
    figures: dict[str, float]


def answers(repo_type: Any, current_user: Callable[..., Any]) -> dict[str, Callable[..., int]]:
    """The dependency each graph resolves: the repository, and for the mixed graph the
    async user too."""

    def chain_answer(repo: Annotated[repo_type, Depends()]) -> int:  # type: ignore[valid-type]
        return len(repo.db.dsn)

    def mixed_answer(
        repo: Annotated[repo_type, Depends()],  # type: ignore[valid-type]
        user: Annotated[str, Depends(current_user)],
    ) -> int:
        return len(repo.db.dsn) + len(user)

    return {"def chain": chain_answer, "def chain + async": mixed_answer}


def ours(api: str, answer: Callable[..., int], app: FastAPI) -> Callable[[int], int]:
    Answer = Annotated[int, Depends(answer)]
    if api == "iter":

        @fda_sync.iter_with_fastapi_depends(app=app)
        def rows(n: int, *, value: Answer) -> Iterator[int]:
            yield n + value

        def use_iter(n: int) -> int:
            [item] = rows(n)
            return item

        return use_iter
    if api == "resolve":

        def target(*, value: Answer) -> None: ...

        def use_resolve(n: int) -> int:
            with fda_sync.resolve_fastapi_depends(target, dependency_overrides_provider=app) as v:
                return n + int(v["value"])

        return use_resolve

    def use_stack(n: int) -> int:
        with fda_sync.FastApiDepsStack(app=app) as stack:
            return n + stack.resolve(answer)

    return use_stack


def forced(call: Callable[[int], int], path: str) -> Callable[[int], int]:
    """``call`` with every sync call on ``path`` (patched around each use)."""
    caller = path == "caller"

    def run(n: int) -> int:
        module: Any = fda_sync._api.decorators
        module.prefers_caller = lambda plan, body_is_async: caller
        try:
            return call(n)
        finally:
            module.prefers_caller = prefers_caller

    return run


def measure(
    floors: dict[str, Callable[[int], Any]],
    repo_type: Any,
    current_user: Callable[..., Any],
    app: FastAPI,
) -> list[Row]:
    rows = []
    graph_answers = answers(repo_type, current_user)
    for api in APIS:
        for graph in GRAPHS:
            call = ours(api, graph_answers[graph], app)
            contenders = {
                "floor": floors[graph],
                "sync": call,
                "loop": forced(call, "loop"),
                "caller": forced(call, "caller"),
            }
            series = {
                name: Series(sync_sampler(lambda c=c: c(1))) for name, c in contenders.items()
            }
            interleave(list(series.values()))
            rows.append(Row(api, graph, {name: s.per_call for name, s in series.items()}))
    return rows


def report(rows: list[Row], cell: Callable[[float | None, float], str]) -> None:
    print("\nthe other sync APIs, per use (us, median), ratio to the hand-built floor")
    print(f"{'api':<9}{'graph':<20}" + "".join(f"{c:>18}" for c in COLUMNS))
    for row in rows:
        floor = row.figures["floor"]
        print(
            f"{row.api:<9}{row.graph:<20}"
            + "".join(f"{cell(row.figures.get(c), floor):>18}" for c in COLUMNS)
        )
