"""notes_service: a small FastAPI service whose dependencies are reused everywhere.

- ``settings.py``: the settings dependency (environment variables, with defaults).
- ``models.py``: the SQLAlchemy 2 models (users, notes, activity).
- ``deps.py``: the dependencies: settings, engine and session (lifespan state), the clock,
  the bearer token and the current user, the notes repository.
- ``app.py``: the FastAPI app: its lifespan opens the engine; routes queue background tasks.
- ``cli.py``: a Typer CLI on ``runnify_with_fastapi_depends`` (``python -m notes_service``).
- ``batches.py``: a batch of notes, the function of the app's dependencies that every task
  queue runs.
- ``tasks.py``: Celery tasks on ``fastapi_depends_anywhere.sync``; ``dramatiq_actors.py``
  and ``rq_jobs.py`` the same for Dramatiq and RQ; ``taskiq_tasks.py``, taskiq tasks on the
  async API.
- ``django_site/``: a Django app whose view and management command call sync-decorated
  functions.
- ``alembic.ini`` and ``migrations/``: Alembic, whose ``env.py`` borrows the app's engine.
"""
