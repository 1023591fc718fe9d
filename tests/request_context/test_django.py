"""From a Django view: ``scope_from_django(request)`` in an ``ambient_scope`` block around
``.delay()``; the task's graph sees what a FastAPI route sees of the same request.

Django runs in a process of its own (its settings are configured once per process); the
task runs eagerly there, through the same capture, signature and rebuild as in a worker.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .rc_service import build
from .test_eager import REQUEST_HEADERS, as_sent

pytestmark = [pytest.mark.process, pytest.mark.workers]

HERE = Path(__file__).parent

SCRIPT = """
import json

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="not a secret", ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
    MIDDLEWARE=[], USE_TZ=True,
)
django.setup()

from django.http import JsonResponse
from django.test import Client
from django.urls import path

from fastapi_depends_anywhere.sync import ambient_scope, scope_from_django
from rc_service import build

service = build()  # eager tasks


def note(request, note_id):
    scope = scope_from_django(request)
    with ambient_scope(scope):
        result = service.tasks["seen"].delay()
    shown = {**scope, "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]]}
    shown["query_string"] = scope["query_string"].decode()
    return JsonResponse({"seen": result.get()["seen"], "scope": shown})


urlpatterns = [path("notes/<int:note_id>", note)]

response = Client(REMOTE_ADDR="203.0.113.7").post(
    "/notes/7?q=one&q=two", data=b"{}", content_type="application/json",
    headers=json.loads(HEADERS),
)
print(json.dumps(response.json()))
"""


def test_a_django_view_sends_what_a_fastapi_route_would(tmp_path: Path) -> None:
    script = tmp_path / "django_view.py"
    script.write_text(SCRIPT.replace("HEADERS", repr(json.dumps(REQUEST_HEADERS))))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    scope = answer["scope"]
    assert (scope["method"], scope["path"], scope["query_string"]) == (
        "POST",
        "/notes/7",
        "q=one&q=two",
    )
    assert scope["client"] == ["203.0.113.7", 0]
    assert scope["path_params"] == {"note_id": "7"}
    headers = dict(scope["headers"])
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == "2"
    assert headers["authorization"] == "Bearer ann-token"
    assert headers["x-trace-id"] == "t-1"

    with TestClient(build().api) as client:
        route = client.post("/notes/7?q=one&q=two", json={}, headers=REQUEST_HEADERS).json()
    expected = {**as_sent(route["route"]), "client": "203.0.113.7"}
    assert answer["seen"] == expected
