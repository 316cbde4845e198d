"""Error bodies in both formats, and a JSON encoder that accepts any detail value.

Every body is an instance of its model in :mod:`fastapi_error_codes.models` (``ErrorResponse``
or ``ErrorCodeProblem``) dumped as JSON, so what is sent and what the OpenAPI schema shows
come from the same definition.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from fastapi_error_codes.models import _MAX_CODE, _MIN_CODE, ErrorCodeProblem, ErrorResponse

__all__ = ["JSON_KEYS", "PROBLEM_KEYS", "build_body", "json_safe", "problem_type"]

#: The keys of the default body, in order (the fields of ``ErrorResponse``).
JSON_KEYS = tuple(ErrorResponse.model_fields)
#: Members of a problem body present only when they apply (validation errors, a structured
#: detail); every other member of ``ErrorCodeProblem`` is always sent (``instance`` when known).
_PROBLEM_OPTIONAL = ("errors", "context")
#: The members of an RFC 9457 body we always send (extensions after the standard five).
PROBLEM_KEYS = tuple(
    name for name in ErrorCodeProblem.model_fields if name not in _PROBLEM_OPTIONAL
)

_MAX_DEPTH = 32
#: The JSON scalars whose model dump is the value itself (exact types: a subclass such as an
#: ``IntEnum`` is dumped as its value, so it takes the model's path).
_SCALARS = frozenset({str, int, bool, type(None)})


def _text(value: str) -> str:
    """*value* without lone surrogates, which no UTF-8 body can carry (echoed input may)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def json_safe(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """Return *value* as plain JSON data (no NaN, str keys, valid UTF-8); never raises."""
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if _depth >= _MAX_DEPTH or id(value) in _seen:
        return None
    seen = _seen | {id(value)}
    depth = _depth + 1
    try:
        if isinstance(value, Mapping):
            return {_text(str(k)): json_safe(v, depth, seen) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
            return [json_safe(v, depth, seen) for v in items]
        if isinstance(value, BaseModel):
            return json_safe(value.model_dump(mode="json"), depth, seen)
        if isinstance(value, enum.Enum):
            return json_safe(value.value, depth, seen)
        if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
            return value.isoformat()
        if isinstance(value, (Decimal, uuid.UUID, PurePath)):
            return _text(str(value))
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return json_safe(fields, depth, seen)
        return _text(str(value))
    except Exception:
        # A detail whose own __str__ or iteration fails must not break the error response.
        return None


def problem_type(type_base: str | None, error_code: int) -> str:
    """Return the problem ``type`` URI of an error code (``about:blank`` with no base)."""
    if type_base is None:
        return "about:blank"
    return f"{type_base.rstrip('/')}/{error_code}"


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether *value* is JSON data its model dumps as itself (exact types, finite floats).

    A body of such data is built as a dict directly: validating and dumping it through the
    model (a few µs per error) would give an equal dict. Anything else takes the model.
    """
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth >= _MAX_DEPTH:
        return False
    if kind is dict:
        depth += 1
        for key, item in value.items():
            if type(key) is not str or not _plain(item, depth):
                return False
        return True
    if kind is list:
        depth += 1
        return all(_plain(item, depth) for item in value)
    return False


def build_body(
    response_format: str,
    *,
    error_code: int,
    error_name: str,
    status_code: int,
    message: str,
    detail: Any,
    errors: list[dict[str, Any]] | None,
    timestamp: str,
    instance: str | None,
    type_base: str | None,
) -> dict[str, Any]:
    """Build the body of one error in *response_format* through its model, as JSON data.

    ``"json"``: an :class:`~fastapi_error_codes.models.ErrorResponse`, exactly the six keys
    of :data:`JSON_KEYS` (validation field errors go in ``detail.errors``). ``"problem+json"``:
    an :class:`~fastapi_error_codes.models.ErrorCodeProblem`, the occurrence's text in
    ``detail`` and any structured detail in the ``context`` extension; ``instance``,
    ``errors`` and ``context`` appear only when present. *detail* must be JSON-safe already
    (:func:`json_safe`): the handler makes it so once, before localising with it.

    The usual error (int code in range, str texts, plain JSON detail, no field errors) is
    built as a dict directly: the same dict, key for key, as the model's dump, without
    validating and dumping a model per error. Anything else goes through the model.
    """
    fast = (
        errors is None
        and type(error_code) is int
        and _MIN_CODE <= error_code <= _MAX_CODE
        and type(status_code) is int
        and type(message) is str
        and type(error_name) is str
        and type(timestamp) is str
        and _plain(detail)
    )
    if response_format != "problem+json":
        if fast:
            return {
                "error_code": error_code,
                "message": message,
                "status_code": status_code,
                "detail": detail,
                "timestamp": timestamp,
                "error_name": error_name,
            }
        return ErrorResponse(
            error_code=error_code,
            message=message,
            status_code=status_code,
            detail={"errors": errors} if errors is not None else detail,
            timestamp=timestamp,
            error_name=error_name,
        ).model_dump(mode="json")
    structured = errors is None and detail is not None and not isinstance(detail, str)
    kind = problem_type(type_base, error_code)
    if fast and 400 <= status_code <= 599 and (instance is None or type(instance) is str):
        body: dict[str, Any] = {
            "type": kind,
            "title": message,
            "status": status_code,
            "detail": detail if type(detail) is str else message,
        }
        if instance is not None:
            body["instance"] = instance
        body["error_code"] = error_code
        body["error_name"] = error_name
        body["timestamp"] = timestamp
        if structured:
            body["context"] = detail
        return body
    return ErrorCodeProblem.model_validate(
        {
            "type": kind,
            "title": message,
            "status": status_code,
            "detail": detail if isinstance(detail, str) else message,
            "instance": instance,
            "error_code": error_code,
            "error_name": error_name,
            "timestamp": timestamp,
            "errors": errors,
            "context": detail if structured else None,
        }
    ).to_body()
