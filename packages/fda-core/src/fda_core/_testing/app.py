"""The app the plugin's fixtures use: named in the pytest configuration, or configured."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import FastAPI

from fda_core import get_app

__all__ = ["INI", "app_under_test", "load_app"]

#: The ini option naming the app, as ``module:attribute``.
INI = "fda_app"

_NO_APP = (
    "fda_app: no FastAPI app to use. Name it in your pytest configuration "
    '(`fda_app = "myapp.main:app"` under [tool.pytest.ini_options]), call '
    "`configure(app=app)` in conftest.py, or define a `fda_app` fixture returning it."
)


def app_under_test(config: pytest.Config) -> FastAPI:
    """The app of the ``fda_app`` ini option if set, else the configured one."""
    spec = str(config.getini(INI)).strip()
    if spec:
        return load_app(spec)
    app = get_app()
    if app is None:
        pytest.fail(_NO_APP, pytrace=False)
    return app


def load_app(spec: str) -> FastAPI:
    """Import ``module:attribute`` (the attribute may be dotted) and check it is an app."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        pytest.fail(
            f'{INI} = "{spec}": write it as "module:attribute", for example '
            f'{INI} = "myapp.main:app".',
            pytrace=False,
        )
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        if not hasattr(value, part):
            pytest.fail(
                f'{INI} = "{spec}": {module_name} has no attribute {attribute!r}.',
                pytrace=False,
            )
        value = getattr(value, part)
    if not isinstance(value, FastAPI):
        pytest.fail(
            f'{INI} = "{spec}" is {value!r}, not a FastAPI application: name the FastAPI() '
            "instance itself.",
            pytrace=False,
        )
    return value
