"""Request totals and errors by route, counted by the outermost layer of real FastAPI apps.

Every response is counted once by route template, method and status class; every error
response once by route, under the code a handler answered it with, or, when no handler
raised it (a route or a middleware returned it), under its status as ``Undeclared``.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_error_codes import BaseAppException
from fastapi_error_codes.metrics import MetricsConfig, setup_metrics
from fastapi_error_codes.metrics.buffer import UNMATCHED_ROUTE
from fastapi_error_codes.metrics.setup import UNDECLARED

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


class Gone(BaseAppException):
    """A declared error, raised by hand."""


class RateLimit:
    """A pure ASGI middleware answering 429 itself for requests with ``x-flood``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"x-flood", b"1") in scope["headers"]:
            await JSONResponse({"detail": "slow down"}, status_code=429)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def make_app(**overrides: object) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RateLimit)
    setup_metrics(app, MetricsConfig.testing(flush_interval_ms=60_000, **overrides))  # type: ignore[arg-type]

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise Gone(error_code=7410, status_code=410, message="gone")
        if item_id == 13:
            raise HTTPException(status_code=404)
        if item_id == 503:
            return JSONResponse({"detail": "down"}, status_code=503)  # type: ignore[return-value]
        if item_id == 500:
            raise RuntimeError("unexpected")
        return {"item_id": item_id}

    @app.post("/items")
    def create() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def families(
    client: TestClient,
) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    """(requests by (route, method, class), errors by (code, name, status, route, method))."""
    text = client.get("/metrics").text
    requests: dict[tuple[str, ...], float] = {}
    errors: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "fastapi_requests_total":
                requests[(s.labels["route"], s.labels["method"], s.labels["status_class"])] = (
                    s.value
                )
            elif s.name == "fastapi_errors_by_route_total":
                key = ("error_code", "error_name", "status_code", "route", "method")
                errors[tuple(s.labels[k] for k in key)] = s.value
    return requests, errors


def test_every_kind_of_response_is_counted_once_in_both_families() -> None:
    app = make_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, status in [
            ("/items/1", 200),
            ("/items/2", 200),
            ("/items/0", 410),  # declared error
            ("/items/13", 404),  # HTTPException: the built-in code
            ("/items/x", 422),  # validation
            ("/items/503", 503),  # returned, not raised
            ("/items/500", 500),  # unexpected: answered by the server-error handler
            ("/nowhere", 404),  # unmatched
        ]:
            assert client.get(path).status_code == status, path
        # a middleware answers before routing: counted under the route the path would reach
        assert client.get("/items/1", headers={"x-flood": "1"}).status_code == 429
        assert client.get("/nothing/here", headers={"x-flood": "1"}).status_code == 429
        assert client.post("/items").status_code == 200
        assert client.delete("/items/1").status_code == 405
        requests, errors = families(client)
        seed = client.get("/api/metrics/summary").json()
    assert requests == {
        ("/items/{item_id}", "GET", "2xx"): 2,
        ("/items/{item_id}", "GET", "4xx"): 4,
        ("/items/{item_id}", "GET", "5xx"): 2,
        ("/items/{item_id}", "DELETE", "4xx"): 1,
        ("/items", "POST", "2xx"): 1,
        (UNMATCHED_ROUTE, "GET", "4xx"): 2,  # /nowhere, and a 429 on a path no route has
    }
    assert errors == {
        ("7410", "Gone", "410", "/items/{item_id}", "GET"): 1,
        ("404", "NotFound", "404", "/items/{item_id}", "GET"): 1,
        ("422", "ValidationError", "422", "/items/{item_id}", "GET"): 1,
        ("503", UNDECLARED, "503", "/items/{item_id}", "GET"): 1,
        ("500", "InternalServerError", "500", "/items/{item_id}", "GET"): 1,
        ("405", "MethodNotAllowed", "405", "/items/{item_id}", "DELETE"): 1,
        ("404", "NotFound", "404", UNMATCHED_ROUTE, "GET"): 1,
        ("429", UNDECLARED, "429", "/items/{item_id}", "GET"): 1,
        ("429", UNDECLARED, "429", UNMATCHED_ROUTE, "GET"): 1,
    }
    # The specification's series count what the handlers answered, as before.
    assert seed["total_errors"] == 6


