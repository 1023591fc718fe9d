"""The service's command line: ``python -m notes_service COMMAND``.

Each command is a function of the app's dependencies run by
``runnify_with_fastapi_depends``: the app's lifespan starts (the engine opens), the
dependencies resolve, the body runs, then everything is torn down as after a request.
"""

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from alembic import command
from alembic.config import Config
from fastapi import HTTPException
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from fastapi_depends_anywhere import runnify_with_fastapi_depends, with_fastapi_depends
from notes_service.app import app, settings_for  # importing it configures the app
from notes_service.deps import CurrentUserDep, NotesDep, SessionDep, SettingsDep
from notes_service.models import Note
from notes_service.settings import Settings

#: (name, token) of the users ``seed`` creates.
USERS = [("ann", "ann-token"), ("bob", "bob-token")]
TOKENS = ", ".join(f"{token} ({name})" for name, token in USERS)


class Commands(TyperGroup):
    """The commands, and one line instead of a traceback for a database with no tables yet."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            if "no such table" not in str(exc.orig):
                raise
            database = settings_for(app).database
            typer.echo(
                f"error: {database} has no tables yet: run `python -m notes_service init-db`",
                err=True,
            )
            raise typer.Exit(1) from None


cli = typer.Typer(
    cls=Commands,
    name="notes_service",
    help=f"The notes service's maintenance commands. The users that seed creates, with their "
    f"bearer tokens: {TOKENS}.",
    no_args_is_help=True,
    add_completion=False,
)

#: (author, text, age in days) of the notes ``seed`` creates.
NOTES = [
    ("ann", "Buy milk", 0),
    ("ann", "Call the plumber", 3),
    ("bob", "Draft the release notes", 1),
    ("ann", "Renew the passport", 90),
]


def alembic_config() -> Config:
    return Config(str(Path(__file__).with_name("alembic.ini")))


@cli.command("init-db")
def init_db() -> None:
    """Create or upgrade the schema: Alembic's migrations, on the app's engine."""
    command.upgrade(alembic_config(), "head")
    show_revision()


@runnify_with_fastapi_depends
async def show_revision(*, settings: SettingsDep, session: SessionDep) -> None:
    revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
    typer.echo(f"{settings.database}: schema at revision {revision}")


@cli.command()
@runnify_with_fastapi_depends
async def seed(*, notes: NotesDep) -> None:
    """Add two users and a few notes, once."""
    if await notes.count_users():
        typer.echo("already seeded")
        return
    users = {name: await notes.add_user(name, token) for name, token in USERS}
    for author, note, age in NOTES:
        await notes.add(users[author], note, created_at=notes.now - timedelta(days=age))
    typer.echo(f"seeded {len(USERS)} users and {len(NOTES)} notes; tokens: {TOKENS}")


@with_fastapi_depends
async def add_note(note: str, *, user: CurrentUserDep, notes: NotesDep) -> Note:
    """What ``POST /notes`` does, for the caller of a bearer token."""
    return await notes.add(user, note)


@cli.command("add-note")
@runnify_with_fastapi_depends
async def add_note_command(
    note: Annotated[str, typer.Argument(help="The note's text.")],
    token: Annotated[
        str,
        typer.Option(
            envvar="NOTES_TOKEN",
            help=f"The author's bearer token; seed creates {TOKENS}.",
        ),
    ],
) -> None:
    """Add a note as the user whose token is given, as the API would."""
    try:
        added = await add_note(note, _scope={"headers": {"authorization": f"Bearer {token}"}})
    except HTTPException as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{added.author.name} added note {added.id}: {added.text}")


@cli.command()
@runnify_with_fastapi_depends
async def report(*, notes: NotesDep, settings: SettingsDep) -> None:
    """Notes per author."""
    for name, count in await notes.counts_by_author():
        typer.echo(f"{name}: {_count(count, 'note')}")
    typer.echo(f"total: {_count(await notes.count(), 'note')} in {settings.database}")


@cli.command()
@runnify_with_fastapi_depends
async def cleanup(
    days: Annotated[int, typer.Option(min=1, help="Delete notes older than this.")] = 30,
    *,
    notes: NotesDep,
) -> None:
    """Delete old notes."""
    deleted = await notes.delete_older_than(days)
    typer.echo(f"deleted {_count(deleted, 'note')} older than {_count(days, 'day')}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@cli.command()
def demo() -> None:
    """init-db, seed, add-note as ann, then report: the README's demo."""
    database = Settings.from_env().database
    if database.exists():
        typer.echo(f"{database} exists: the demo adds to it (delete the file to start over)")
    init_db()
    seed()
    add_note_command("Written by the demo", token="ann-token")
    report()


if __name__ == "__main__":
    cli()
