"""The pytest plugin of fda-sync: the sync stack and the process lifespan, per session.

Installed with fda-sync (``pytest11`` entry point ``fda_sync``, next to fda-core's, whose
``fda_app`` fixture names the app): its fixtures do nothing until a test asks for them.

- ``fda_sync_stack``: a started sync ``FastApiDepsStack`` for the session.
- ``fda_process_lifespan``: the app's lifespan for the session, shared by every sync call.
"""

import typing

import pytest

import fda_sync as _api

if typing.TYPE_CHECKING:  # names for annotations only: nothing public but __all__
    from collections.abc import Iterator

    from fastapi import FastAPI

__all__ = ["fda_process_lifespan", "fda_sync_stack"]


#: The session's started ``fda_sync_stack`` (pytest tears session fixtures down in the
#: reverse order of their set-up, so the process lifespan may end before it).
_session_stacks: "list[_api.FastApiDepsStack]" = []


@pytest.fixture(scope="session")
def fda_sync_stack(fda_app: "FastAPI") -> "Iterator[_api.FastApiDepsStack]":
    """A started sync ``FastApiDepsStack`` of ``fda_app`` for the whole session.

    The app's lifespan starts once; everything resolved from it stays open until the
    session ends, then is torn down, then the lifespan shuts down. It runs on the sync
    API's own event loop, so sync tests and tests of any async plugin can use it (from
    code that runs no event loop of its own: a ``def`` test, a sync-decorated function).
    """
    with _api.FastApiDepsStack(app=fda_app) as stack:
        _session_stacks.append(stack)
        try:
            yield stack
        finally:
            _session_stacks.remove(stack)


@pytest.fixture(scope="session")
def fda_process_lifespan(fda_app: "FastAPI") -> "Iterator[FastAPI]":
    """``fda_app``'s lifespan for the whole session: ``start_process_lifespan()``, and
    ``stop_process_lifespan()`` at the end. Every sync call of the session shares it (its
    state is ``request.state``) instead of starting the lifespan itself. Yields the app."""
    _api.start_process_lifespan(fda_app)
    yield fda_app
    # The session's stack ends first, as at the end of its own fixture: normally (the
    # code after a bare ``yield`` runs), not torn down as a stack left open at the stop.
    for stack in reversed(_session_stacks):
        stack.close()
    _api.stop_process_lifespan()
