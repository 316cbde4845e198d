"""BaseAppException: attributes, defaults from the declaration, dict form, pickling."""

from __future__ import annotations

import pickle
import re

import pytest

from fastapi_error_codes import BaseAppException, ErrorRegistry, register_exception


@pytest.fixture
def user_not_found(registry: ErrorRegistry) -> type[BaseAppException]:
    @register_exception(
        error_code=301, message="User not found", status_code=404, registry=registry
    )
    class UserNotFound(BaseAppException):
        pass

    return UserNotFound


def test_plain_construction() -> None:
    exc = BaseAppException(1001, "Broken", detail={"a": 1}, headers={"X-A": "b"})
    assert (exc.error_code, exc.message, exc.status_code) == (1001, "Broken", 400)
    assert exc.detail == {"a": 1}
    assert exc.headers == {"X-A": "b"}
    assert exc.error_name == "BaseAppException"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", exc.timestamp)
    assert str(exc) == "Broken"


def test_declared_defaults(user_not_found: type[BaseAppException]) -> None:
    exc = user_not_found()
    assert (exc.error_code, exc.message, exc.status_code) == (301, "User not found", 404)
    assert exc.error_name == "UserNotFound"
    assert exc.detail is None
    assert exc.message_is_default
    with_detail = user_not_found(detail={"id": 3})
    assert with_detail.detail == {"id": 3}
    custom = user_not_found(message="Gone")
    assert custom.message == "Gone"
    assert not custom.message_is_default


def test_to_dict(user_not_found: type[BaseAppException]) -> None:
    exc = user_not_found(detail="x")
    assert exc.to_dict() == {
        "error_code": 301,
        "message": "User not found",
        "status_code": 404,
        "detail": "x",
        "timestamp": exc.timestamp,
        "error_name": "UserNotFound",
    }


def test_add_detail_chains() -> None:
    exc = BaseAppException(1, "m").add_detail("a", 1).add_detail("b", 2)
    assert exc.detail == {"a": 1, "b": 2}


@pytest.mark.parametrize("old", ["text", ["a", "list"], 0])
def test_add_detail_keeps_a_non_dict_detail_as_previous(old: object) -> None:
    # As in the original fastapi-error-code (this used to raise TypeError).
    exc = BaseAppException(1, "m", detail=old)
    assert exc.add_detail("a", 1) is exc
    assert exc.detail == {"previous": old, "a": 1}
    exc.add_detail("b", 2)
    assert exc.detail == {"previous": old, "a": 1, "b": 2}


def test_undeclared_needs_a_code() -> None:
    with pytest.raises(TypeError, match="needs an error_code"):
        BaseAppException()


def test_message_by_position_is_rejected(user_not_found: type[BaseAppException]) -> None:
    with pytest.raises(TypeError, match="message="):
        user_not_found("oops")  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "status"), [(-1, 400), (10000, 400), (1, 399), (1, 600)])
def test_ranges(code: int, status: int) -> None:
    with pytest.raises(ValueError, match=r"between|400 to 599"):
        BaseAppException(code, "m", status)


def test_pickle_round_trip(user_not_found: type[BaseAppException]) -> None:
    exc = BaseAppException(12, "m", 409, detail={"a": [1]})
    copy = pickle.loads(pickle.dumps(exc))
    assert copy.to_dict() == exc.to_dict()


def test_repr() -> None:
    assert repr(BaseAppException(5, "m", 418)) == (
        "BaseAppException(error_code=5, status_code=418, message='m')"
    )
