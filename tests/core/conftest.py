"""Fixtures of the error-core tests: fresh registries, locale files, and an app factory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from fastapi_error_codes import (
    BaseAppException,
    ErrorHandlerConfig,
    ErrorRegistry,
    default_registry,
    register_exception,
    setup_exception_handler,
)
from fastapi_error_codes.domains import _reset_domains
from fastapi_error_codes.observers import HandledError, add_error_observer

FORMATS = ("json", "problem+json")


@pytest.fixture(autouse=True)
def _reset_global_state() -> Iterator[None]:
    """Every test starts with the default registry and the domains as they were."""
    saved = default_registry.all()
    yield
    default_registry.clear()
    for info in saved:
        default_registry.register(info)
    _reset_domains()


@pytest.fixture
def registry() -> ErrorRegistry:
    """A fresh registry of one test."""
    return ErrorRegistry()


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    """Locale files: English, Korean, German (and Swiss German without the user message)."""
    files: dict[str, Any] = {
        "en": {
            "errors": {
                "3001": "User {user_id} was not found",
                "404": "Nothing here",
                "422": "The request is invalid",
                "500": "Something went wrong",
            },
            "validation": {"missing": "{field} is required"},
        },
        "ko": {
            "errors": {
                "3001": "사용자 {user_id}을(를) 찾을 수 없습니다",
                "404": "찾을 수 없습니다",
                "422": "요청이 올바르지 않습니다",
                "500": "서버 오류",
            },
            "validation": {"missing": "{field} 항목이 필요합니다"},
        },
        "de": {"errors": {"3001": "Benutzer {user_id} nicht gefunden", "404": "Nicht gefunden"}},
        "de-CH": {"errors": {"404": "Nüt da"}},
    }
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return tmp_path


class Item(BaseModel):
    """A body with constraints, to provoke validation errors."""

    name: str
    age: int = Field(ge=0)


def build_app(registry: ErrorRegistry) -> tuple[FastAPI, dict[str, type[BaseAppException]]]:
    """An app raising every kind of error; returns it with its declared error classes."""

    @register_exception(
        error_code=3001,
        message="User {user_id} not found",
        status_code=404,
        registry=registry,
    )
    class UserNotFound(BaseAppException):
        pass

    @register_exception(
        error_code=201,
        message="Token expired",
        status_code=401,
        domain="AUTH",
        registry=registry,
    )
    class TokenExpired(BaseAppException):
        pass

    @register_exception(
        error_code=501, message="Payments are down", status_code=503, registry=registry
    )
    class PaymentsDown(BaseAppException):
        pass

    app = FastAPI()

    @app.get("/users/{user_id}")
    def get_user(user_id: int) -> dict[str, int]:
        raise UserNotFound(detail={"user_id": user_id})

    @app.get("/token")
    def token() -> None:
        raise TokenExpired(headers={"WWW-Authenticate": "Bearer"})

    @app.get("/custom-message")
    def custom_message() -> None:
        raise UserNotFound(message="Custom text", detail="plain detail")

    @app.get("/payments")
    def payments() -> None:
        raise PaymentsDown()

    @app.post("/items")
    def create_item(item: Item) -> Item:
        return item

    @app.get("/header")
    def needs_header(x_token: str = Header()) -> str:
        return x_token

    @app.get("/http/{status}")
    def http_error(status: int) -> None:
        raise HTTPException(status_code=status, headers={"X-Extra": "1"})

    @app.get("/http-text")
    def http_text() -> None:
        raise HTTPException(status_code=409, detail="Already exists")

    @app.get("/http-data")
    def http_data() -> None:
        raise HTTPException(status_code=400, detail={"field": "x"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 in internal.secret_module")

    @app.get("/key-error")
    def key_error() -> None:
        raise KeyError("SecretInternalThing")

    errors = {"UserNotFound": UserNotFound, "TokenExpired": TokenExpired}
    errors["PaymentsDown"] = PaymentsDown
    return app, errors


@pytest.fixture
def make_client(
    registry: ErrorRegistry,
) -> Callable[..., tuple[TestClient, list[HandledError], dict[str, type[BaseAppException]]]]:
    """Factory: a TestClient on a fresh app, the errors its observer saw, its error classes."""

    def make(
        config: ErrorHandlerConfig | None = None,
    ) -> tuple[TestClient, list[HandledError], dict[str, type[BaseAppException]]]:
        app, errors = build_app(registry)
        setup_exception_handler(app, config)
        seen: list[HandledError] = []
        add_error_observer(app, lambda _request, error: seen.append(error))
        return TestClient(app, raise_server_exceptions=False), seen, errors

    return make
