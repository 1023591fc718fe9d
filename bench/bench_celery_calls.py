"""What the library costs one call of the example's Celery task, without Celery: the sync
``add_notes`` of ``notes_service/tasks.py`` against the same work hand-wired
(``bench/_celery_tasks.py``: a loop and an engine of its own, the session and the same
queries written by hand), called in this process, alternately, one call each at a time.

Figures: the median and quartiles of each one's call time, and the difference of the
medians: the library's cost per call on this graph (three ``def`` dependencies, an async
session, an async body), which a Celery worker adds to every task.

    uv run python bench/bench_celery_calls.py [--calls 1500] [--dir /dev/shm] [--path loop]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _pinning import add_cpu_option, pin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1500, help="calls of each, alternated")
    parser.add_argument("--dir", default=None, help="where the SQLite database goes")
    parser.add_argument(
        "--path", choices=["chosen", "loop", "caller"], default="chosen", help="the sync path"
    )
    add_cpu_option(parser)
    args = parser.parse_args()
    pin(parser, args.cpu)

    folder = Path(tempfile.mkdtemp(prefix="bench-calls-", dir=args.dir))
    os.environ["NOTES_DATABASE"] = str(folder / "notes.sqlite3")
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    for command in ("init-db", "seed"):
        subprocess.run([sys.executable, "-m", "notes_service", command], env=env, check=True)
    sys.path[:0] = [str(EXAMPLES)]

    import _celery_tasks as by_hand

    import fda_sync._api.decorators
    from fastapi_depends_anywhere.sync import start_process_lifespan
    from notes_service.tasks import add_notes, bearer

    if args.path != "chosen":
        fda_sync._api.decorators.prefers_caller = lambda *_: args.path == "caller"
    start_process_lifespan()

    def library() -> None:
        add_notes(["bench note"], _scope=bearer("ann-token"))

    def hand_wired() -> None:
        here = by_hand._ByHand.here()
        here.loop.run_until_complete(
            by_hand.add_notes_by_hand(here.sessions, "ann-token", ["bench note"])
        )

    calls = {"the library": library, "hand-wired": hand_wired}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up: engines, plans, the bridge
        for _ in range(30):
            call()
    for number in range(args.calls):
        order = list(calls) if number % 2 else list(calls)[::-1]
        for name in order:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)

    print(
        f"{args.calls} calls of each, alternated; path {args.path}; Python "
        f"{sys.version.split()[0]}; database in {folder.parent}"
    )
    print("| call | median | quartiles |")
    print("|---|---:|---:|")
    medians = {}
    for name, values in times.items():
        values.sort()
        medians[name] = values[len(values) // 2] * 1e3
        low, high = values[len(values) // 4] * 1e3, values[3 * len(values) // 4] * 1e3
        print(f"| {name} | {medians[name]:.2f} ms | {low:.2f} to {high:.2f} ms |")
    extra = medians["the library"] - medians["hand-wired"]
    print(f"the library's cost per call: {extra:.2f} ms ({extra / medians['hand-wired']:.0%})")


if __name__ == "__main__":
    main()
