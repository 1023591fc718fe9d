"""A batch of notes, the work every task queue's worker does: one function of the app's
dependencies, run by the sync API in Celery, Dramatiq and RQ workers and by the async API
in taskiq workers (each queue's module decorates it with its API's
``with_fastapi_depends``).

The caller's token travels as a task argument; ``bearer(token)`` turns it back into the
Authorization header of the call's scope, so the current-user dependency works as in a
request.
"""

from typing import Any

from notes_service.deps import CurrentUserDep, NotesDep


class RejectedNoteError(ValueError):
    """A note of a batch is invalid: the whole batch is rolled back."""


def bearer(token: str) -> dict[str, Any]:
    """The scope of a request that carries ``token``."""
    return {"headers": {"authorization": f"Bearer {token}"}}


async def add_notes(texts: list[str], *, user: CurrentUserDep, notes: NotesDep) -> list[int]:
    """All the notes in one session: committed together, or rolled back together."""
    ids = []
    for number, text in enumerate(texts, 1):
        if not text.strip():
            raise RejectedNoteError(f"note {number} of {len(texts)} is empty")
        ids.append((await notes.add(user, text)).id)
    return ids
