"""Hooks into task queues and servers: which of their signals start and stop the process
lifespan (``fda_sync._api.process_lifespan``). Each one imports its framework lazily, from
its public module (``fda_sync.celery``, ``.dramatiq``, ``.rq``); the async ones are in
``fda_core._integrations``."""
