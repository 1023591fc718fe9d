"""The worker that test_worker.py starts: ``celery -A rc_worker worker`` (the service built
from the environment, on a real broker)."""

from rc_service import from_environment

service = from_environment()
celery = service.celery
