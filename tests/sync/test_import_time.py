"""A sync call at import time whose async dependency imports the package being imported.

The importing thread holds the package's import lock and waits for the loop, whose
thread waits for that lock: the call fails with an error naming the module instead of
hanging, and the loop goes on serving other calls.
"""

from pathlib import Path

import pytest

from .conftest import run_script

pytestmark = [pytest.mark.chosen_path, pytest.mark.process]

PACKAGE = """
from typing import Annotated
from fastapi import Depends, FastAPI
from fda_sync import with_fastapi_depends

async def get_setting():
    from {name} import settings  # imported lazily, from the package being imported
    return settings.VALUE

@with_fastapi_depends(app=FastAPI())
def read(s: Annotated[str, Depends(get_setting)]) -> str:
    return s

VALUE = read()
"""


def test_an_import_deadlock_is_an_error_naming_the_module(tmp_path: Path) -> None:
    names = ("on_loop", "in_caller", "in_thread")
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(PACKAGE.format(name=name))
        (tmp_path / name / "settings.py").write_text("VALUE = 'v'\n")
    script = run_script(
        f"""
import importlib, sys, threading
sys.path.insert(0, {str(tmp_path)!r})
from typing import Annotated
from fastapi import Depends, FastAPI
import fda_sync._api.decorators as decorators
from fda_sync import BridgeError, with_fastapi_depends

async def fine():
    return "fine"

@with_fastapi_depends(app=FastAPI())
def other(x: Annotated[str, Depends(fine)]) -> str:
    return x

def import_(name):
    decorators.prefers_caller = lambda plan, body_is_async: name == "in_caller"
    try:
        importlib.import_module(name)
    except BridgeError as exc:
        print(name, "refused:", f"`{{name}}` is being imported" in str(exc), flush=True)
    else:
        print(name, "imported", flush=True)

import_("on_loop")
import_("in_caller")
thread = threading.Thread(target=import_, args=("in_thread",))
thread.start()
thread.join()
print("the loop still serves:", other(), flush=True)
"""
    )
    assert script.stderr == ""
    assert script.returncode == 0
    assert script.lines == [
        "on_loop refused: True",
        "in_caller refused: True",
        "in_thread refused: True",
        "the loop still serves: fine",
    ]