def test_the_librarys_own_endpoints_are_not_counted() -> None:
    app = make_app(auth_token="t" * 32)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/api/metrics/summary").status_code == 401
        requests, errors = families_with(client, {"Authorization": "Bearer " + "t" * 32})
    assert requests == {} and errors == {}


def families_with(
    client: TestClient, headers: dict[str, str]
) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    client.headers.update(headers)
    return families(client)


def test_a_streaming_error_after_the_response_started_is_counted_with_the_sent_status() -> None:
    app = make_app()

    @app.get("/export")
    def export() -> StreamingResponse:
        def rows():  # type: ignore[no-untyped-def]
            yield b"a\n"
            raise Gone(error_code=7410, status_code=410, message="gone")

        return StreamingResponse(rows())

    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/export")
        requests, errors = families(client)
    assert requests == {("/export", "GET", "2xx"): 1}
    assert errors == {("7410", "Gone", "200", "/export", "GET"): 1}


def test_unknown_methods_are_counted_as_other() -> None:
    app = make_app()
    with TestClient(app) as client:
        client.request("BREW", "/items/1")
        requests, _ = families(client)
    assert requests == {("/items/{item_id}", "other", "4xx"): 1}


def test_a_mounted_app_with_metrics_is_counted_once_by_the_outer_app() -> None:
    app = make_app()
    sub = make_app()
    app.mount("/sub", sub)
    with TestClient(app) as client:
        assert client.get("/sub/items/0").status_code == 410
        assert client.get("/sub/items/1").status_code == 200
        requests, errors = families(client)
    assert requests == {
        ("/sub/items/{item_id}", "GET", "4xx"): 1,
        ("/sub/items/{item_id}", "GET", "2xx"): 1,
    }
    assert errors == {("7410", "Gone", "410", "/sub/items/{item_id}", "GET"): 1}


def test_count_requests_false_counts_no_route_series() -> None:
    app = make_app(count_requests=False)
    with TestClient(app) as client:
        client.get("/items/0")
        requests, errors = families(client)
        assert client.get("/api/metrics/summary").json()["total_errors"] == 1
    assert requests == {} and errors == {}


def test_exemplars_carry_the_ids_the_client_sent_and_got() -> None:
    app = make_app()
    trace = "0af7651916cd43dd8448eb211c80319c"
    with TestClient(app) as client:
        client.get("/items/0", headers={"X-Request-ID": "first"})
        sent = client.get(
            "/items/0",
            headers={"X-Request-ID": "req-42", "traceparent": f"00-{trace}-b7ad6b7169203331-01"},
        )
        got = client.get("/items/13").headers["x-request-id"]
        text = client.get("/metrics", headers=OPENMETRICS).text
        plain = client.get("/metrics").text
    assert sent.headers["x-request-id"] == "req-42"
    exemplars = {
        s.labels["error_code"]: s.exemplar
        for family in openmetrics_families(text)
        for s in family.samples
        if s.name == "fastapi_errors_by_route_total"
    }
    assert exemplars["7410"] is not None and exemplars["7410"].labels == {
        "trace_id": trace,
        "request_id": "req-42",
    }
    assert exemplars["404"] is not None and exemplars["404"].labels == {"request_id": got}
    assert " # {" not in plain  # the Prometheus text format carries no exemplars


@pytest.mark.parametrize("request_id", ["r" * 64, "x" * 60])
def test_an_exemplar_stays_within_128_characters(request_id: str) -> None:
    from fastapi_error_codes.metrics.prometheus import EXEMPLAR_MAX_CHARS, _exemplar

    found = {"r": request_id, "t": "a" * 32, "s": "b" * 32, "ts": 1.0}
    exemplar = _exemplar(found)
    assert exemplar is not None
    size = sum(len(k) + len(v) for k, v in exemplar.labels.items())
    assert size <= EXEMPLAR_MAX_CHARS
    assert exemplar.labels["trace_id"] == "a" * 32  # trace id first: tracing backends link it


