"""route_template: the matched route's full template, whatever the FastAPI version keeps."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics._http import route_template


def test_the_template_carries_every_prefix_and_never_the_raw_path() -> None:
    seen: list[str | None] = []
    router = APIRouter()

    @router.get("/items/{item_id}")
    def item(item_id: int, request: Request) -> None:
        seen.append(route_template(request.scope))

    app = FastAPI()

    @app.get("/plain/{name}")
    def plain(name: str, request: Request) -> None:
        seen.append(route_template(request.scope))

    app.include_router(router, prefix="/shop")
    client = TestClient(app)
    client.get("/shop/items/5")
    client.get("/plain/secret-token")
    assert seen == ["/shop/items/{item_id}", "/plain/{name}"]


def test_no_route_gives_none() -> None:
    assert route_template({"type": "http", "path": "/nowhere"}) is None
    assert route_template({"fastapi": {"effective_route_context": None}}) is None
