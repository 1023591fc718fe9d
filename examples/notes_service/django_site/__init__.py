"""A Django app next to the FastAPI service: same database, shared dependencies.

Its view and its management command call functions decorated with
``fastapi_depends_anywhere.sync``. The settings are the project's (the tests configure
them): ``INSTALLED_APPS = ["notes_service.django_site"]``,
``ROOT_URLCONF = "notes_service.django_site.urls"``, and a ``sqlite3`` database on the
service's file.
"""
