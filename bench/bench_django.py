"""Requests per second of a Django view whose dependencies come from the sync API, against
the same view wired by hand, served by the same gunicorn, in the same run.

The site (``_django_site.py``) has both views: ``/sync/notes`` calls a function decorated
with ``fastapi_depends_anywhere.sync.with_fastapi_depends`` (settings, a SQLAlchemy session
as a ``def`` generator, the caller from the ``Authorization`` header, a repository class);
``/hand/notes`` opens and closes the same session by hand and runs the same two queries.
Both read the example service's tables (``examples/notes_service``) on a fresh SQLite
file, migrated and seeded by the service's own CLI.

gunicorn serves it with sync workers. The load comes from wrk (Debian's ``wrk``): written
in C, it costs the two cores little next to the server, and reports requests per second
itself; Python load generators take a core of their own to send as many requests. Rounds
alternate between the two URLs, the first one of each round rotating, so that the
machine's drift hits both alike; each round's ratio compares two neighbouring runs.

    uv run python bench/bench_django.py [--rounds 8] [--seconds 3] [--workers 2]
        [--connections 4] [--cpu N] [--profile SECONDS] [--page PATH]

``--profile``: then py-spy samples the workers while wrk loads ``/sync/notes``, and the
share of samples in each part (the library, SQLAlchemy, Django, gunicorn...) is printed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import _callgrind
from _page import write_table
from _pinning import add_cpu_option, pin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOKEN = "ann-token"  # seeded by the service's CLI
VIEWS = {"sync API": "/sync/notes", "by hand": "/hand/notes"}
TARGET = 0.95
#: The sync API's view on a graph that reads the token without a header parameter.
WITHOUT_HEADER = "sync API, no header parameter"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, token: str) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def start_server(
    folder: Path, env: dict[str, str], workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (folder / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--worker-class", "sync"),
            *("--workers", str(workers), "--bind", f"127.0.0.1:{port}"),
            *("--log-level", "warning", "_django_site:application"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited:\n{(folder / 'gunicorn.log').read_text()}")
        try:
            get(base + VIEWS["by hand"], TOKEN)
            return server, base
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit(f"gunicorn did not answer:\n{(folder / 'gunicorn.log').read_text()}")


def check_same(base: str) -> None:
    """Both views answer alike: the caller's notes, and 401 for a token nobody has."""
    for token in (TOKEN, "nobody"):
        answers = {name: get(base + url, token) for name, url in VIEWS.items()}
        if len(set(map(json.dumps, answers.values()))) != 1:
            sys.exit(f"the views disagree for token {token!r}: {answers}")
    status, body = get(base + VIEWS["by hand"], TOKEN)
    if status != 200 or not body:
        sys.exit(f"unexpected answer: {status} {body}")


