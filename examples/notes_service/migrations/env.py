"""Alembic's environment: the migrations run on the engine the app's lifespan opens.

``alembic upgrade head`` (or ``python -m notes_service init-db``) starts the app's
lifespan, resolves the engine dependency, migrates, then shuts the app down.
"""

from alembic import context
from sqlalchemy.engine import Connection

from fastapi_depends_anywhere import runnify_with_fastapi_depends
from notes_service.app import app, settings_for
from notes_service.deps import EngineDep
from notes_service.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


@runnify_with_fastapi_depends
async def run_migrations_online(*, engine: EngineDep) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: the SQL, for the database the settings name."""
    context.configure(
        url=settings_for(app).database_url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
