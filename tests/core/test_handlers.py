"""Every error kind through a real FastAPI app, in both body formats."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes import ErrorHandlerConfig, setup_exception_handler
from fastapi_error_codes.handlers import CONFIG_STATE_ATTR
from fastapi_error_codes.observers import HandledError, add_error_observer
from fastapi_error_codes.testing import assert_error

from .conftest import FORMATS

JSON_KEYS = {"error_code", "message", "status_code", "detail", "timestamp", "error_name"}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

MakeClient = Callable[..., tuple[TestClient, list[HandledError], dict[str, Any]]]


def summary(response: Any) -> dict[str, Any]:
    """The format-independent facts of an error response."""
    body = response.json()
    content_type = response.headers["content-type"]
    if content_type == "application/problem+json":
        assert body["status"] == response.status_code
        assert TIMESTAMP_RE.match(body["timestamp"])
        return {
            "code": body["error_code"],
            "name": body["error_name"],
            "message": body["title"],
            "detail": body.get("context", body.get("errors")),
        }
    assert content_type == "application/json"
    assert set(body) == JSON_KEYS
    assert body["status_code"] == response.status_code
    assert TIMESTAMP_RE.match(body["timestamp"])
    return {
        "code": body["error_code"],
        "name": body["error_name"],
        "message": body["message"],
        "detail": body["detail"],
    }


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    """Each test runs in both response formats."""
    return str(request.param)


class TestEveryErrorKind:
    def test_declared_error(self, make_client: MakeClient, fmt: str) -> None:
        client, seen, errors = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/users/7")
        assert response.status_code == 404
        assert summary(response) == {
            "code": 3001,
            "name": "UserNotFound",
            "message": "User 7 not found",
            "detail": {"user_id": 7},
        }
        assert_error(response, errors["UserNotFound"], detail={"user_id": 7})
        assert [(e.error_code, e.error_name, e.status_code) for e in seen] == [
            (3001, "UserNotFound", 404)
        ]
        assert seen[0].message == "User 7 not found"
        assert isinstance(seen[0].exception, errors["UserNotFound"])

    def test_declared_error_keeps_headers(self, make_client: MakeClient, fmt: str) -> None:
        client, _, errors = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/token")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(response, errors["TokenExpired"])

    def test_explicit_message_and_string_detail(self, make_client: MakeClient, fmt: str) -> None:
        client, _, errors = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/custom-message")
        body = assert_error(response, errors["UserNotFound"], message="Custom text")
        if fmt == "json":
            assert body["detail"] == "plain detail"
        else:
            assert body["detail"] == "plain detail"
            assert "context" not in body

    def test_declared_5xx_is_not_hidden(self, make_client: MakeClient, fmt: str) -> None:
        client, _, errors = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/payments")
        assert response.status_code == 503
        assert summary(response)["message"] == "Payments are down"
        assert_error(response, errors["PaymentsDown"])

    def test_unknown_route_is_404(self, make_client: MakeClient, fmt: str) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/no/such/route")
        assert response.status_code == 404
        assert summary(response) == {
            "code": 404,
            "name": "NotFound",
            "message": "Resource not found",
            "detail": None,
        }
        assert_error(response, 404)
        assert [e.error_code for e in seen] == [404]

    def test_wrong_method_is_405_with_allow(self, make_client: MakeClient, fmt: str) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.delete("/token")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET"
        assert summary(response)["name"] == "MethodNotAllowed"
        assert [e.status_code for e in seen] == [405]

    @pytest.mark.parametrize(
        ("status", "name"),
        [(400, "BadRequest"), (403, "Forbidden"), (429, "TooManyRequests"), (502, "BadGateway")],
    )
    def test_http_exception(
        self, make_client: MakeClient, fmt: str, status: int, name: str
    ) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get(f"/http/{status}")
        assert response.status_code == status
        assert response.headers["x-extra"] == "1"
        assert summary(response)["code"] == status
        assert summary(response)["name"] == name
        assert len(seen) == 1

    def test_http_exception_unknown_status(self, make_client: MakeClient, fmt: str) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/http/499")
        assert response.status_code == 499
        assert summary(response)["name"] == "HTTPError"

    def test_http_exception_text_becomes_message(self, make_client: MakeClient, fmt: str) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/http-text")
        assert summary(response)["message"] == "Already exists"
        assert summary(response)["detail"] is None
        assert seen[0].message == "Already exists"

    def test_http_exception_data_becomes_detail(self, make_client: MakeClient, fmt: str) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/http-data")
        assert summary(response)["detail"] == {"field": "x"}
        assert summary(response)["message"] == "Bad request"

    def test_http_exception_below_400_is_not_an_error(
        self, make_client: MakeClient, fmt: str
    ) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/http/304")
        assert response.status_code == 304
        assert response.content == b""
        assert seen == []

    def test_unexpected_exception_is_500(self, make_client: MakeClient, fmt: str) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.get("/boom")
        assert response.status_code == 500
        assert summary(response) == {
            "code": 500,
            "name": "InternalServerError",
            "message": "Internal server error",
            "detail": None,
        }
        assert_error(response, 500)
        assert len(seen) == 1
        assert isinstance(seen[0].exception, RuntimeError)


class TestValidation:
    def test_body_fields(self, make_client: MakeClient, fmt: str) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        response = client.post("/items", json={"age": -1})
        assert response.status_code == 422
        body = response.json()
        errors = body["detail"]["errors"] if fmt == "json" else body["errors"]
        assert errors == [
            {
                "location": ["body", "name"],
                "pointer": "/body/name",
                "message": "Field required",
                "type": "missing",
            },
            {
                "location": ["body", "age"],
                "pointer": "/body/age",
                "message": "Input should be greater than or equal to 0",
                "type": "greater_than_equal",
            },
        ]
        assert summary(response)["code"] == 422
        assert summary(response)["name"] == "ValidationError"
        assert_error(response, 422)
        assert seen[0].detail == {"errors": errors}

    def test_path_query_and_header(self, make_client: MakeClient, fmt: str) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(response_format=fmt))
        body = client.get("/users/abc").json()
        errors = body["detail"]["errors"] if fmt == "json" else body["errors"]
        assert [e["pointer"] for e in errors] == ["/path/user_id"]
        body = client.get("/header").json()
        errors = body["detail"]["errors"] if fmt == "json" else body["errors"]
        assert [e["pointer"] for e in errors] == ["/header/x-token"]

    def test_pointer_escapes_per_rfc6901(self, make_client: MakeClient) -> None:
        from fastapi_error_codes.handlers import ErrorResponder

        responder = ErrorResponder(ErrorHandlerConfig())
        entry = responder._field_error({"loc": ("body", "a/b", "c~d", 0), "msg": "x", "type": "t"})
        assert entry["pointer"] == "/body/a~1b/c~0d/0"
        assert entry["location"] == ["body", "a/b", "c~d", 0]

    def test_input_values_are_not_echoed(self, make_client: MakeClient) -> None:
        client, _, _ = make_client()
        response = client.post("/items", json={"name": "n", "age": "secret-value"})
        assert "secret-value" not in response.text


class TestNoLeaks:
    @pytest.mark.parametrize("path", ["/boom", "/key-error"])
    def test_production_hides_everything(
        self, make_client: MakeClient, fmt: str, path: str
    ) -> None:
        client, _, _ = make_client(ErrorHandlerConfig.production(response_format=fmt))
        text = client.get(path).text
        for leak in (
            "hunter2",
            "secret_module",
            "RuntimeError",
            "SecretInternalThing",
            "Traceback",
        ):
            assert leak not in text
        for leak in ("KeyError", "test_handlers", "conftest"):
            assert leak not in text

    def test_debug_mode_shows_the_exception(self, make_client: MakeClient) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(debug_mode=True))
        detail = client.get("/boom").json()["detail"]
        assert detail == {
            "exception": "builtins.RuntimeError",
            "exception_message": "password=hunter2 in internal.secret_module",
        }

    def test_include_traceback(self, make_client: MakeClient, fmt: str) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(include_traceback=True, response_format=fmt))
        body = client.get("/boom").json()
        detail = body["detail"] if fmt == "json" else body["context"]
        assert set(detail) == {"traceback"}
        assert detail["traceback"][0].startswith("Traceback")
        assert any("RuntimeError" in line for line in detail["traceback"])

    def test_development_preset(self, make_client: MakeClient) -> None:
        client, _, _ = make_client(ErrorHandlerConfig.development())
        detail = client.get("/boom").json()["detail"]
        assert set(detail) == {"exception", "exception_message", "traceback"}


class TestLogging:
    def test_4xx_info_without_traceback(
        self, make_client: MakeClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        client, _, _ = make_client()
        with caplog.at_level(logging.DEBUG, logger="fastapi_error_codes"):
            client.get("/users/1")
        records = [r for r in caplog.records if r.name == "fastapi_error_codes.errors"]
        assert [r.levelno for r in records] == [logging.INFO]
        assert records[0].exc_info is None
        assert "GET /users/1 -> 404 UserNotFound (error_code=3001)" in records[0].getMessage()
        assert records[0].error_code == 3001  # type: ignore[attr-defined]

    def test_unexpected_5xx_error_line_leaves_the_traceback_to_the_server(
        self, make_client: MakeClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Starlette re-raises an unexpected exception to the server, which logs its traceback:
        # the handler's line carries none (one traceback per exception).
        client, _, _ = make_client()
        with caplog.at_level(logging.DEBUG, logger="fastapi_error_codes"):
            client.get("/boom")
        records = [r for r in caplog.records if r.name == "fastapi_error_codes.errors"]
        assert [r.levelno for r in records] == [logging.ERROR]
        assert records[0].exc_info is None
        assert "-> 500 InternalServerError (error_code=500)" in records[0].getMessage()


class TestLocalisation:
    def test_q_weights_pick_the_best(self, make_client: MakeClient, locale_dir: Any) -> None:
        client, seen, _ = make_client(ErrorHandlerConfig(locale_dir=locale_dir))
        response = client.get("/users/5", headers={"Accept-Language": "fr;q=1, ko;q=0.9, en;q=0.8"})
        assert response.json()["message"] == "사용자 5을(를) 찾을 수 없습니다"
        assert response.headers["content-language"] == "ko"
        assert response.headers["vary"] == "Accept-Language"
        assert seen[0].message == "사용자 5을(를) 찾을 수 없습니다"
        assert response.json()["error_code"] == 3001
        assert response.json()["error_name"] == "UserNotFound"

    def test_lower_q_first_in_header(self, make_client: MakeClient, locale_dir: Any) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(locale_dir=locale_dir))
        response = client.get("/users/5", headers={"Accept-Language": "ko;q=0.2, de;q=0.7"})
        assert response.json()["message"] == "Benutzer 5 nicht gefunden"
        assert response.headers["content-language"] == "de"

    def test_region_falls_back_to_language(self, make_client: MakeClient, locale_dir: Any) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(locale_dir=locale_dir))
        response = client.get("/users/5", headers={"Accept-Language": "de-CH"})
        # de-CH has no message for 3001: its base language de has.
        assert response.json()["message"] == "Benutzer 5 nicht gefunden"
        assert response.headers["content-language"] == "de"
        response = client.get("/nope", headers={"Accept-Language": "de-CH"})
        assert response.json()["message"] == "Nüt da"
        assert response.headers["content-language"] == "de-CH"

    def test_missing_key_falls_back_to_default(
        self, make_client: MakeClient, locale_dir: Any
    ) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(locale_dir=locale_dir))
        response = client.get("/boom", headers={"Accept-Language": "de"})
        assert response.json()["message"] == "Something went wrong"
        assert response.headers["content-language"] == "en"

    def test_no_header_uses_default(self, make_client: MakeClient, locale_dir: Any) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(locale_dir=locale_dir, default_locale="ko"))
        response = client.get("/nope")
        assert response.json()["message"] == "찾을 수 없습니다"
        assert response.headers["content-language"] == "ko"

    def test_validation_messages(self, make_client: MakeClient, locale_dir: Any, fmt: str) -> None:
        config = ErrorHandlerConfig(locale_dir=locale_dir, response_format=fmt)
        client, _, _ = make_client(config)
        response = client.post("/items", json={"age": 1}, headers={"Accept-Language": "ko"})
        body = response.json()
        errors = body["detail"]["errors"] if fmt == "json" else body["errors"]
        assert errors[0]["message"] == "name 항목이 필요합니다"
        assert summary(response)["message"] == "요청이 올바르지 않습니다"

    def test_explicit_message_is_not_translated(
        self, make_client: MakeClient, locale_dir: Any
    ) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(locale_dir=locale_dir))
        response = client.get("/custom-message", headers={"Accept-Language": "ko"})
        assert response.json()["message"] == "Custom text"
        assert response.headers["content-language"] == "en"

    def test_without_locale_dir(self, make_client: MakeClient) -> None:
        client, _, _ = make_client()
        response = client.get("/users/5", headers={"Accept-Language": "ko"})
        assert response.json()["message"] == "User 5 not found"
        assert response.headers["content-language"] == "en"
        assert response.headers["vary"] == "Accept-Language"

    def test_problem_title_is_localised(self, make_client: MakeClient, locale_dir: Any) -> None:
        config = ErrorHandlerConfig(locale_dir=locale_dir, response_format="problem+json")
        client, _, _ = make_client(config)
        body = client.get("/nope", headers={"Accept-Language": "ko"}).json()
        assert body["title"] == "찾을 수 없습니다"
        assert body["error_name"] == "NotFound"


class TestProblemJson:
    def test_members_and_media_type(self, make_client: MakeClient) -> None:
        config = ErrorHandlerConfig(
            response_format="problem+json", problem_type_base="https://errors.example.com/"
        )
        client, _, _ = make_client(config)
        response = client.get("/users/9")
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body == {
            "type": "https://errors.example.com/3001",
            "title": "User 9 not found",
            "status": 404,
            "detail": "User 9 not found",
            "instance": "/users/9",
            "error_code": 3001,
            "error_name": "UserNotFound",
            "timestamp": body["timestamp"],
            "context": {"user_id": 9},
        }

    def test_default_type_is_about_blank(self, make_client: MakeClient) -> None:
        client, _, _ = make_client(ErrorHandlerConfig(response_format="problem+json"))
        assert client.get("/nope").json()["type"] == "about:blank"


class TestSetup:
    def test_marker_and_config_on_state(self) -> None:
        app = FastAPI()
        config = ErrorHandlerConfig(debug_mode=True)
        setup_exception_handler(app, config)
        assert getattr(app.state, CONFIG_STATE_ATTR) is config

    def test_default_config(self) -> None:
        app = FastAPI()
        setup_exception_handler(app)
        assert getattr(app.state, CONFIG_STATE_ATTR) == ErrorHandlerConfig()

    def test_twice_installs_once_and_notifies_once(self, make_client: MakeClient) -> None:
        client, seen, _ = make_client()
        app = client.app
        assert isinstance(app, FastAPI)
        handlers_before = dict(app.exception_handlers)
        setup_exception_handler(app, ErrorHandlerConfig(response_format="problem+json"))
        assert set(app.exception_handlers) == set(handlers_before)
        response = client.get("/users/3")
        assert response.headers["content-type"] == "application/problem+json"
        assert len(seen) == 1

    def test_observer_failure_never_changes_the_response(self, make_client: MakeClient) -> None:
        client, _, errors = make_client()

        def broken(_request: Any, _error: HandledError) -> None:
            raise RuntimeError("observer bug")

        add_error_observer(client.app, broken)
        response = client.get("/users/3")
        assert_error(response, errors["UserNotFound"])

    def test_rejects_other_config_types(self) -> None:
        with pytest.raises(TypeError, match="ErrorHandlerConfig"):
            setup_exception_handler(FastAPI(), {"debug_mode": True})  # type: ignore[arg-type]

    def test_metrics_not_imported_without_metrics_config(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import builtins

        real_import = builtins.__import__
        imported: list[str] = []

        def spy(name: str, *args: Any, **kwargs: Any) -> Any:
            imported.append(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", spy)
        setup_exception_handler(FastAPI())
        assert "fastapi_error_codes.metrics.setup" not in imported

    def test_metrics_config_goes_to_the_setup_registered_for_its_type(self) -> None:
        from fastapi_error_codes.observers import register_monitoring

        class OwnMonitoring:
            pass

        calls: list[tuple[Any, Any]] = []
        register_monitoring(OwnMonitoring, lambda app, cfg: calls.append((app, cfg)))
        app = FastAPI()
        marker = OwnMonitoring()
        setup_exception_handler(app, metrics_config=marker)
        assert calls == [(app, marker)]
        assert hasattr(app.state, CONFIG_STATE_ATTR)

    def test_metrics_config_of_an_unknown_type_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="metrics_config must be a monitoring configuration"):
            setup_exception_handler(FastAPI(), metrics_config=object())

    def test_metrics_config_installs_metrics(self) -> None:
        metrics = pytest.importorskip("fastapi_error_codes.metrics")
        app = FastAPI()
        setup_exception_handler(app, metrics_config=metrics.MetricsConfig.testing())
        assert isinstance(app.state.metrics_collector, metrics.ErrorMetricsCollector)


class TestOverrides:
    def test_framework_error_replaced_by_declared_class(self, registry: Any) -> None:
        from fastapi_error_codes import BaseAppException, register_exception

        @register_exception(
            error_code=1404, message="No such page", status_code=404, registry=registry
        )
        class PageNotFound(BaseAppException):
            pass

        @register_exception(
            error_code=1422, message="Check your input", status_code=422, registry=registry
        )
        class BadInput(BaseAppException):
            pass

        app = FastAPI()

        @app.get("/n/{n}")
        def read(n: int) -> int:
            return n

        setup_exception_handler(
            app, ErrorHandlerConfig(framework_errors={404: PageNotFound, 422: BadInput})
        )
        client = TestClient(app)
        body = assert_error(client.get("/missing"), PageNotFound, message="No such page")
        assert body["detail"] is None
        body = assert_error(client.get("/n/x"), BadInput)
        assert body["detail"]["errors"][0]["pointer"] == "/path/n"


def test_websocket_http_exception_closes(make_client: MakeClient) -> None:
    from fastapi import HTTPException, WebSocket
    from starlette.websockets import WebSocketDisconnect

    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise HTTPException(status_code=403)

    setup_exception_handler(app)
    client = TestClient(app)
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
        pass
    assert info.value.code == 1008


def test_declared_error_raised_in_a_middleware_keeps_its_status(registry: Any) -> None:
    from starlette.middleware.base import BaseHTTPMiddleware

    from fastapi_error_codes import BaseAppException, register_exception

    @register_exception(error_code=250, message="No key", status_code=401, registry=registry)
    class NoKey(BaseAppException):
        pass

    async def require_key(request: Any, call_next: Any) -> Any:
        raise NoKey()

    app = FastAPI()
    app.add_middleware(BaseHTTPMiddleware, dispatch=require_key)
    setup_exception_handler(app)
    seen: list[HandledError] = []
    add_error_observer(app, lambda _r, e: seen.append(e))
    response = TestClient(app, raise_server_exceptions=False).get("/anything")
    assert_error(response, NoKey)
    assert [e.error_code for e in seen] == [250]


def test_own_init_calling_super(registry: Any) -> None:
    from fastapi_error_codes import BaseAppException, register_exception

    @register_exception(
        error_code=310, message="Item {item} missing", status_code=404, registry=registry
    )
    class ItemMissing(BaseAppException):
        def __init__(self, item: str) -> None:
            super().__init__(detail={"item": item})

    app = FastAPI()

    @app.get("/")
    def read() -> None:
        raise ItemMissing("pen")

    setup_exception_handler(app)
    body = assert_error(TestClient(app).get("/"), ItemMissing, detail={"item": "pen"})
    assert body["message"] == "Item pen missing"


def test_a_failure_while_answering_falls_back_to_500(
    registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi_error_codes import BaseAppException

    class Hostile(BaseAppException):
        @property
        def message_key(self) -> str:
            raise RuntimeError("bug while resolving")

    app = FastAPI()

    @app.get("/")
    def read() -> None:
        raise Hostile(7, "m", 409)

    setup_exception_handler(app)
    seen: list[HandledError] = []
    add_error_observer(app, lambda _r, e: seen.append(e))
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert_error(response, 500)
    assert "bug while resolving" not in response.text
    assert [e.status_code for e in seen] == [500]
    assert "building the error response failed" in caplog.text


def test_lone_surrogates_in_echoed_input_keep_the_status() -> None:
    """A lone surrogate cannot be UTF-8: it is replaced, never turned into a 500."""
    from fastapi import Body, HTTPException

    app = FastAPI()
    setup_exception_handler(app)

    @app.post("/echo-detail")
    def echo_detail(name: str = Body(..., embed=True)) -> None:
        raise HTTPException(status_code=404, detail={"user": name, name: 1})

    @app.post("/echo-message")
    def echo_message(name: str = Body(..., embed=True)) -> None:
        raise HTTPException(status_code=400, detail=name)

    client = TestClient(app)
    payload = b'{"name": "\\ud800x"}'
    headers = {"content-type": "application/json"}
    detail = client.post("/echo-detail", content=payload, headers=headers)
    assert detail.status_code == 404
    assert detail.json()["detail"] == {"user": "?x", "?x": 1}
    message = client.post("/echo-message", content=payload, headers=headers)
    assert message.status_code == 400
    assert message.json()["message"] == "?x"
