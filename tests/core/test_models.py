"""The pydantic models: the original's API, and that they are what is sent and documented."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from fastapi_error_codes import (
    BaseAppException,
    ErrorHandlerConfig,
    ErrorRegistry,
    register_exception,
    setup_exception_handler,
)
from fastapi_error_codes._bodies import JSON_KEYS, PROBLEM_KEYS, build_body
from fastapi_error_codes.models import (
    ErrorCodeFieldError,
    ErrorCodeProblem,
    ErrorDetail,
    ErrorDetailItem,
    ErrorResponse,
    ValidationErrorResponse,
)
from fastapi_error_codes.observers import HandledError, add_error_observer

from .conftest import FORMATS

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REF_TEMPLATE = "#/components/schemas/{model}"
COMPONENTS: dict[str, type[BaseModel]] = {
    "ErrorCodeResponse": ErrorResponse,
    "ErrorCodeProblem": ErrorCodeProblem,
    "ErrorCodeFieldError": ErrorCodeFieldError,
}


def component_of(model: type[BaseModel]) -> dict[str, Any]:
    """What the model generates as an OpenAPI response component."""
    schema = model.model_json_schema(mode="serialization", ref_template=REF_TEMPLATE)
    schema.pop("$defs", None)
    return schema


# -- the original's models -----------------------------------------------------------------


class TestErrorResponse:
    def test_fields_and_defaults(self) -> None:
        response = ErrorResponse(
            error_code=201,
            message="Authentication required",
            status_code=401,
            detail={"token": "expired"},
            error_name="AuthException",
        )
        assert response.error_code == 201
        assert response.message == "Authentication required"
        assert response.status_code == 401
        assert response.detail == {"token": "expired"}
        assert response.error_name == "AuthException"
        assert TIMESTAMP_RE.match(response.timestamp)
        bare = ErrorResponse(error_code=1, message="m")
        assert (bare.status_code, bare.detail, bare.error_name) == (None, None, None)
        assert TIMESTAMP_RE.match(bare.timestamp)

    def test_field_order_is_the_body_order(self) -> None:
        assert tuple(ErrorResponse.model_fields) == (
            "error_code",
            "message",
            "status_code",
            "detail",
            "timestamp",
            "error_name",
        )
        assert tuple(ErrorResponse.model_fields) == JSON_KEYS
        dumped = ErrorResponse(error_code=1, message="m").model_dump(mode="json")
        assert tuple(dumped) == JSON_KEYS

    @pytest.mark.parametrize("code", [-1, 10000])
    def test_error_code_range(self, code: int) -> None:
        with pytest.raises(ValidationError):
            ErrorResponse(error_code=code, message="m")
        for edge in (0, 9999):
            assert ErrorResponse(error_code=edge, message="m").error_code == edge

    def test_unknown_fields_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="extra"):
            ErrorResponse(error_code=1, message="m", unknown=1)  # type: ignore[call-arg]

    def test_from_declared_exception(self, registry: ErrorRegistry) -> None:
        @register_exception(
            error_code=301, message="User not found", status_code=404, registry=registry
        )
        class UserNotFound(BaseAppException):
            pass

        exc = UserNotFound(detail={"user_id": 7})
        response = ErrorResponse.from_exception(exc)
        assert response.model_dump() == {
            "error_code": 301,
            "message": "User not found",
            "status_code": 404,
            "detail": {"user_id": 7},
            "timestamp": exc.timestamp,
            "error_name": "UserNotFound",
        }
        assert response.model_dump(mode="json") == exc.to_dict()

    def test_from_plain_app_exception(self) -> None:
        exc = BaseAppException(1001, "Broken", 409, detail=["a"])
        response = ErrorResponse.from_exception(exc)
        assert (response.error_code, response.status_code, response.error_name) == (
            1001,
            409,
            "BaseAppException",
        )
        assert (response.message, response.detail) == ("Broken", ["a"])

    @pytest.mark.parametrize(
        "exc", [ValueError("bad value"), KeyError("k"), HTTPException(status_code=404)]
    )
    def test_from_other_exception_is_a_500(self, exc: Exception) -> None:
        response = ErrorResponse.from_exception(exc)
        assert response.error_code == 500
        assert response.status_code == 500  # the original leaves None here
        assert response.message == str(exc)
        assert response.error_name == type(exc).__name__
        assert response.detail is None
        assert TIMESTAMP_RE.match(response.timestamp)


class TestOriginalDetailModels:
    def test_error_detail(self) -> None:
        detail = ErrorDetail(field="email", message="Invalid email format", code="INVALID_FORMAT")
        assert detail.model_dump() == {
            "field": "email",
            "message": "Invalid email format",
            "code": "INVALID_FORMAT",
        }
        assert ErrorDetail(field="email", message="Invalid").code is None
        with pytest.raises(ValidationError):
            ErrorDetail(field="email")  # type: ignore[call-arg]

    def test_error_detail_item(self) -> None:
        item = ErrorDetailItem(
            loc=["body", "users", 0, "email"], msg="field required", type="value_error.missing"
        )
        assert item.loc == ["body", "users", 0, "email"]
        assert (item.msg, item.type) == ("field required", "value_error.missing")
        assert ErrorDetailItem(loc=["query"], msg="m").type is None

    def test_validation_error_response(self) -> None:
        response = ValidationErrorResponse.from_validation_details(
            error_code=401,
            message="Validation failed",
            details=[
                {"field": "email", "message": "Invalid", "code": "INVALID"},
                {"field": "password", "message": "Required"},
            ],
        )
        assert response.status_code == 422
        assert response.errors == [
            ErrorDetail(field="email", message="Invalid", code="INVALID"),
            ErrorDetail(field="password", message="Required"),
        ]
        assert TIMESTAMP_RE.match(response.timestamp)
        other = ValidationErrorResponse.from_validation_details(
            error_code=402, message="m", details=[], status_code=400
        )
        assert (other.status_code, other.errors) == (400, [])

    def test_validation_error_response_checks(self) -> None:
        with pytest.raises(ValidationError):
            ValidationErrorResponse(error_code=10000, message="m")
        with pytest.raises(ValidationError):
            ValidationErrorResponse.from_validation_details(
                error_code=1, message="m", details=[{"message": "no field"}]
            )
        first = ValidationErrorResponse(error_code=1, message="m")
        first.errors.append(ErrorDetail(field="a", message="b"))
        assert ValidationErrorResponse(error_code=1, message="m").errors == []


class TestProblemModel:
    def test_optional_members_only_when_present(self) -> None:
        base: dict[str, Any] = {
            "type": "about:blank",
            "title": "Not found",
            "status": 404,
            "detail": "Not found",
            "error_code": 404,
            "error_name": "NotFound",
            "timestamp": "2025-01-01T12:00:00.000Z",
        }
        bare = ErrorCodeProblem(**base).to_body()
        assert tuple(bare) == tuple(key for key in PROBLEM_KEYS if key != "instance")
        full = ErrorCodeProblem.model_validate(
            {
                **base,
                "instance": "/x",
                "errors": [
                    {"location": ["body", 0], "pointer": "/body/0", "message": "m", "type": "t"}
                ],
            }
        ).to_body()
        assert tuple(full) == (*PROBLEM_KEYS, "errors")
        assert full["errors"] == [
            {"location": ["body", 0], "pointer": "/body/0", "message": "m", "type": "t"}
        ]
        with_context = ErrorCodeProblem(**base, context={"a": None}).to_body()
        assert with_context["context"] == {"a": None}  # None inside a member is kept
        assert "errors" not in with_context

    def test_status_range(self) -> None:
        with pytest.raises(ValidationError):
            ErrorCodeProblem(
                type="about:blank",
                title="t",
                status=200,
                detail="d",
                error_code=1,
                error_name="n",
            )


# -- the models are what build_body and the handlers send ------------------------------------


def test_build_body_is_the_model_dump() -> None:
    fields: dict[str, Any] = {
        "error_code": 7,
        "error_name": "Seven",
        "status_code": 409,
        "message": "Conflict",
        "timestamp": "2025-01-01T12:00:00.000Z",
    }
    for detail in (None, "text", {"a": [1, 2.5, None]}, [1, "x"]):
        body = build_body(
            "json", **fields, detail=detail, errors=None, instance=None, type_base=None
        )
        assert body == ErrorResponse(**fields, detail=detail).model_dump(mode="json")
        assert tuple(body) == JSON_KEYS


def test_to_dict_is_the_model_dump() -> None:
    exc = BaseAppException(12, "m", 409, detail={"a": [1]})
    assert exc.to_dict() == ErrorResponse.from_exception(exc).model_dump(mode="json")


@pytest.fixture
def app_with_errors(registry: ErrorRegistry) -> tuple[FastAPI, list[HandledError]]:
    """An app raising a declared error (static message), and the errors it handled."""

    @register_exception(
        error_code=4040, message="Order not found", status_code=404, registry=registry
    )
    class OrderNotFound(BaseAppException):
        pass

    app = FastAPI()

    @app.get("/orders/{order_id}")
    def get_order(order_id: int) -> dict[str, int]:
        raise OrderNotFound(detail={"order_id": order_id, "tags": ["a", "b"]})

    @app.get("/conflict")
    def conflict() -> None:
        raise HTTPException(status_code=409, detail={"field": "x"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal")

    seen: list[HandledError] = []
    add_error_observer(app, lambda _request, error: seen.append(error))
    return app, seen


REQUESTS = ("/orders/7", "/orders/abc", "/conflict", "/boom", "/nowhere")


def test_handler_body_is_the_model_of_the_exception(
    app_with_errors: tuple[FastAPI, list[HandledError]],
) -> None:
    app, seen = app_with_errors
    setup_exception_handler(app)
    body = TestClient(app).get("/orders/7").json()
    exc = seen[-1].exception
    assert isinstance(exc, BaseAppException)
    expected = ErrorResponse.from_exception(exc).model_dump(mode="json")
    assert body == expected  # the handler sends the exception's own timestamp
    assert ErrorResponse.model_validate(body).model_dump(mode="json") == body


def test_every_json_body_validates(app_with_errors: tuple[FastAPI, list[HandledError]]) -> None:
    app, _ = app_with_errors
    setup_exception_handler(app)
    client = TestClient(app, raise_server_exceptions=False)
    schema = app.openapi()["components"]["schemas"]["ErrorCodeResponse"]
    for path in REQUESTS:
        body = client.get(path).json()
        model = ErrorResponse.model_validate(body)
        assert model.model_dump(mode="json") == body, path
        assert tuple(body) == JSON_KEYS, path
        jsonschema.validate(body, schema)


def test_every_problem_body_validates(
    app_with_errors: tuple[FastAPI, list[HandledError]],
) -> None:
    app, _ = app_with_errors
    setup_exception_handler(app, ErrorHandlerConfig(response_format="problem+json"))
    client = TestClient(app, raise_server_exceptions=False)
    document = app.openapi()
    schema = {**document["components"]["schemas"]["ErrorCodeProblem"], **document}
    seen_members: set[str] = set()
    for path in REQUESTS:
        body = client.get(path).json()
        assert ErrorCodeProblem.model_validate(body).to_body() == body, path
        jsonschema.validate(body, schema)
        seen_members.update(body)
    assert {"instance", "errors", "context"} <= seen_members


# -- the OpenAPI components are the models' schemas ----------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_openapi_components_are_the_models(
    app_with_errors: tuple[FastAPI, list[HandledError]], fmt: str
) -> None:
    app, _ = app_with_errors
    setup_exception_handler(app, ErrorHandlerConfig(response_format=fmt))
    components = app.openapi()["components"]["schemas"]
    for name, model in COMPONENTS.items():
        expected = component_of(model)
        if model is ErrorResponse:
            # Narrowed to what the handlers send: an HTTP error status and a name, always.
            expected["properties"]["status_code"] = {
                **{
                    k: v
                    for k, v in expected["properties"]["status_code"].items()
                    if k not in ("anyOf", "default")
                },
                "type": "integer",
                "minimum": 400,
                "maximum": 599,
            }
            expected["properties"]["error_name"] = {
                **{
                    k: v
                    for k, v in expected["properties"]["error_name"].items()
                    if k not in ("anyOf", "default")
                },
                "type": "string",
            }
        assert components[name] == expected, name
    problem_errors = components["ErrorCodeProblem"]["properties"]["errors"]
    assert problem_errors["items"] == {"$ref": "#/components/schemas/ErrorCodeFieldError"}


def test_component_constraints() -> None:
    body = component_of(ErrorResponse)
    assert body["title"] == "ErrorCodeResponse"
    assert body["additionalProperties"] is False
    assert body["required"] == list(JSON_KEYS)
    assert (
        body["properties"]["error_code"]["minimum"],
        body["properties"]["error_code"]["maximum"],
    ) == (0, 9999)
    assert body["properties"]["timestamp"]["format"] == "date-time"
    problem = component_of(ErrorCodeProblem)
    assert problem["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "error_code",
        "error_name",
    ]
    for member in ("instance", "errors", "context"):
        assert "default" not in problem["properties"][member]
    assert problem["properties"]["instance"] == {
        "description": problem["properties"]["instance"]["description"],
        "format": "uri-reference",
        "title": "Instance",
        "type": "string",
    }
    assert component_of(ErrorCodeFieldError)["required"] == [
        "location",
        "pointer",
        "message",
        "type",
    ]
