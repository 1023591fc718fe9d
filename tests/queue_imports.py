"""Whether a task queue imports here. The locked taskiq (0.13) needs pydantic 2, which the
pydantic 1 cells of the matrix install over it: there, taskiq's tests, docs page and hook
modules are left out, and only there (taskiq 0.12 runs on pydantic 1: ``nox -s lowest``)."""

from __future__ import annotations

import importlib

#: Why a queue's tests are left out where it does not import.
REASON = "the locked taskiq (0.13) needs pydantic 2"


def imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
