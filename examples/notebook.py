# ruff: noqa: F704, B018
# A notebook in the percent format: Jupyter (with jupytext), VS Code and PyCharm open it as
# cells. Its cells use top-level `await`, as notebook cells may, so it is not a module to
# import: it runs in a kernel, or cell by cell as tests/integration/test_notebook.py does.
# It needs a database: `python -m notes_service init-db` and `python -m notes_service seed`.

# %% Cell 1: start the app once; resolve what the next cells use
from fastapi_depends_anywhere import FastApiDepsStack
from notes_service.app import app
from notes_service.deps import NotesDep

stack = FastApiDepsStack(app=app)
await stack.start()  # the lifespan's startup: the engine opens
notes = await stack.resolve(NotesDep)  # one session, open until the stack closes

# %% Cell 2: use them freely, across cells: read...
authors = await notes.counts_by_author()
authors

# %% Cell 3: ...and write, in the stack's session
ann = await notes.user_named("ann")
await notes.add(ann, "Explored in a notebook")
[note.text for note in await notes.of(ann)]

# %% Cell 4: tear down: the session commits and closes, then the lifespan disposes of the engine
await stack.close()
