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

from fastapi_error_codes.models import ErrorCodeProblem, ErrorResponse

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
    """
    if response_format != "problem+json":
        return ErrorResponse(
            error_code=error_code,
            message=message,
            status_code=status_code,
            detail={"errors": errors} if errors is not None else detail,
            timestamp=timestamp,
            error_name=error_name,
        ).model_dump(mode="json")
    structured = errors is None and detail is not None and not isinstance(detail, str)
    return ErrorCodeProblem.model_validate(
        {
            "type": problem_type(type_base, error_code),
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
