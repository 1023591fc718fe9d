from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "notes_service.django_site"
    label = "notes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fastapi_depends_anywhere import configure
        from notes_service.app import app

        configure(app=app)  # the FastAPI app whose dependencies the services resolve
