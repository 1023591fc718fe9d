"""Starting a queue's worker for a test, and reading what its processes recorded."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.test_celery import _stop

HERE = Path(__file__).parent


def create(record: Path) -> None:
    with closing(sqlite3.connect(record)) as conn:
        conn.execute("CREATE TABLE events (event TEXT, pid INTEGER, data TEXT)")


def events(record: Path) -> list[tuple[str, int, str]]:
    with closing(sqlite3.connect(record, timeout=60)) as conn:
        return list(conn.execute("SELECT event, pid, data FROM events ORDER BY rowid"))


@dataclass
class Worker:
    """A worker's main process, its log, and the SQLite file its processes record in."""

    process: subprocess.Popen[bytes]
    log: Path
    record: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def wait(self, done: Callable[[list[tuple[str, int, str]]], bool], what: str) -> None:
        """Until ``done(events)``; fails, with the log, if the worker exits first."""
        deadline = time.monotonic() + 240
        while not done(events(self.record)):
            assert self.process.poll() is None, f"the worker exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"no {what} in 240 s:\n{self.tail()}"
            time.sleep(0.1)

    def stop(self, *errors: str) -> Run:
        """A warm shutdown (SIGTERM, as a deployment stops a worker), then what it did.
        The log shows a traceback for each of the ``errors`` expected, and no other."""
        _stop(self.process, signal.SIGTERM)
        log = self.log.read_text(errors="replace")
        assert self.process.returncode == 0, log[-4000:]
        assert log.count("Traceback") == len(errors), log[-4000:]
        for error in errors:
            assert error in log, log[-4000:]
        return Run(self.process.pid, events(self.record))


def start(command: list[str], folder: Path, broker: str) -> Worker:
    folder.mkdir()
    record = folder / "events.sqlite3"
    create(record)
    env = {
        **os.environ,
        "FDA_TEST_BROKER": broker,
        "FDA_TEST_RECORD": str(record),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    log = folder / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=folder
        )
    return Worker(process, log, record)


@dataclass
class Run:
    """What a worker's processes recorded: lifespans, tasks, teardowns."""

    pid: int  # the worker's main process
    events: list[tuple[str, int, str]]

    def rows(self, event: str) -> list[tuple[int, str]]:
        return [(pid, data) for kind, pid, data in self.events if kind == event]

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return sorted((json.loads(data) for _, data in self.rows("task")), key=lambda t: t["n"])

    def per_process(self, event: str) -> Counter[int]:
        return Counter(pid for pid, _ in self.rows(event))

    def check_tasks(self, count: int) -> set[int]:
        """Every task ran once, saw the lifespan of its own process, and its dependency
        was torn down once, in its process. Returns the pids that ran tasks."""
        tasks = self.tasks
        assert [task["n"] for task in tasks] == list(range(count))
        started = set(self.rows("startup"))
        teardowns = {data: pid for pid, data in self.rows("teardown")}
        assert len(teardowns) == len(self.rows("teardown"))  # each once
        for task in tasks:
            pid, token = task["seen"]
            assert pid == task["pid"]  # the state of a lifespan started in its own process
            assert (pid, token) in started
            assert teardowns[task["resource"]] == task["pid"]
        return {task["pid"] for task in tasks}

    def check_order(self) -> None:
        """In each process: its startup before its tasks, its shutdown after their
        teardowns, and nothing after its shutdown."""
        for pid in self.per_process("startup"):
            own = [kind for kind, p, _ in self.events if p == pid]
            assert own[0] == "startup", own
            assert own[-1] == "shutdown", own
            assert own.count("startup") == own.count("shutdown") == 1, own
