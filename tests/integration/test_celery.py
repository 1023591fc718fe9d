"""Celery: a real worker (prefork pool, two children) on a real Redis broker runs the
example's tasks, which write through the app's dependencies with the sync API.

The redis-server fixture is the sync API's own (tests/sync/test_celery.py): it starts a
server on a free loopback port and stops it, and fails the test if none is installed.
"""

import gc
import os
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sync.test_celery import _stop, redis_url, start_worker

pytestmark = [pytest.mark.process, pytest.mark.workers]

__all__ = ["redis_url"]  # a fixture

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: (token, notes) of each task: ten batches, one note or two.
BATCHES = [
    ("ann-token" if n % 2 else "bob-token", [f"note {n}"] + ([f"note {n}b"] if n % 3 == 0 else []))
    for n in range(1, 11)
]


@dataclass
class Worker:
    queue: str
    pid: int
    log: Path


@pytest.fixture
def worker(redis_url: str, database: Path, tmp_path: Path) -> Iterator[Worker]:
    """A worker on the test's database, consuming a queue of its own."""
    queue = f"notes-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "NOTES_DATABASE": str(database),
        "NOTES_BROKER_URL": redis_url,
        "PYTHONPATH": str(EXAMPLES),
    }
    log = tmp_path / "worker.log"
    process = start_worker("notes_service.tasks", queue, log, env)
    try:
        yield Worker(queue, process.pid, log)
    finally:
        _stop(process, signal.SIGTERM)  # a warm shutdown, as a deployment stops a worker


def notes_by_author(database: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(database)) as conn:
        found: dict[str, list[str]] = {}
        for name, text in conn.execute(
            "SELECT u.name, n.text FROM notes n JOIN users u ON u.id = n.author_id ORDER BY n.id"
        ):
            found.setdefault(name, []).append(text)
        return found


def send_batches(broker: str, queue: str) -> tuple[list[dict[str, Any]], tuple[str, str]]:
    """Send every batch, then the invalid one, by name; their results, and the invalid
    batch's error as (type name, message). No result object outlives the client."""
    client = Celery("client", broker=broker, backend=broker)
    try:
        sent = [
            client.send_task("notes.import_notes", args=[token, texts], queue=queue)
            for token, texts in BATCHES
        ]
        failing = client.send_task(
            "notes.import_notes", args=["bob-token", ["Never stored", "  "]], queue=queue
        )
        results = [result.get(timeout=240) for result in sent]
        error = ("", "")
        try:
            failing.get(timeout=240)
        except Exception as exc:
            error = (type(exc).__name__, str(exc))
        for result in [*sent, failing]:
            result.forget()
        # Released while the client is connected: a result collected later would unsubscribe
        # from a Redis server that is gone (some Celery releases warn about it from __del__).
        del sent, failing, result
        gc.collect()
        return results, error
    finally:
        client.close()


def test_a_prefork_worker_writes_through_the_apps_dependencies(
    worker: Worker, redis_url: str, database: Path
) -> None:
    before = notes_by_author(database)
    try:
        results, error = send_batches(redis_url, worker.queue)
    except BaseException:
        print(worker.log.read_text(errors="replace")[-6000:])
        raise

    assert error == ("RejectedNoteError", "note 2 of 2 is empty")
    assert all(result["pid"] != worker.pid for result in results)  # in the pool's children
    ids = [note_id for result in results for note_id in result["ids"]]
    assert [len(result["ids"]) for result in results] == [len(texts) for _, texts in BATCHES]
    assert len(set(ids)) == len(ids) == 13

    after = notes_by_author(database)
    for name, token in (("ann", "ann-token"), ("bob", "bob-token")):
        written = sorted(text for t, texts in BATCHES if t == token for text in texts)
        assert sorted(after[name][len(before[name]) :]) == written
    assert "Never stored" not in after["bob"]  # the failed batch was rolled back whole
