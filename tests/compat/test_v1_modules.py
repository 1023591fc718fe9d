"""Every 1.x module path imports, without a warning, as a real module whose ``__all__`` holds
1.x's names, each the very object of the 2.x name."""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from pathlib import Path

import pytest

from .v1_names import COMPATIBILITY_MODULES, V1_MODULES


@pytest.mark.parametrize("module", list(V1_MODULES))
def test_every_1_x_name_is_the_2_x_object(module: str) -> None:
    names, home = V1_MODULES[module]
    imported = importlib.import_module(module)
    two = importlib.import_module(home)
    for name in names:
        assert getattr(imported, name) is getattr(two, name), name
        assert name in imported.__all__, name


@pytest.mark.parametrize("module", COMPATIBILITY_MODULES)
def test_a_compatibility_module_is_a_real_module_with_1_x_names_only(module: str) -> None:
    """A file of its own (what mypy and pyright read), exporting 1.x's names and no others,
    imported without a warning."""
    names, _home = V1_MODULES[module]
    imported = importlib.import_module(module)
    assert imported.__file__ is not None
    assert Path(imported.__file__).with_suffix("").parts[-len(module.split(".")) :] == tuple(
        module.split(".")
    )
    assert sorted(imported.__all__) == sorted(names) == list(imported.__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(imported)
    assert not hasattr(importlib.import_module(module.rsplit(".", 1)[0]), "__getattr__")


def test_the_private_sync_loop_module_is_gone() -> None:
    """1.x's ``sync._loop`` (private): the bridge of ``fda_sync`` replaces it."""
    assert importlib.util.find_spec("fastapi_depends_anywhere.sync._loop") is None
