"""Which app a call resolves against, overrides, and analysing the graph only once."""

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

from fda_core import (
    _compat,
    configure,
    get_app,
    get_context_factory,
    is_configured,
    reset_config,
    with_fastapi_depends,
)


async def app_name(request: Request) -> str:
    return str(request.app.title)


AppName = Annotated[str, Depends(app_name)]


@with_fastapi_depends
async def decorated_at_import(*, name: AppName) -> str:
    return name


async def test_decorated_before_configure_binds_at_call_time() -> None:
    configure(app=FastAPI(title="first"))
    assert await decorated_at_import() == "first"
    configure(app=FastAPI(title="second"))
    assert await decorated_at_import() == "second"


async def test_explicit_app_wins_over_the_configured_one() -> None:
    configure(app=FastAPI(title="configured"))
    explicit = FastAPI(title="explicit")

    @with_fastapi_depends(app=explicit)
    async def f(*, name: AppName) -> str:
        return name

    assert await f() == "explicit"


async def test_no_app_names_configure_and_app_argument() -> None:
    with pytest.raises(RuntimeError, match=r"configure\(app=app\).*app=app") as info:
        await decorated_at_import()
    assert "with_fastapi_depends(app=app)" in str(info.value)


def test_get_app_is_configured_get_context_factory_and_reset_config() -> None:
    """The readers answer as 1.x's did: ``None`` / ``False`` when nothing is configured
    (``if get_app() is None: configure(...)``); a call that needs the app raises."""
    assert (get_app(), get_context_factory(), is_configured()) == (None, None, False)
    configure()  # configured, with no app: 1.x told the two apart too
    assert (get_app(), is_configured()) == (None, True)
    app = FastAPI()

    def factory(ctx: Mapping[str, Any]) -> AbstractContextManager[None]:
        return nullcontext()

    configure(app=app, context_factory=factory)
    assert (get_app(), get_context_factory(), is_configured()) == (app, factory, True)
    reset_config()
    assert (get_app(), get_context_factory(), is_configured()) == (None, None, False)


async def test_a_1_x_style_configure_if_missing_works() -> None:
    app = FastAPI(title="late")
    if get_app() is None:
        configure(app=app)
    assert await decorated_at_import() == "late"


def test_configure_rejects_what_is_not_an_app() -> None:
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        configure(app="app")  # type: ignore[arg-type]


async def test_overrides_apply_at_call_time_even_when_set_after_decoration() -> None:
    app = FastAPI()
    configure(app=app)

    async def get_db() -> str:
        return "real"

    async def get_test_db() -> str:
        return "test"

    @with_fastapi_depends
    async def my_function(*, db: Annotated[str, Depends(get_db)]) -> str:
        return db

    assert await my_function() == "real"
    app.dependency_overrides[get_db] = get_test_db
    assert await my_function() == "test"
    app.dependency_overrides.clear()
    assert await my_function() == "real"


async def test_the_graph_is_analysed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(app=FastAPI())
    analysed: list[object] = []
    build = _compat.build_dependant

    def counting(call: object, **kwargs: object) -> object:
        analysed.append(call)
        return build(call, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_compat, "build_dependant", counting)

    async def dep() -> int:
        return 1

    @with_fastapi_depends
    async def f(x: int, *, d: Annotated[int, Depends(dep)]) -> int:
        return x + d

    assert len(analysed) == 1  # at decoration
    for i in range(20):
        assert await f(i) == i + 1
    assert len(analysed) == 1
    # A caller passing the dependency gets a second (cached) variant, once.
    for _ in range(3):
        assert await f(1, d=5) == 6
    assert len(analysed) == 2


async def test_a_router_instead_of_the_app_is_a_clear_error() -> None:
    from fastapi import APIRouter

    from fda_core import FastApiDepsStack

    router = APIRouter()

    @with_fastapi_depends(app=router)  # type: ignore[arg-type]
    async def f() -> None: ...

    with pytest.raises(TypeError, match=r"expects the FastAPI application, got <fastapi\.routing"):
        await f()
    with pytest.raises(TypeError, match="expects the FastAPI application"):
        await FastApiDepsStack(app=router).start()  # type: ignore[arg-type]


async def test_request_url_for_works_in_a_dependency() -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> int:
        return item_id

    async def link(request: Request) -> str:
        return str(request.url_for("item", item_id=3))

    @with_fastapi_depends(app=app)
    async def f(*, url: Annotated[str, Depends(link)]) -> str:
        return url

    assert await f() == "http://localhost/items/3"
