"""``python manage.py notes_report``: notes per author, through the FastAPI app."""

from typing import Any

from django.core.management.base import BaseCommand

from notes_service.django_site.services import notes_per_author


class Command(BaseCommand):
    help = "Notes per author, read through the FastAPI app's dependencies."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, count in notes_per_author():
            self.stdout.write(f"{name}: {count}")
