"""F3: a real Celery worker (prefork pool, concurrency 2) with a real Redis broker.

The worker's parent uses the bridge when it imports the tasks module, before the pool
forks (as an application does at import). Every task must succeed in a child; each has a
2-second hard time limit, so a task hanging on an inherited loop fails instead of waiting.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.process, pytest.mark.workers]

HERE = Path(__file__).parent
TASKS = 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` and wait for the exit (``_wait_for_exit``)."""
    if process.poll() is None:
        process.send_signal(signum)
    _wait_for_exit(process)


def _wait_for_exit(process: subprocess.Popen[bytes]) -> None:
    """Wait for a signalled worker to exit; kill one that has not gone in minutes (a warm
    shutdown on a busy machine can take a while).

    Never signal it again: as Python exits it gives each handled signal back its default
    action, so a second SIGTERM that comes while the worker is finishing kills it (-15)."""
    try:
        process.wait(240)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(60)


def start_worker(
    app: str,
    queue: str,
    log: Path,
    env: dict[str, str],
    pool: str = "prefork",
    concurrency: int = 2,
) -> subprocess.Popen[bytes]:
    """``celery -A app worker`` on ``queue`` alone, its output in ``log``; no gossip, mingle
    or heartbeat: it talks to the broker for the test's tasks only."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", app, "worker"),
                *("--pool", pool, "--concurrency", str(concurrency), "--queues", queue),
                *("--loglevel", "INFO", "--hostname", f"{queue}@%h"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of our own on a free loopback port, stopped after the test."""
    with redis_server(tmp_path) as url:
        yield url


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server on a free loopback port (files in ``folder``); its URL."""
    server = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if server is None:
        pytest.fail(
            "redis-server is not installed: the Celery test needs a real broker "
            "(Debian/Ubuntu: apt-get install redis-server)."
        )
    port = _free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert process.poll() is None, "redis-server exited at start-up"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)


def test_f3_celery_prefork_worker_runs_every_task_in_fresh_children(
    redis_url: str, tmp_path: Path, path: str
) -> None:
    queue = f"fda-test-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "FDA_TEST_BROKER": redis_url,
        "FDA_TEST_PATH": path,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    log = tmp_path / "worker.log"
    worker = start_worker("fda_celery_tasks", queue, log, env)
    try:
        results = _send_tasks(redis_url, queue)
    except BaseException:
        _stop(worker)
        print(log.read_text(errors="replace")[-6000:])
        raise
    _stop(worker, signal.SIGQUIT)  # every task is done: no need for a warm shutdown
    worker_log = log.read_text(errors="replace")

    assert [result["n"] for result in results] == list(range(1, TASKS + 1))
    parent = results[0]["parent"]
    for result in results:
        n, pid = result["n"], result["pid"]
        assert pid != parent  # ran in a forked child
        assert result["bridge pid"] == pid  # on the child's own loop
        assert result["sync"] == [n, pid, "MainThread"]  # a def body: the caller's thread
        assert result["async"] == [n, pid, "fda-sync-bridge"]
        assert result["numbers"] == [0, 1, 2]
        assert result["stack"] == pid
        assert result["teardowns"] == 4
    assert "Traceback" not in worker_log, worker_log[-4000:]


def _send_tasks(broker: str, queue: str) -> list[dict[str, object]]:
    """Send the tasks by name from a client app; wait for each result (bounded)."""
    from celery import Celery

    client = Celery("client", broker=broker, backend=broker)
    try:
        pending = [
            client.send_task("fda_celery_tasks.work", args=[n], queue=queue)
            for n in range(1, TASKS + 1)
        ]
        results = []
        for result in pending:
            results.append(result.get(timeout=240))
            result.forget()
        return results
    finally:
        client.close()
