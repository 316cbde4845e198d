"""The speed work changes no output: each fast path gives what the slow one gave.

- ``build_body`` builds the usual body as a dict directly: it must equal, key for key and
  type for type, the model's dump that it skips (both formats, any JSON-safe detail, and
  inputs that must still take the model: enum codes, str subclasses, out-of-range codes).
- ``utc_timestamp`` formats the second once: it must give ``datetime.now(timezone.utc)``'s
  string for any clock reading, millisecond and second boundaries included.
- request ids come from a pool of ``os.urandom`` bytes: 32 hex digits, never repeated, and a
  forked child never hands out its parent's.
"""

from __future__ import annotations

import enum
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_error_codes import _sent, _time
from fastapi_error_codes._bodies import build_body, json_safe, problem_type
from fastapi_error_codes.models import ErrorCodeProblem, ErrorResponse


def _model_body(response_format: str, **fields: Any) -> dict[str, Any]:
    """The body as it was built before the fast path: always through the model."""
    errors, detail = fields["errors"], fields["detail"]
    if response_format != "problem+json":
        return ErrorResponse(
            error_code=fields["error_code"],
            message=fields["message"],
            status_code=fields["status_code"],
            detail={"errors": errors} if errors is not None else detail,
            timestamp=fields["timestamp"],
            error_name=fields["error_name"],
        ).model_dump(mode="json")
    structured = errors is None and detail is not None and not isinstance(detail, str)
    return ErrorCodeProblem.model_validate(
        {
            "type": problem_type(fields["type_base"], fields["error_code"]),
            "title": fields["message"],
            "status": fields["status_code"],
            "detail": detail if isinstance(detail, str) else fields["message"],
            "instance": fields["instance"],
            "error_code": fields["error_code"],
            "error_name": fields["error_name"],
            "timestamp": fields["timestamp"],
            "errors": errors,
            "context": detail if structured else None,
        }
    ).to_body()


def _typed(value: Any) -> Any:
    """*value* with the type of every node: equal dicts of unequal types differ here."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, value)


def _same(response_format: str, **fields: Any) -> None:
    fast = build_body(response_format, **fields)
    slow = _model_body(response_format, **fields)
    assert _typed(fast) == _typed(slow)
    assert json.dumps(fast) == json.dumps(slow)


json_data = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    response_format=st.sampled_from(["json", "problem+json"]),
    error_code=st.integers(0, 9999),
    status_code=st.integers(400, 599),
    message=st.text(max_size=20),
    detail=json_data,
    instance=st.one_of(st.none(), st.text(max_size=10)),
    type_base=st.one_of(st.none(), st.just("https://errors.example.com/")),
)
def test_the_fast_body_is_the_models_dump(
    response_format: str,
    error_code: int,
    status_code: int,
    message: str,
    detail: Any,
    instance: str | None,
    type_base: str | None,
) -> None:
    _same(
        response_format,
        error_code=error_code,
        error_name="ItemNotFound",
        status_code=status_code,
        message=message,
        detail=json_safe(detail),
        errors=None,
        timestamp="2025-01-01T12:00:00.000Z",
        instance=instance,
        type_base=type_base,
    )


class Code(enum.IntEnum):
    GONE = 4101


class Text(str, enum.Enum):
    GONE = "gone"


@pytest.mark.parametrize("response_format", ["json", "problem+json"])
@pytest.mark.parametrize(
    "changes",
    [
        {"error_code": Code.GONE},
        {"status_code": HTTPStatus.GONE},
        {"detail": {"k": Code.GONE, "t": Text.GONE}},
        {"detail": Text.GONE},
        {"detail": [1, (2, 3)]},
        {"detail": float("inf")},
        {"errors": [{"location": ["q"], "pointer": "/q", "message": "m", "type": "t"}]},
    ],
)
def test_what_the_fast_path_cannot_vouch_for_takes_the_model(
    response_format: str, changes: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {
        "error_code": 4101,
        "error_name": "ItemNotFound",
        "status_code": 404,
        "message": "Item not found",
        "detail": None,
        "errors": None,
        "timestamp": "2025-01-01T12:00:00.000Z",
        "instance": "/items/1",
        "type_base": None,
    }
    fields.update(changes)
    _same(response_format, **fields)


def test_an_out_of_range_code_is_still_refused_by_the_model() -> None:
    with pytest.raises(ValueError):
        build_body(
            "json",
            error_code=10_000,
            error_name="X",
            status_code=404,
            message="m",
            detail=None,
            errors=None,
            timestamp="t",
            instance=None,
            type_base=None,
        )


def _reference(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=seconds, microseconds=rest // 1000
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_the_cached_timestamp_is_datetimes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    now = time.time_ns()
    second = now - now % 1_000_000_000
    readings = [rng.randrange(0, 4_102_444_800 * 10**9) for _ in range(2000)]
    readings += [now + rng.randrange(-(10**10), 10**10) for _ in range(2000)]
    edges = (0, 1, 999_999, 1_000_000, 998_999_999, 999_000_000, 999_999_999)
    readings += [second + k * 10**9 + edge for k in range(-2, 3) for edge in edges]
    for ns in readings:
        monkeypatch.setattr(_time.time, "time_ns", lambda ns=ns: ns)
        assert _time.utc_timestamp() == _reference(ns), ns
    monkeypatch.undo()
    for _ in range(200):  # and on the real clock, between two readings of datetime's
        before = _reference(time.time_ns())
        ours = _time.utc_timestamp()
        after = _reference(time.time_ns())
        assert before <= ours <= after


def test_request_ids_are_fresh_random_hex() -> None:
    ids = [_sent._new_request_id() for _ in range(5000)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(i == i.lower() for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_reuses_its_parents_ids() -> None:
    _sent._new_request_id()  # the pool holds ids now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.close(read)
            os.write(write, ",".join(_sent._new_request_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [_sent._new_request_id() for _ in range(8)]
    assert len(child) == 8 and not set(child) & set(parent)
