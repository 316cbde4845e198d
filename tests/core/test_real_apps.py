"""The handlers in apps as people build them: mounted apps, streaming bodies, middleware, logs."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from fastapi_error_codes import BaseAppException, ErrorHandlerConfig, setup_exception_handler
from fastapi_error_codes._routes import route_template
from fastapi_error_codes.observers import HandledError, add_error_observer


class Gone(BaseAppException):
    """A declared error, raised by hand (no registry needed)."""


def gone() -> Gone:
    return Gone(error_code=7410, status_code=410, message="The item is gone")


Seen = list[tuple[HandledError, str | None]]


def observe(app: FastAPI) -> Seen:
    """Record what the observers of *app* see: the error and its route template."""
    seen: Seen = []
    add_error_observer(
        app, lambda request, error: seen.append((error, route_template(request.scope)))
    )
    return seen


def sub_app() -> FastAPI:
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    def item(item_id: int) -> None:
        raise gone()

    @sub.get("/crash")
    def crash() -> None:
        raise RuntimeError("sub crashed")

    return sub


# --- mounted apps ------------------------------------------------------------------------------


def test_an_error_of_a_mounted_app_gets_our_body_and_is_observed_once() -> None:
    app = FastAPI()
    setup_exception_handler(app)
    seen = observe(app)
    app.mount("/admin", sub_app())  # after the setup, as apps often do
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/admin/items/3")
        crash = client.get("/admin/crash")
    assert response.status_code == 410
    assert response.json()["error_code"] == 7410
    assert crash.status_code == 500 and crash.json()["error_code"] == 500
    assert [(e.error_code, route) for e, route in seen] == [
        (7410, "/admin/items/{item_id}"),
        (500, "/admin/crash"),
    ]


def test_a_mounted_app_with_handlers_of_its_own_is_observed_by_the_outer_app() -> None:
    sub = sub_app()
    setup_exception_handler(sub, ErrorHandlerConfig(response_format="problem+json"))
    app = FastAPI()
    app.mount("/admin", sub)
    setup_exception_handler(app)
    seen = observe(app)
    with TestClient(app) as client:
        response = client.get("/admin/items/1")
    assert response.headers["content-type"] == "application/problem+json"  # its own config
    assert [(e.error_code, route) for e, route in seen] == [(7410, "/admin/items/{item_id}")]


def test_nested_and_parameterised_mounts_give_the_full_template() -> None:
    inner = sub_app()
    middle = FastAPI()
    middle.mount("/v2", inner)
    middle.mount("/beta", inner)  # one app at two mount points
    app = FastAPI()
    app.mount("/org/{org}", middle)
    setup_exception_handler(app)
    seen = observe(app)
    with TestClient(app) as client:
        assert client.get("/org/acme/v2/items/1").status_code == 410
        assert client.get("/org/acme/beta/items/2").status_code == 410
    assert [route for _, route in seen] == [
        "/org/{org}/v2/items/{item_id}",
        "/org/{org}/beta/items/{item_id}",
    ]


def test_an_observer_on_the_mounted_app_and_the_outer_one_each_run_once() -> None:
    sub = sub_app()
    app = FastAPI()
    setup_exception_handler(app)
    app.mount("/admin", sub)
    outer, inner = observe(app), observe(sub)
    with TestClient(app) as client:
        client.get("/admin/items/1")
    assert len(outer) == 1 and len(inner) == 1


# --- unexpected exceptions ---------------------------------------------------------------------


def test_an_unexpected_exception_is_answered_counted_once_and_left_to_the_server() -> None:
    app = FastAPI()
    setup_exception_handler(app)
    seen = observe(app)

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("database exploded")

    # Starlette re-raises it to the server after the answer, as without the library.
    with TestClient(app) as client, pytest.raises(RuntimeError, match="database exploded"):
        client.get("/crash")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/crash")
    assert response.status_code == 500 and response.json()["error_code"] == 500
    assert len(seen) == 2


def test_a_mounted_apps_unexpected_exception_is_counted_once_at_any_depth() -> None:
    inner = sub_app()
    middle = FastAPI()
    middle.mount("/v2", inner)
    setup_exception_handler(middle)  # handlers of its own, in the middle
    app = FastAPI()
    app.mount("/admin", middle)
    setup_exception_handler(app)
    seen = observe(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/admin/v2/crash")
    assert response.status_code == 500 and response.json()["error_code"] == 500
    # Each app's ServerErrorMiddleware sees the re-raised exception: one answer, one count.
    assert [(e.error_code, route) for e, route in seen] == [(500, "/admin/v2/crash")]


SERVER_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import uvicorn
    from fastapi import FastAPI
    from fastapi_error_codes import BaseAppException, setup_exception_handler

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    app = FastAPI()
    setup_exception_handler(app)

    @app.get("/crash")
    def crash():
        raise RuntimeError("database exploded")

    @app.get("/missing")
    def missing():
        raise BaseAppException(error_code=7404, status_code=404, message="missing")

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
    """
)


