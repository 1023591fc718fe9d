"""The tasks and threads a resolution runs in.

``threads``: where ``def`` dependencies run (FastAPI's threadpool, or the thread that waits
for the call); ``holder``: an async context entered, used and exited by one task of its own
(FastAPI tears down in the task that resolved); ``lifespan``: the app's lifespan, once per
event loop, shared while in use; ``carry``: a ``GeneratorExit`` carried across futures.
"""
