"""Tasks per second of the example service's Celery task, in the same worker, in the same
run: with the library (the process lifespan, ``lifespan_per_worker_process``), hand-wired
(no library: an event loop and an engine per process, the session and the same queries
written by hand), and with a lifespan per task (``with_fastapi_lifecycle``).

It starts a redis-server on a free loopback port and one worker of the example service
(``examples/notes_service``, prefork pool, two children, on a fresh SQLite database),
then sends rounds of tasks, the variants interleaved (the first one of each round
rotating): each round sends ``--tasks`` tasks of one variant at once and waits for every
result. Every task writes one note. Figures: median tasks/s over the rounds, with the
range; and the ratio of the library to the hand-wired task, round by round (the two ran
within seconds of each other), its median and range.

    uv run python bench/bench_celery.py [--rounds 5] [--tasks 200] [--concurrency 2] [--dir DIR]

``nox -s bench -- celery`` runs it as is, then with every process pinned to CPU 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _pinning import add_cpu_option, pin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: variant -> (what it is, the task's name)
VARIANTS = {
    "library": ("the library (process lifespan)", "notes.import_notes"),
    "hand-wired": ("hand-wired (no library)", "bench.import_notes_by_hand"),
    "per-task": ("the library, a lifespan per task", "bench.import_notes_per_task"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [
            *(server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(folder)),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("redis-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200, help="tasks per round and variant")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"which variants, comma-separated (default: all of {', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--dir",
        default=None,
        help="where the SQLite database goes (default: a temporary folder; /dev/shm "
        "takes the disk's flushes out of the figures, leaving the code's)",
    )
    add_cpu_option(parser)  # the worker and redis-server, started later, inherit it
    args = parser.parse_args()
    pin(parser, args.cpu)

    folder = Path(tempfile.mkdtemp(prefix="bench-celery-", dir=args.dir))
    env = {
        **os.environ,
        "NOTES_DATABASE": str(folder / "notes.sqlite3"),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(ROOT / "bench")]),
    }
    subprocess.run([sys.executable, "-m", "notes_service", "init-db"], env=env, check=True)
    subprocess.run([sys.executable, "-m", "notes_service", "seed"], env=env, check=True)
    redis, broker = start_redis(folder)
    env["NOTES_BROKER_URL"] = broker
    queue = f"bench-{uuid.uuid4().hex}"
    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "_celery_tasks", "worker"),
            *("--pool", "prefork", "--concurrency", str(args.concurrency), "--queues", queue),
            *("--loglevel", "WARNING", "--hostname", f"{queue}@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sys.path.insert(0, str(EXAMPLES))
    from celery import Celery

    client = Celery("bench", broker=broker, backend=broker)
    names = [name for name in args.variants.split(",") if name]
    if not names or set(names) - set(VARIANTS):
        parser.error(f"--variants: choose among {', '.join(VARIANTS)}")
    rates: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:  # warm-up: the children are up, every variant imported
            run_round(client, queue, VARIANTS[name][1], args.concurrency * 4)
        for number in range(args.rounds):
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                elapsed = run_round(client, queue, VARIANTS[name][1], args.tasks)
                rates[name].append(args.tasks / elapsed)
    finally:
        client.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        redis.terminate()
        redis.wait(10)
        log.close()

    print(
        f"{args.tasks} tasks per round, {args.rounds} rounds, prefork pool with "
        f"{args.concurrency} children, Python {sys.version.split()[0]}; one note per task, "
        f"database in {folder.parent}"
    )
    print("| variant | tasks/s (median) | range |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        low, high = min(values), max(values)
        median = statistics.median(values)
        print(f"| {VARIANTS[name][0]} | {median:,.0f} | {low:,.0f} to {high:,.0f} |")
    if "library" in rates:
        for other in [name for name in rates if name != "library"]:
            ratios = [
                mine / theirs for mine, theirs in zip(rates["library"], rates[other], strict=True)
            ]
            print(
                f"the library against {VARIANTS[other][0]}: {statistics.median(ratios):.2f} "
                f"times the tasks per second (median of {len(ratios)} rounds, range "
                f"{min(ratios):.2f} to {max(ratios):.2f}; by round: "
                f"{', '.join(f'{ratio:.2f}' for ratio in ratios)})"
            )
    shutil.rmtree(folder, ignore_errors=True)


def run_round(client: object, queue: str, task: str, count: int) -> float:
    """Send ``count`` tasks at once and wait for all of them: the seconds it took."""
    start = time.perf_counter()
    pending = [
        client.send_task(task, args=["ann-token", [f"bench note {n}"]], queue=queue)  # type: ignore[attr-defined]
        for n in range(count)
    ]
    for result in pending:
        result.get(timeout=120)
        result.forget()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
