# pyright: reportMissingTypeStubs=false
"""The process lifespan and its Celery hook, as the docs show them, checked by mypy and
pyright (never executed)."""

from __future__ import annotations

from celery import Celery
from fastapi import FastAPI
from typing_extensions import assert_type

from fastapi_depends_anywhere.sync import start_process_lifespan, stop_process_lifespan
from fastapi_depends_anywhere.sync.celery import lifespan_per_worker_process

app = FastAPI()
celery = Celery("myapp")

assert_type(start_process_lifespan(), None)
assert_type(start_process_lifespan(app), None)
assert_type(start_process_lifespan(app, lazy=True), None)
assert_type(start_process_lifespan(lazy=True), None)
assert_type(stop_process_lifespan(), None)
assert_type(lifespan_per_worker_process(celery), None)
assert_type(lifespan_per_worker_process(celery, app=app), None)

start_process_lifespan(True)  # type: ignore[arg-type]  # lazy is keyword-only
lifespan_per_worker_process(celery, app)  # type: ignore[call-arg]  # app is keyword-only