def test_a_real_server_logs_one_traceback_per_unexpected_exception() -> None:
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        statuses = []
        for path in ("/crash", "/missing"):
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert statuses == [500, 404]
    assert stderr.count("Traceback (most recent call last)") == 1, stderr
    assert stderr.count("RuntimeError: database exploded") == 1, stderr
    ours = [line for line in stderr.splitlines() if "fastapi_error_codes.errors" in line]
    assert len(ours) == 2, stderr  # one line per error: the 500 (no traceback) and the 404
    assert any(line.startswith("INFO") and "-> 404" in line for line in ours), stderr


def test_an_exception_of_a_middleware_is_answered_and_counted_once() -> None:
    app = FastAPI()
    setup_exception_handler(app)
    seen = observe(app)

    @app.middleware("http")
    async def broken(request: Request, call_next: Any) -> Any:
        raise RuntimeError("middleware exploded")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/anything")
    assert response.status_code == 500 and response.json()["error_code"] == 500
    assert len(seen) == 1


# --- streaming -----------------------------------------------------------------------------------


def streaming_app(error: BaseException) -> FastAPI:
    app = FastAPI()
    setup_exception_handler(app)

    @app.get("/export")
    def export() -> StreamingResponse:
        def rows() -> Iterator[bytes]:
            yield b"id,name\n"
            raise error

        return StreamingResponse(rows(), media_type="text/csv")

    @app.get("/async-export")
    async def async_export() -> StreamingResponse:
        async def rows() -> AsyncIterator[bytes]:
            yield b"id,name\n"
            raise error

        return StreamingResponse(rows(), media_type="text/csv")

    return app