def wrk(url: str, seconds: int, connections: int) -> float:
    """Requests per second of one wrk run (every response a 200, or it stops here)."""
    run = subprocess.run(
        [
            *("wrk", "--threads", "1", "--connections", str(connections)),
            *("--duration", f"{seconds}s", "--header", f"Authorization: Bearer {TOKEN}", url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if "Non-2xx" in run.stdout or "Socket errors" in run.stdout:
        sys.exit(f"wrk saw errors on {url}:\n{run.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", run.stdout)
    if match is None:
        sys.exit(f"no Requests/sec in wrk's output:\n{run.stdout}")
    return float(match.group(1))


def workers_of(server: subprocess.Popen[bytes]) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def profile(server: subprocess.Popen[bytes], base: str, seconds: int, connections: int) -> None:
    """py-spy samples each worker while wrk loads the sync view: where the time goes."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        sys.exit("--profile needs py-spy (pip install py-spy)")
    folder = Path(tempfile.mkdtemp(prefix="bench-django-profile-"))
    spies = [
        subprocess.Popen(
            [
                *(py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "500"),
                *("--duration", str(seconds), "--output", str(folder / f"{pid}.txt")),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers_of(server)
    ]
    time.sleep(1)  # py-spy attached
    wrk(base + VIEWS["sync API"], seconds, connections)
    for spy in spies:
        spy.wait(60)
    shares: collections.Counter[str] = collections.Counter()
    library: collections.Counter[str] = collections.Counter()
    total = 0
    for path in folder.glob("*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            samples = int(count)
            total += samples
            shares[_part(frames[-1])] += samples
            ours = [f for f in frames if _part(f) == "fastapi-depends-anywhere"]
            if ours:
                library[ours[-1].split(" (")[0]] += samples
    shutil.rmtree(folder, ignore_errors=True)
    if not total:
        print("py-spy took no samples (ptrace not permitted?)")
        return
    print(f"\nwhere a worker's time goes under load on {VIEWS['sync API']} ({total} samples):")
    for part, samples in shares.most_common():
        print(f"  {part:<28}{samples / total:6.1%}")
    print("innermost library function on the stack (its callees included):")
    for name, samples in library.most_common(12):
        print(f"  {name:<50}{samples / total:6.1%}")


def _part(frame: str) -> str:
    """Which part of the stack a py-spy frame ``function (file:line)`` belongs to."""
    where = frame.rpartition("(")[2]
    for marker, part in (
        ("fda_core", "fastapi-depends-anywhere"),
        ("fda_sync", "fastapi-depends-anywhere"),
        ("sqlalchemy", "SQLAlchemy"),
        ("django", "Django"),
        ("gunicorn", "gunicorn"),
        ("_django_site", "the views and dependencies"),
        ("fastapi", "FastAPI"),
        ("starlette", "Starlette"),
        ("pydantic", "pydantic"),
    ):
        if marker in where:
            return part
    return "other (stdlib, sqlite3...)"


def instructions(env: dict[str, str]) -> dict[str, float]:
    """Instructions per request of each view, in this process's interpreter under
    callgrind: the views called by Django's test ``RequestFactory``, no server, no load
    generator, so the figure does not move with the machine's load."""
    os.environ.update(env)
    sys.path[:0] = [str(EXAMPLES), str(ROOT / "bench")]
    return _callgrind.count(Path(__file__), [], [*VIEWS, WITHOUT_HEADER], calls=300)


def serve_in_callgrind() -> None:
    """The process ``instructions`` runs under callgrind."""
    sys.path[:0] = [str(EXAMPLES), str(ROOT / "bench")]
    import _django_site
    from django.test import RequestFactory

    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    views = {
        "sync API": _django_site.sync_view,
        "by hand": _django_site.hand_view,
        WITHOUT_HEADER: _django_site.sync_view_without_header,
    }
    _callgrind.serve({name: lambda view=view: view(request) for name, view in views.items()}, 300)


def main() -> None:
    if _callgrind.in_child():
        serve_in_callgrind()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3, help="per URL and round")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=4, help="wrk's open connections")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS")
    parser.add_argument("--page", type=Path, help="write the table into this page")
    parser.add_argument(
        "--no-instructions",
        dest="instructions",
        action="store_false",
        help="skip the instruction counts (callgrind), which take a minute or two",
    )
    add_cpu_option(parser)  # gunicorn and wrk, started later, inherit it
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_django.py needs wrk (Debian/Ubuntu: apt-get install wrk)")
    pin(parser, args.cpu)

    folder = Path(tempfile.mkdtemp(prefix="bench-django-"))
    env = {
        **os.environ,
        "NOTES_DATABASE": str(folder / "notes.sqlite3"),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(ROOT / "bench")]),
    }
    for command in ("init-db", "seed"):
        subprocess.run(
            [sys.executable, "-m", "notes_service", command],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    server, base = start_server(folder, env, args.workers)
    rates: dict[str, list[float]] = {name: [] for name in VIEWS}
    try:
        check_same(base)
        names = list(VIEWS)
        for name in names:  # warm-up: every worker has served both views
            wrk(base + VIEWS[name], 1, args.connections)
        for number in range(args.rounds):
            order = names[number % 2 :] + names[: number % 2]
            for name in order:
                rates[name].append(wrk(base + VIEWS[name], args.seconds, args.connections))
        if args.profile:
            profile(server, base, args.profile, args.connections)
        counts = instructions(env) if args.instructions and _callgrind.available() else None
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        shutil.rmtree(folder, ignore_errors=True)

    ratios = [ours / hand for ours, hand in zip(rates["sync API"], rates["by hand"], strict=True)]
    ratio = statistics.median(ratios)
    lines = [
        f"gunicorn, {args.workers} sync worker(s); wrk, {args.connections} connections; "
        f"{args.rounds} rounds of {args.seconds} s per view; Python {sys.version.split()[0]}. "
        f"**The sync API's view serves {ratio:.3f}\N{MULTIPLICATION SIGN} the requests per "
        f"second of the view wired by hand** (median of the rounds' ratios; "
        f"{min(ratios):.3f} to {max(ratios):.3f}).",
        "",
        "| view | requests/s (median) | range |",
        "|---|---:|---:|",
    ]
    for name, values in rates.items():
        low, high = min(values), max(values)
        lines.append(f"| {name} | {statistics.median(values):,.0f} | {low:,.0f} to {high:,.0f} |")
    if counts is not None:
        hand = counts["by hand"]
        lines += [
            "",
            f"Instructions per request, the views called in one process under callgrind "
            f"(no server): sync API {counts['sync API']:,.0f}, by hand {hand:,.0f}; the "
            f"sync API's view costs {counts['sync API'] / hand:.3f}\N{MULTIPLICATION SIGN} "
            f"the instructions, {counts['sync API'] - hand:,.0f} more per request. "
            f"{counts['sync API'] - counts[WITHOUT_HEADER]:,.0f} of them come with the "
            "header parameter (FastAPI parsing it, as in a route, and the request it is read "
            f"from): the same view reading the token without one costs "
            f"{counts[WITHOUT_HEADER] / hand:.3f}\N{MULTIPLICATION SIGN} the instructions "
            "of the view by hand.",
        ]
    text = "\n".join(lines)
    print(text)
    if args.page is not None:
        write_table(args.page, "django", text)
    missed = [] if ratio >= TARGET else [f"requests/s {ratio:.3f}x the view by hand < {TARGET}"]
    if counts is not None and counts["sync API"] / counts["by hand"] > 1 / TARGET:
        # The same target in instructions, which the machine's load does not move.
        share = counts["by hand"] / counts["sync API"]
        missed.append(f"instructions: the view by hand's are {share:.3f}x the sync API's")
    print("\n".join(f"MISSED: {m}" for m in missed) or "all targets met")


if __name__ == "__main__":
    main()
