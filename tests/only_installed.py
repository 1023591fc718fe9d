"""Runs a script as a fresh install would: ``python only_installed.py REFUSED SCRIPT``.

``REFUSED`` names top-level modules, comma-separated, that the install the script was
written for does not bring: importing one of them raises ``ModuleNotFoundError``, as it
would there, although this environment (the test suite's) has them.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType


class Refuse(MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if path is None and fullname in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if __name__ == "__main__":
    refused, script = sys.argv[1], Path(sys.argv[2])
    sys.meta_path.insert(0, Refuse(set(refused.split(","))))
    sys.argv = [str(script)]
    sys.path[0] = str(script.parent)
    runpy.run_path(str(script), run_name="__main__")