@pytest.mark.parametrize("path", ["/export", "/async-export"])
def test_a_declared_error_after_the_response_started_keeps_its_code_and_the_sent_status(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = streaming_app(gone())
    seen = observe(app)
    with caplog.at_level(logging.INFO), TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(path)
    assert response.status_code == 200  # what the client got: the headers were out
    assert [(e.error_code, e.error_name, e.status_code, e.response_started) for e, _ in seen] == [
        (7410, "Gone", 200, True)
    ]
    lines = [r for r in caplog.records if r.name == "fastapi_error_codes.errors"]
    assert len(lines) == 1
    assert "-> 200 Gone (error_code=7410) after the response started" in lines[0].getMessage()
    assert lines[0].exc_info is None  # the server logs the traceback of what it is re-raised


def test_an_unexpected_error_after_the_response_started_is_counted_once_as_500_code() -> None:
    app = streaming_app(RuntimeError("disk full"))
    seen = observe(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/export").status_code == 200
    assert [(e.error_code, e.status_code, e.response_started) for e, _ in seen] == [
        (500, 200, True)
    ]


# --- logging -----------------------------------------------------------------------------------


def test_levels_come_from_the_config(caplog: pytest.LogCaptureFixture) -> None:
    app = sub_app()
    setup_exception_handler(app, ErrorHandlerConfig(log_level_4xx="debug", log_level_5xx="WARNING"))
    with caplog.at_level(logging.DEBUG), TestClient(app, raise_server_exceptions=False) as client:
        client.get("/items/1")
        client.get("/crash")
    levels = [r.levelno for r in caplog.records if r.name == "fastapi_error_codes.errors"]
    assert levels == [logging.DEBUG, logging.WARNING]


def test_a_bad_level_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="log_level_4xx must be one of DEBUG, INFO, WARNING"):
        ErrorHandlerConfig(log_level_4xx="LOUD")  # type: ignore[arg-type]


def test_an_app_without_logging_configured_prints_nothing() -> None:
    # The last-resort handler would print bare lines to stderr: the library adds a NullHandler.
    script = textwrap.dedent(
        """
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from fastapi_error_codes import BaseAppException, setup_exception_handler

        app = FastAPI()
        setup_exception_handler(app)

        @app.get("/x")
        def x():
            raise BaseAppException(error_code=7001, status_code=404, message="missing")

        with TestClient(app) as client:
            for _ in range(3):
                assert client.get("/x").status_code == 404
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""


# --- mounted apps in the ways real apps mount them ------------------------------------------


class CopiesScope:
    """A wrapper passing a copy of the scope on, as some ASGI middlewares do."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(dict(scope), receive, send)


def test_a_mounted_app_keeps_its_own_error_pages() -> None:
    from fastapi import HTTPException
    from fastapi.responses import PlainTextResponse

    legacy = sub_app()

    @legacy.exception_handler(HTTPException)
    async def page(request: Request, exc: HTTPException) -> PlainTextResponse:
        return PlainTextResponse(f"legacy page {exc.status_code}", status_code=exc.status_code)

    @legacy.get("/teapot")
    def teapot() -> None:
        raise HTTPException(status_code=418)

    app = FastAPI()
    setup_exception_handler(app)
    seen = observe(app)
    app.mount("/legacy", legacy)
    with TestClient(app) as client:
        assert client.get("/legacy/teapot").text == "legacy page 418"  # its own handler
        declared = client.get("/legacy/items/1")  # no handler of its own for these
    assert declared.json()["error_code"] == 7410
    assert [e.error_code for e, _ in seen] == [7410]  # its own pages are its business


def test_an_app_mounted_in_an_included_router_is_answered_and_counted() -> None:
    from fastapi import APIRouter

    router = APIRouter()
    router.mount("/admin", sub_app())
    app = FastAPI()
    setup_exception_handler(app)
    seen = observe(app)
    app.include_router(router, prefix="/api")
    with TestClient(app) as client:
        response = client.get("/api/admin/items/1")
    assert response.status_code == 410 and response.json()["error_code"] == 7410
    assert [e.error_code for e, _ in seen] == [7410]


def test_a_wrapper_copying_the_scope_does_not_double_count() -> None:
    app = FastAPI()
    setup_exception_handler(app)
    seen = observe(app)
    app.mount("/admin", CopiesScope(sub_app()))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/admin/crash").status_code == 500
        assert client.get("/admin/items/1").status_code == 410
    assert [e.error_code for e, _ in seen] == [500, 7410]


def test_streaming_and_middleware_errors_of_a_mounted_app_count_once() -> None:
    sub = streaming_app(gone())

    @sub.middleware("http")
    async def broken(request: Request, call_next: Any) -> Any:
        if request.url.path.endswith("/broken"):
            raise RuntimeError("middleware exploded")
        return await call_next(request)

    app = FastAPI()
    app.mount("/v1", sub)
    setup_exception_handler(app)
    seen = observe(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/v1/export").status_code == 200
        assert client.get("/v1/broken").status_code == 500
    assert [(e.error_code, e.status_code, e.response_started) for e, _ in seen] == [
        (7410, 200, True),
        (500, 500, False),
    ]


def test_a_new_config_of_the_outer_app_reaches_the_apps_it_answers() -> None:
    app = FastAPI()
    setup_exception_handler(app)
    app.mount("/admin", sub_app())
    with TestClient(app) as client:
        first = client.get("/admin/items/1")
    setup_exception_handler(app, ErrorHandlerConfig(response_format="problem+json"))
    with TestClient(app) as client:
        second = client.get("/admin/items/1")
    assert first.headers["content-type"] == "application/json"
    assert second.headers["content-type"] == "application/problem+json"


def test_of_two_mount_points_the_longer_one_that_matches_names_the_route() -> None:
    inner = sub_app()
    app = FastAPI()
    app.mount("/beta/v2", inner)
    app.mount("/v2", inner)
    setup_exception_handler(app)
    seen = observe(app)
    with TestClient(app) as client:
        client.get("/beta/v2/items/1")
        client.get("/v2/items/1")
    assert [route for _, route in seen] == ["/beta/v2/items/{item_id}", "/v2/items/{item_id}"]
