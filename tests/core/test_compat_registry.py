"""The original fastapi-error-code's spellings work unchanged: its module paths, its registry
functions, ``register_exception`` with positional arguments or no message, and metadata."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import fastapi_error_codes
from fastapi_error_codes.base import BaseAppException
from fastapi_error_codes.decorators import register_exception
from fastapi_error_codes.domain import ErrorDomain
from fastapi_error_codes.registry import (
    ExceptionRegistry,
    _registry,
    get_error_code_info,
    list_error_codes,
    register_error_code,
)

# The default registry and the domains are restored after every test (tests/core/conftest.py).


def test_the_original_paths_are_ours() -> None:
    from fastapi_error_codes import errors, registry

    assert BaseAppException is errors.BaseAppException
    assert ErrorDomain is fastapi_error_codes.ErrorDomain
    assert register_exception is registry.register_exception
    assert ExceptionRegistry is fastapi_error_codes.ErrorRegistry
    assert _registry is fastapi_error_codes.default_registry


def test_register_exception_without_a_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fastapi_error_codes"):

        @register_exception(203)
        class PaymentFailedException(BaseAppException):
            pass

    assert "made from the class name" in caplog.text
    exc = PaymentFailedException()
    assert (exc.error_code, exc.message, exc.status_code) == (203, "Payment Failed", 400)
    assert get_error_code_info(203) == {
        "class": PaymentFailedException,
        "message": "Payment Failed",
        "metadata": {"status_code": 400, "domain": "AUTH", "message_key": "errors.203"},
    }
    assert PaymentFailedException._default_message == "Payment Failed"  # type: ignore[attr-defined]
    assert PaymentFailedException._error_code == 203  # type: ignore[attr-defined]


def test_register_exception_positional() -> None:
    @register_exception(301, "Resource not found", None, 404, "resource")
    class ResourceNotFoundException(BaseAppException):
        pass

    exc = ResourceNotFoundException(detail={"id": 1})
    assert (exc.error_code, exc.message, exc.status_code) == (301, "Resource not found", 404)
    assert exc.detail == {"id": 1}
    assert ResourceNotFoundException._domain == "RESOURCE"  # type: ignore[attr-defined]
    assert ResourceNotFoundException._status_code == 404  # type: ignore[attr-defined]


def test_metadata_is_kept_and_catalogued() -> None:
    @register_exception(error_code=1203, message="Card declined", status_code=402, team="payments")
    class CardDeclined(BaseAppException):
        pass

    info = get_error_code_info(1203)
    assert info is not None
    assert info["class"] is CardDeclined
    assert info["message"] == "Card declined"
    assert info["metadata"] == {
        "status_code": 402,
        "domain": None,
        "message_key": "errors.1203",
        "team": "payments",
    }
    assert _registry.get_metadata(1203) == info["metadata"]
    rows = json.loads(fastapi_error_codes.error_catalog().to_json())
    row = next(r for r in rows if r["error_code"] == 1203)
    assert row["metadata"] == {"team": "payments"}
    assert all("metadata" in r for r in rows)
    markdown = fastapi_error_codes.error_catalog().to_markdown()
    assert "| 1203 | CardDeclined | 402 | Card declined |  | no | team=payments |" in markdown


def test_register_error_code_declares_the_class() -> None:
    class AuthException(BaseAppException):
        pass

    class LegacyError(BaseAppException):
        pass

    register_error_code(201, AuthException, "Authentication required", status_code=401)
    register_error_code(1100, LegacyError, "Legacy", domain=None, owner="core")
    assert 201 in list_error_codes()
    assert list_error_codes() == sorted(list_error_codes())
    assert {201, 1100} <= set(list_error_codes())
    exc = AuthException()
    assert (exc.error_code, exc.message, exc.status_code) == (201, "Authentication required", 401)
    assert LegacyError().status_code == 400
    info = get_error_code_info(1100)
    assert info is not None
    assert info["metadata"]["owner"] == "core"
    assert get_error_code_info(4242) is None
    with pytest.raises(ValueError, match="already used"):
        register_error_code(201, LegacyError, "Again")


def test_a_class_declared_by_register_error_code_answers_as_declared() -> None:
    class Locked(BaseAppException):
        pass

    register_error_code(210, Locked, "Account locked", status_code=423)
    app = FastAPI()
    fastapi_error_codes.setup_exception_handler(app)

    @app.get("/locked")
    def locked() -> None:
        raise Locked()

    response = TestClient(app).get("/locked")
    assert response.status_code == 423
    body = response.json()
    assert (body["error_code"], body["message"], body["error_name"]) == (
        210,
        "Account locked",
        "Locked",
    )


def test_the_original_registry_methods() -> None:
    registry = ExceptionRegistry()

    class AuthException(BaseAppException):
        pass

    registry.register(201, AuthException, "Auth required", domain="AUTH", status_code=401)
    assert registry.is_registered(201)
    assert registry.get_exception(201) is AuthException
    assert registry.get_message(201) == "Auth required"
    assert registry.get_metadata(201) == {
        "status_code": 401,
        "domain": "AUTH",
        "message_key": "errors.201",
    }
    assert registry.get_all_codes() == [201]
    assert registry.get_registry_info()[201]["class"] is AuthException
    assert not _registry.is_registered(201)
    registry.clear()
    assert registry.get_all_codes() == []


def test_the_original_domain_api() -> None:
    assert ErrorDomain.get_domain("AUTH") is ErrorDomain.AUTH
    assert ErrorDomain.AUTH.code_range == (200, 299)
    assert ErrorDomain.get_domain("CUSTOM").code_range == (900, 999)  # type: ignore[union-attr]
    ErrorDomain.register_domain("BUSINESS", (1000, 1999))
    assert ErrorDomain.get_domain("BUSINESS").code_range == (1000, 1999)  # type: ignore[union-attr]
    assert "BUSINESS" in ErrorDomain.list_domains()
    assert ErrorDomain.is_valid_code(1500, "BUSINESS")
    assert not ErrorDomain.is_valid_code(100, "NONEXISTENT")
    assert ErrorDomain.get_domain_for_code(201).name == "AUTH"  # type: ignore[union-attr]
    domain = ErrorDomain("TEST", (600, 699))
    assert domain.is_valid(650) and 699 in domain and 700 not in domain

    @register_exception(1001, "Order rejected", domain="BUSINESS")
    class OrderRejected(BaseAppException):
        pass

    assert OrderRejected.__error_info__.domain == "BUSINESS"  # type: ignore[union-attr]


def test_add_detail_keeps_a_plain_detail() -> None:
    exc = BaseAppException(400, "Validation failed", detail="bad email")
    exc.add_detail("field", "email")
    assert exc.detail == {"previous": "bad email", "field": "email"}


@pytest.mark.parametrize("status", [100, 200, 302, 399])
def test_status_below_400_is_refused(status: int) -> None:
    # Deliberately stricter than the original (100-599): an error answers with an error status.
    with pytest.raises(ValueError, match="status_code"):
        register_exception(1, "m", status_code=status)


def test_unknown_domain_is_refused() -> None:
    # Deliberately stricter than the original, which stores any domain string.
    with pytest.raises(ValueError, match="unknown error domain"):
        register_exception(1001, "m", domain="users")


def test_one_class_may_hold_several_codes_through_the_original_api() -> None:
    """The original registry kept every code registered for a class; so do we."""

    class GenericError(BaseAppException):
        pass

    register_error_code(1201, GenericError, "first")
    register_error_code(1202, GenericError, "second")
    assert {1201, 1202} <= set(list_error_codes())
    assert get_error_code_info(1201)["message"] == "first"  # type: ignore[index]
    assert get_error_code_info(1202)["message"] == "second"  # type: ignore[index]
