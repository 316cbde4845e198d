"""fastapi_error_codes.testing.assert_error: passes on the right error, fails clearly."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes import (
    BaseAppException,
    ErrorHandlerConfig,
    ErrorRegistry,
    register_exception,
    setup_exception_handler,
)
from fastapi_error_codes.testing import assert_error


@pytest.fixture(params=["json", "problem+json"])
def setup(request: pytest.FixtureRequest, registry: ErrorRegistry) -> tuple[TestClient, Any, Any]:
    @register_exception(error_code=301, message="Missing", status_code=404, registry=registry)
    class Missing(BaseAppException):
        pass

    @register_exception(error_code=302, message="Other", status_code=404, registry=registry)
    class Other(BaseAppException):
        pass

    app = FastAPI()

    @app.get("/missing")
    def missing() -> None:
        raise Missing(detail={"id": 1})

    @app.get("/ok")
    def ok() -> dict[str, int]:
        return {"error_code": 1}

    setup_exception_handler(app, ErrorHandlerConfig(response_format=request.param))
    return TestClient(app), Missing, Other


def test_passes_and_returns_body(setup: tuple[TestClient, Any, Any]) -> None:
    client, missing, _ = setup
    body = assert_error(client.get("/missing"), missing, detail={"id": 1}, message="Missing")
    assert body["error_code"] == 301
    assert_error(client.get("/missing"), missing.__error_info__)
    assert_error(client.get("/nowhere"), 404)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"detail": {"id": 2}}, "expected detail"),
        ({"message": "Else"}, "expected message"),
    ],
)
def test_fails_on_mismatch(
    setup: tuple[TestClient, Any, Any], kwargs: dict[str, Any], match: str
) -> None:
    client, missing, _ = setup
    with pytest.raises(AssertionError, match=match):
        assert_error(client.get("/missing"), missing, **kwargs)


def test_fails_on_other_error(setup: tuple[TestClient, Any, Any]) -> None:
    client, _, other = setup
    with pytest.raises(AssertionError, match="expected error_code 302"):
        assert_error(client.get("/missing"), other)
    with pytest.raises(AssertionError, match="expected HTTP 500"):
        assert_error(client.get("/missing"), 500)


def test_fails_on_success(setup: tuple[TestClient, Any, Any]) -> None:
    client, missing, _ = setup
    with pytest.raises(AssertionError, match="expected HTTP 404"):
        assert_error(client.get("/ok"), missing)


def test_rejects_undeclared(setup: tuple[TestClient, Any, Any]) -> None:
    client, _, _ = setup
    with pytest.raises(TypeError, match="declared"):
        assert_error(client.get("/missing"), ValueError)  # type: ignore[arg-type]
