"""A WSGI app served by a real gunicorn in the shutdown tests: each request leaves a sync
stack and a suspended generator open in the worker (``fda_shutdown_app``), for the
worker's ``worker_exit`` hook to tear down before the process lifespan shuts down."""

from collections.abc import Callable, Iterable
from typing import Any

import fda_shutdown_app as held

from fda_core import configure
from fda_sync import start_process_lifespan

configure(app=held.app)
start_process_lifespan(lazy=True)  # in the worker, at its first sync call


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    pid = held.hold()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(pid).encode()]
