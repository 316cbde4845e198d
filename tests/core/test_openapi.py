"""error_responses, the patched OpenAPI schema (validated), and the error catalogue."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pydantic import BaseModel

from fastapi_error_codes import (
    BaseAppException,
    ErrorHandlerConfig,
    ErrorRegistry,
    error_catalog,
    error_responses,
    register_exception,
    setup_exception_handler,
)


class Payload(BaseModel):
    """A body, so FastAPI would document its own 422."""

    name: str


@pytest.fixture
def declared(registry: ErrorRegistry) -> dict[str, type[BaseAppException]]:
    @register_exception(
        error_code=301, message="User not found", status_code=404, registry=registry
    )
    class UserNotFound(BaseAppException):
        pass

    @register_exception(
        error_code=302, message="Order not found", status_code=404, registry=registry
    )
    class OrderNotFound(BaseAppException):
        pass

    @register_exception(
        error_code=201, message="Forbidden | no", status_code=403, domain="AUTH", registry=registry
    )
    class NotAllowed(BaseAppException):
        pass

    return {"UserNotFound": UserNotFound, "OrderNotFound": OrderNotFound, "NotAllowed": NotAllowed}


def make_app(declared: dict[str, Any], config: ErrorHandlerConfig | None) -> FastAPI:
    app = FastAPI()

    @app.get(
        "/users/{user_id}",
        responses=error_responses(
            declared["UserNotFound"], declared["OrderNotFound"], declared["NotAllowed"], 500
        ),
    )
    def get_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @app.post("/items")
    def create(payload: Payload) -> Payload:
        return payload

    @app.get("/plain")
    def plain() -> str:
        return "ok"

    setup_exception_handler(app, config)
    return app


def test_error_responses_shape(declared: dict[str, Any]) -> None:
    responses = error_responses(declared["UserNotFound"], declared["OrderNotFound"], 422)
    assert sorted(responses) == [404, 422]
    not_found = responses[404]
    assert not_found["description"] == (
        "Not Found. Error codes: 301 UserNotFound, 302 OrderNotFound"
    )
    media = not_found["content"]["application/json"]
    assert media["schema"] == {"$ref": "#/components/schemas/ErrorCodeResponse"}
    assert sorted(media["examples"]) == ["OrderNotFound", "UserNotFound"]
    value = media["examples"]["UserNotFound"]["value"]
    assert set(value) == {
        "error_code",
        "message",
        "status_code",
        "detail",
        "timestamp",
        "error_name",
    }
    assert value["error_code"] == 301
    validation = responses[422]["content"]["application/json"]["examples"]["ValidationError"]
    assert validation["value"]["detail"]["errors"][0]["pointer"] == "/body/email"


def test_error_responses_rejects_bad_input(declared: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="@register_exception"):
        error_responses(ValueError)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="400-599"):
        error_responses(200)

    class Undeclared(declared["UserNotFound"]):  # type: ignore[misc, name-defined]
        pass

    with pytest.raises(TypeError, match="not declared itself"):
        error_responses(Undeclared)


@pytest.mark.parametrize("fmt", ["json", "problem+json"])
def test_schema_is_valid_and_matches_format(declared: dict[str, Any], fmt: str) -> None:
    config = ErrorHandlerConfig(response_format=fmt, problem_type_base="https://e.example")
    app = make_app(declared, config)
    schema = app.openapi()
    validate(schema)
    media_type = config.media_type
    component = "ErrorCodeProblem" if fmt == "problem+json" else "ErrorCodeResponse"
    responses = schema["paths"]["/users/{user_id}"]["get"]["responses"]
    for status in ("404", "403", "500", "422"):
        assert list(responses[status]["content"]) == [media_type], status
        assert responses[status]["content"][media_type]["schema"]["$ref"].endswith(component)
    example = responses["404"]["content"][media_type]["examples"]["UserNotFound"]["value"]
    if fmt == "problem+json":
        assert example["type"] == "https://e.example/301"
        assert example["title"] == "User not found"
        assert example["status"] == 404
    else:
        assert example["error_code"] == 301
    assert component in schema["components"]["schemas"]


@pytest.mark.parametrize("fmt", ["json", "problem+json"])
def test_fastapi_422_is_replaced(declared: dict[str, Any], fmt: str) -> None:
    app = make_app(declared, ErrorHandlerConfig(response_format=fmt))
    schema = app.openapi()
    validate(schema)
    text = json.dumps(schema)
    assert "HTTPValidationError" not in text
    assert '"#/components/schemas/ValidationError"' not in text
    response = schema["paths"]["/items"]["post"]["responses"]["422"]
    (media,) = response["content"].values()
    assert "ValidationError" in media["examples"]
    assert "/plain" in schema["paths"]
    assert "422" not in schema["paths"]["/plain"]["get"]["responses"]


def test_examples_match_real_bodies(declared: dict[str, Any]) -> None:
    """The documented example has the keys and types of what the handler sends."""
    for fmt in ("json", "problem+json"):
        app = make_app(declared, ErrorHandlerConfig(response_format=fmt))
        client = TestClient(app)
        schema = app.openapi()
        real = client.post("/items", json={}).json()
        (media,) = schema["paths"]["/items"]["post"]["responses"]["422"]["content"].values()
        example = media["examples"]["ValidationError"]["value"]
        assert set(example) == set(real)
        assert {k: type(v) for k, v in example.items()} == {k: type(v) for k, v in real.items()}


def test_setup_twice_regenerates_schema(declared: dict[str, Any]) -> None:
    app = make_app(declared, None)
    assert "application/json" in json.dumps(app.openapi()["paths"]["/items"])
    setup_exception_handler(app, ErrorHandlerConfig(response_format="problem+json"))
    schema = app.openapi()
    validate(schema)
    assert "application/problem+json" in json.dumps(schema["paths"]["/items"])
    assert app.openapi() is schema


def test_framework_override_documents_the_declared_422(registry: ErrorRegistry) -> None:
    @register_exception(error_code=1422, message="Fix input", status_code=422, registry=registry)
    class BadInput(BaseAppException):
        pass

    app = FastAPI()

    @app.post("/items")
    def create(payload: Payload) -> Payload:
        return payload

    setup_exception_handler(app, ErrorHandlerConfig(framework_errors={422: BadInput}))
    schema = app.openapi()
    validate(schema)
    media = schema["paths"]["/items"]["post"]["responses"]["422"]["content"]["application/json"]
    assert media["examples"]["BadInput"]["value"]["error_code"] == 1422


class TestCatalog:
    def test_entries(self, declared: dict[str, Any], registry: ErrorRegistry) -> None:
        catalog = error_catalog(registry, include_builtin=False)
        assert [(e.error_code, e.error_name, e.status_code, e.domain) for e in catalog] == [
            (201, "NotAllowed", 403, "AUTH"),
            (301, "UserNotFound", 404, "RESOURCE"),
            (302, "OrderNotFound", 404, "RESOURCE"),
        ]
        assert len(catalog) == 3

    def test_builtin_included(self, declared: dict[str, Any], registry: ErrorRegistry) -> None:
        catalog = error_catalog(registry)
        names = {e.error_name for e in catalog if e.builtin}
        assert {"NotFound", "MethodNotAllowed", "ValidationError", "InternalServerError"} <= names

    def test_json(self, declared: dict[str, Any], registry: ErrorRegistry) -> None:
        data = json.loads(error_catalog(registry, include_builtin=False).to_json())
        assert data[0] == {
            "error_code": 201,
            "error_name": "NotAllowed",
            "status_code": 403,
            "message": "Forbidden | no",
            "domain": "AUTH",
            "builtin": False,
        }

    def test_markdown(self, declared: dict[str, Any], registry: ErrorRegistry) -> None:
        text = error_catalog(registry, include_builtin=False).to_markdown()
        lines = text.splitlines()
        assert lines[0] == "| Code | Name | HTTP status | Message | Domain | Built-in |"
        assert lines[2] == "| 201 | NotAllowed | 403 | Forbidden \\| no | AUTH | no |"
        assert len(lines) == 5

    def test_default_registry(self) -> None:
        @register_exception(error_code=7001, message="Seven")
        class Seven(BaseAppException):
            pass

        assert 7001 in {e.error_code for e in error_catalog()}


def test_custom_openapi_set_before_setup_is_wrapped() -> None:
    from fastapi.openapi.utils import get_openapi

    app = FastAPI()

    @app.post("/items")
    def create(payload: Payload) -> Payload:
        return payload

    def custom() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(title="Custom", version="9", routes=app.routes)
        return app.openapi_schema

    app.openapi = custom  # type: ignore[method-assign]
    setup_exception_handler(app)
    schema = app.openapi()
    validate(schema)
    assert schema["info"]["title"] == "Custom"
    assert "HTTPValidationError" not in json.dumps(schema)
