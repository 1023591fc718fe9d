"""The service's tables, seen by Django's ORM. Alembic owns them: ``managed = False``."""

from django.db import models


class Account(models.Model):
    name = models.CharField(max_length=50, unique=True)
    token = models.CharField(max_length=64, unique=True)

    class Meta:
        managed = False
        db_table = "users"


class Note(models.Model):
    author = models.ForeignKey(Account, models.DO_NOTHING, related_name="notes")
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "notes"