class CopiesScope:
    """A pure ASGI middleware that hands the app a copy of the scope (the route stays there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(dict(scope), receive, send)


def test_the_route_is_found_when_the_scope_was_copied_or_routing_never_ran() -> None:
    from fastapi import APIRouter

    app = make_app()
    app.add_middleware(CopiesScope)
    users = APIRouter()

    @users.get("/users/{user_id}")
    def user(user_id: int) -> dict[str, int]:
        return {"user_id": user_id}

    @users.post("/users")
    def create_user() -> None:
        raise Gone(error_code=7410, status_code=410, message="gone")

    app.include_router(users, prefix="/v1")
    with TestClient(app) as client:
        assert client.get("/v1/users/1").status_code == 200
        assert client.post("/v1/users").status_code == 410
        assert client.get("/v1/users/2", headers={"x-flood": "1"}).status_code == 429
        assert client.delete("/v1/users/2").status_code == 405
        requests, errors = families(client)
    assert requests == {
        ("/v1/users/{user_id}", "GET", "2xx"): 1,
        ("/v1/users", "POST", "4xx"): 1,
        ("/v1/users/{user_id}", "GET", "4xx"): 1,
        ("/v1/users/{user_id}", "DELETE", "4xx"): 1,
    }
    assert errors == {
        ("7410", "Gone", "410", "/v1/users", "POST"): 1,
        ("429", UNDECLARED, "429", "/v1/users/{user_id}", "GET"): 1,
        ("405", "MethodNotAllowed", "405", "/v1/users/{user_id}", "DELETE"): 1,
    }


def test_an_error_response_a_middleware_replaced_is_not_counted_as_that_error() -> None:
    class SpaFallback:
        """Turns every 404 into the SPA's index page (a 200)."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def replace(message: dict[str, object]) -> None:
                if message["type"] == "http.response.start" and message["status"] == 404:
                    message = {**message, "status": 200}
                await send(message)

            await self.app(scope, receive, replace)  # type: ignore[arg-type]

    app = make_app()
    app.add_middleware(SpaFallback)
    with TestClient(app) as client:
        assert client.get("/some/page").status_code == 200
        requests, errors = families(client)
    assert requests == {(UNMATCHED_ROUTE, "GET", "2xx"): 1}
    assert errors == {}


def test_a_404_inside_a_mounted_app_is_not_named_after_the_outer_apps_routes() -> None:
    app = make_app()

    @app.get("/{page}")
    def page(page: str) -> str:
        return page

    sub = FastAPI()

    @sub.get("/items/{item_id}")
    def item(item_id: int) -> int:
        return item_id

    app.mount("/sub", sub)
    with TestClient(app) as client:
        assert client.get("/sub/nothing").status_code == 404
        requests, _ = families(client)
    assert requests == {(UNMATCHED_ROUTE, "GET", "4xx"): 1}


def test_routes_added_later_never_shadow_the_librarys_endpoints() -> None:
    app = make_app()
    tenant = FastAPI()

    @tenant.get("/{anything:path}")
    def anything(anything: str) -> str:
        return "tenant"

    app.mount("/{tenant}", tenant)  # a mount with a parameter answers every first segment
    with TestClient(app) as client:
        assert client.get("/api/metrics/summary").json()["total_errors"] == 0
        assert client.get("/metrics").text.startswith("# HELP")
        assert client.get("/acme/x").json() == "tenant"


def test_a_host_route_added_later_does_not_take_the_librarys_paths() -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Host, Route, Router

    def admin(request: Request) -> PlainTextResponse:
        return PlainTextResponse("admin host")

    app = make_app()
    app.router.routes.append(Host("admin.example.com", app=Router([Route("/{p:path}", admin)])))
    with TestClient(app) as client:
        on_admin = {"host": "admin.example.com"}
        assert client.get("/metrics", headers=on_admin).text.startswith("# HELP")
        assert client.get("/elsewhere", headers=on_admin).text == "admin host"


def test_two_apps_with_metrics_that_are_not_linked_count_a_request_once() -> None:
    outer = make_app()
    inner = make_app()

    async def opaque(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)  # a wrapper without .app: the apps are not linked

    outer.mount("/sub", opaque)
    with TestClient(outer) as client:
        assert client.get("/sub/items/1").status_code == 200
        assert client.get("/sub/items/0").status_code == 410
        requests, errors = families(client)
    assert sum(requests.values()) == 2
    assert sum(errors.values()) == 1
    assert inner.state.metrics_collector.read(window_s=0).requests == {}  # not twice
