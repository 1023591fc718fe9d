"""Dramatiq, RQ and taskiq: a real worker of each on a real Redis broker runs the example's
tasks (``notes_service/dramatiq_actors.py``, ``rq_jobs.py``, ``taskiq_tasks.py``), started
with the commands their docs pages give, all three at once on one database. Each writes
its batches through the app's dependencies; the invalid batch of each is rolled back whole.
"""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from queue_imports import imports
from sync.test_celery import _wait_for_exit, redis_url

pytestmark = [pytest.mark.process, pytest.mark.workers]

__all__ = ["redis_url"]  # a fixture

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


#: taskiq only where it imports (queue_imports.py).
QUEUES = ("dramatiq", "rq", *(("taskiq",) if imports("taskiq") else ()))
COMMANDS = {
    "dramatiq": ["-m", "dramatiq", "notes_service.dramatiq_actors", "--processes", "1"],
    "rq": ["-m", "rq.cli", "worker", "--worker-class", "notes_service.rq_jobs.LifespanWorker"],
    "taskiq": ["-m", "taskiq", "worker", "notes_service.taskiq_tasks:broker", "--workers", "1"],
}
INVALID = ["Never stored", "  "]


def batches(queue: str) -> list[tuple[str, list[str]]]:
    return [("ann-token" if n % 2 else "bob-token", [f"{queue} {n}"]) for n in range(1, 6)]


@pytest.fixture
def workers(redis_url: str, database: Path, tmp_path: Path) -> Iterator[dict[str, Path]]:
    """One worker of each queue, on the test's database; their logs."""
    env = {
        **os.environ,
        "NOTES_DATABASE": str(database),
        "NOTES_BROKER_URL": redis_url,
        "PYTHONPATH": str(EXAMPLES),
    }
    processes, logs = [], {}
    try:
        for queue in QUEUES:
            logs[queue] = tmp_path / f"{queue}.log"
            with logs[queue].open("wb") as log:
                command = [sys.executable, *COMMANDS[queue]]
                if queue == "rq":
                    command += ["--url", redis_url]
                processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
        yield logs
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)  # warm shutdowns, all at once
        for process in processes:
            _wait_for_exit(process)


def notes(database: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        query = "SELECT u.name, n.text FROM notes n JOIN users u ON u.id = n.author_id"
        return list(conn.execute(query))


def send_dramatiq(url: str) -> None:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    client = RedisBroker(url=url)
    try:
        for token, texts in [*batches("dramatiq"), ("bob-token", INVALID)]:
            message = Message(
                queue_name="default",
                actor_name="notes.import_notes",
                args=(token, texts),
                kwargs={},
                options={},
            )
            client.enqueue(message)
        client.join("default", timeout=240_000)
    finally:
        client.close()


def send_rq(url: str) -> list[Any]:
    from redis import Redis
    from rq import Queue

    queue = Queue(connection=Redis.from_url(url))
    jobs = [
        queue.enqueue("notes_service.rq_jobs.import_notes", token, texts)
        for token, texts in [*batches("rq"), ("bob-token", INVALID)]
    ]
    deadline = time.monotonic() + 240
    while any(job.get_status(refresh=True) not in ("finished", "failed") for job in jobs):
        assert time.monotonic() < deadline, "RQ jobs still pending"
        time.sleep(0.1)
    failed = jobs[-1].latest_result()
    return [*(job.return_value() for job in jobs[:-1]), failed.exc_string if failed else None]


async def send_taskiq(url: str) -> list[Any]:
    from taskiq.kicker import AsyncKicker
    from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

    client = ListQueueBroker(url).with_result_backend(RedisAsyncResultBackend(url))
    await client.startup()
    try:
        kicker: AsyncKicker[Any, Any] = AsyncKicker("notes.import_notes", client, {})
        sent = [
            await kicker.kiq(token, texts)
            for token, texts in [*batches("taskiq"), ("bob-token", INVALID)]
        ]
        results = [await task.wait_result(timeout=240) for task in sent]
    finally:
        await client.shutdown()
    return [*(result.return_value for result in results[:-1]), results[-1].error]


@pytest.mark.timeout(600)
def test_each_queues_worker_writes_through_the_apps_dependencies(
    workers: dict[str, Path], redis_url: str, database: Path
) -> None:
    before = notes(database)
    try:
        send_dramatiq(redis_url)
        rq_results = send_rq(redis_url)
        taskiq_results = asyncio.run(send_taskiq(redis_url)) if "taskiq" in QUEUES else []
    except BaseException:
        for log in workers.values():
            print(log.read_text(errors="replace")[-4000:])
        raise

    for results in (rq_results, taskiq_results) if taskiq_results else (rq_results,):
        assert [len(result["ids"]) for result in results[:-1]] == [1] * 5
        assert "note 2 of 2 is empty" in str(results[-1])  # RejectedNoteError
    written = notes(database)[len(before) :]
    names = {"ann-token": "ann", "bob-token": "bob"}
    assert sorted(written) == sorted(
        (names[token], text)
        for queue in QUEUES
        for token, texts in batches(queue)
        for text in texts
    )
    assert "Never stored" not in {text for _, text in notes(database)}  # rolled back whole
