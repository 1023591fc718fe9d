"""A real ``gunicorn -k gevent --preload`` serving a WSGI app that makes sync calls.

The master imports the app unpatched and uses the bridge (gunicorn's order: it forks its
worker before the worker monkey-patches). 40 requests at once: each waits in its async
dependency until 20 wait together, so all are served only if a waiting request leaves the
hub to the others. Every request's dependencies are torn down before it answers; the
graceful stop (SIGTERM) prints no traceback. One gunicorn for the module.
"""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .test_celery import _stop

pytestmark = [pytest.mark.process, pytest.mark.workers, pytest.mark.chosen_path]

HERE = Path(__file__).parent
REQUESTS = 40
GATE = 20


@dataclass
class Served:
    responses: list[dict[str, Any]]
    master: int
    log: str
    returncode: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=240) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    folder = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    log = folder / "gunicorn.log"
    env = {
        **os.environ,
        "FDA_TEST_GATE": str(GATE),
        "XDG_RUNTIME_DIR": str(folder),  # gunicorn 24+'s control socket: here, not in ~
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--preload", "--worker-class", "gevent"),
                *("--workers", "1", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "60"),
                "fda_gunicorn_gevent_app:app",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                _get(f"{base}/ready")
                break
            except OSError:
                assert server.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)
        with concurrent.futures.ThreadPoolExecutor(REQUESTS) as clients:
            responses = list(clients.map(_get, [f"{base}/call?{n}" for n in range(REQUESTS)]))
    except BaseException:
        _stop(server, signal.SIGQUIT)
        print(log.read_text(errors="replace")[-6000:])
        raise
    _stop(server)  # SIGTERM: a graceful stop; the worker exits through the bridge's exit
    return Served(responses, server.pid, log.read_text(errors="replace"), server.returncode)


@pytest.mark.timeout(600)
def test_every_request_is_served_in_its_greenlet_and_torn_down(served: Served) -> None:
    assert [r["request"] for r in served.responses] == [str(n) for n in range(REQUESTS)]
    for response in served.responses:
        assert response["loop thread"] == "fda-sync-bridge"
        assert response["def in the request's greenlet"]
        assert response["torn_down"], response
    # 20 waited for the loop at once: a waiting greenlet left the hub to the others.
    assert max(r["most_waiting"] for r in served.responses) >= GATE


@pytest.mark.timeout(600)
def test_the_worker_patched_after_the_fork_runs_its_own_loop(served: Served) -> None:
    workers = {r["pid"] for r in served.responses}
    assert len(workers) == 1
    assert served.master not in workers
    for response in served.responses:
        assert response["preloaded_by"] == served.master  # the master's bridge, pre-fork
        assert response["bridge_pid"] == response["pid"]  # the worker's own


@pytest.mark.timeout(600)
def test_the_graceful_stop_is_quiet(served: Served) -> None:
    assert served.returncode == 0, served.log[-4000:]
    assert "Traceback" not in served.log, served.log[-4000:]
    assert "Exception" not in served.log, served.log[-4000:]
