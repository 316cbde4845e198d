"""Helpers for users' own tests: check that a response is the error it should be."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi_error_codes._bodies import JSON_KEYS, PROBLEM_KEYS
from fastapi_error_codes._builtin import builtin_error
from fastapi_error_codes.errors import BaseAppException, ErrorInfo

__all__ = ["assert_error"]

_MISSING: Any = object()


class _Response(Protocol):
    status_code: int

    @property
    def headers(self) -> Any: ...

    def json(self) -> Any: ...


def _expected_info(expected: type[BaseAppException] | ErrorInfo | int) -> ErrorInfo:
    if isinstance(expected, ErrorInfo):
        return expected
    if isinstance(expected, int) and not isinstance(expected, bool):
        return builtin_error(expected)
    info = getattr(expected, "__error_info__", None)
    if info is None:
        raise TypeError(
            "assert_error expects a class declared with @register_exception, an ErrorInfo, or "
            f"the HTTP status of a built-in framework error; got {expected!r}"
        )
    return info  # type: ignore[no-any-return]


def _fail(what: str, body: Any) -> None:
    raise AssertionError(f"{what}\nresponse body: {body!r}")


def assert_error(
    response: _Response,
    expected: type[BaseAppException] | ErrorInfo | int,
    *,
    detail: Any = _MISSING,
    message: str | None = None,
) -> dict[str, Any]:
    """Check *response* is the error *expected* in either body format; return the body.

    *expected* is a declared class, an ErrorInfo, or an HTTP status for a built-in framework
    error (``assert_error(r, 404)``). Pass *detail* or *message* to compare those too.
    """
    info = _expected_info(expected)
    content_type = str(response.headers.get("content-type", "")).split(";")[0].strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        _fail(f"expected a JSON error body, got content-type {content_type!r}", body)
    if response.status_code != info.status_code:
        _fail(f"expected HTTP {info.status_code}, got {response.status_code}", body)
    problem = content_type == "application/problem+json"
    if problem:
        missing = [k for k in PROBLEM_KEYS if k not in body and k != "instance"]
        if missing:
            _fail(f"problem body lacks {missing}", body)
        status, got_message = body["status"], body["title"]
    else:
        if content_type != "application/json":
            _fail(
                f"expected application/json or application/problem+json, got {content_type!r}", body
            )
        if tuple(sorted(body)) != tuple(sorted(JSON_KEYS)):
            _fail(f"expected exactly the keys {list(JSON_KEYS)}", body)
        status, got_message = body["status_code"], body["message"]
    if body["error_code"] != info.error_code:
        _fail(f"expected error_code {info.error_code}, got {body['error_code']!r}", body)
    if body["error_name"] != info.error_name:
        _fail(f"expected error_name {info.error_name!r}, got {body['error_name']!r}", body)
    if status != info.status_code:
        _fail(f"the body's status {status!r} differs from {info.status_code}", body)
    if message is not None and got_message != message:
        _fail(f"expected message {message!r}, got {got_message!r}", body)
    if detail is not _MISSING:
        if problem:
            got_detail = body["detail"] if isinstance(detail, str) else body.get("context")
        else:
            got_detail = body["detail"]
        if got_detail != detail:
            _fail(f"expected detail {detail!r}, got {got_detail!r}", body)
    return body  # type: ignore[no-any-return]
