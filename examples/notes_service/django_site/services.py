"""Functions of the FastAPI app's dependencies, called from Django's sync code."""

from typing import Annotated, Any

from fastapi import Depends, HTTPException

from fastapi_depends_anywhere.sync import with_fastapi_depends, with_fastapi_lifecycle
from notes_service.deps import BearerTokenDep, NotesDep
from notes_service.django_site.models import Account


def get_account(token: BearerTokenDep) -> Account:
    """A ``def`` dependency on Django's ORM, behind the app's bearer-token dependency.

    Called through the sync API, it runs in the caller's thread: the query uses the
    view's own connection (Django's connections are per thread), which Django's request
    cycle closes as usual.
    """
    try:
        return Account.objects.get(token=token)
    except Account.DoesNotExist:
        raise HTTPException(401, "Invalid token") from None


AccountDep = Annotated[Account, Depends(get_account)]


@with_fastapi_depends
def notes_of(*, account: AccountDep) -> list[dict[str, Any]]:
    """A ``def`` body runs in the caller's thread: the view's, on the view's connection."""
    return list(account.notes.order_by("id").values("id", "text"))


@with_fastapi_lifecycle
@with_fastapi_depends
async def notes_per_author(*, notes: NotesDep) -> list[tuple[str, int]]:
    """The service's own repository (SQLAlchemy, inside the app's lifespan)."""
    return await notes.counts_by_author()
