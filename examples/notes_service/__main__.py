"""``python -m notes_service``: the command line."""

from notes_service.cli import cli

cli(prog_name="notes_service")
