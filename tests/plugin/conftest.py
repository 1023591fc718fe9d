"""The plugin's fixtures serve this suite too (it runs with the plugins installed), on the
app of ``plugin.app``; the process tests run inner pytest sessions (``inner``)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from plugin import app as plugin_app
from plugin.inner import Inner


@pytest.fixture(scope="session")
def fda_app() -> FastAPI:
    """This suite resets the configuration around every test: the fixtures get the app
    from here, as a project may choose it."""
    return plugin_app.app


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Inner:
    return Inner(pytester, monkeypatch)
