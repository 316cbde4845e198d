"""Property: any exception with any detail gives a valid body and the right status."""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_error_codes import BaseAppException, ErrorHandlerConfig, setup_exception_handler
from fastapi_error_codes._bodies import json_safe

JSON_KEYS = {"error_code", "message", "status_code", "detail", "timestamp", "error_name"}


class Unprintable:
    """An object whose str() fails."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
scalars = st.one_of(
    hashable,
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=10),
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.just(Unprintable()),
    st.just(object()),
)
details = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.frozensets(hashable, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=4),
    ),
    max_leaves=12,
)
app_errors = st.builds(
    BaseAppException,
    error_code=st.integers(0, 9999),
    message=st.text(max_size=40),
    status_code=st.integers(400, 599),
    detail=details,
)
http_errors = st.builds(
    HTTPException, status_code=st.integers(400, 599), detail=st.one_of(st.none(), details)
)
other_errors = st.builds(
    lambda cls, text: cls(text),
    st.sampled_from([RuntimeError, ValueError, KeyError, ZeroDivisionError, OSError]),
    st.text(max_size=40),
)


def make_client(fmt: str) -> tuple[TestClient, list[BaseException]]:
    holder: list[BaseException] = []
    app = FastAPI()

    @app.get("/raise")
    def raise_it() -> None:
        raise holder[0]

    setup_exception_handler(app, ErrorHandlerConfig(response_format=fmt))
    return TestClient(app, raise_server_exceptions=False), holder


CLIENTS = {fmt: make_client(fmt) for fmt in ("json", "problem+json")}


def reject_constant(name: str) -> Any:
    """Fail on NaN and Infinity, which strict JSON does not allow."""
    raise ValueError(f"{name} is not JSON")


def check(fmt: str, exc: BaseException) -> dict[str, Any]:
    client, holder = CLIENTS[fmt]
    holder[:] = [exc]
    response = client.get("/raise")
    expected = getattr(exc, "status_code", 500)
    assert response.status_code == expected
    body = json.loads(response.content, parse_constant=reject_constant)
    if fmt == "json":
        assert response.headers["content-type"] == "application/json"
        assert set(body) == JSON_KEYS
        assert body["status_code"] == expected
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert body["status"] == expected
        assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    assert isinstance(body["error_code"], int) and 0 <= body["error_code"] <= 9999
    return body  # type: ignore[no-any-return]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exc=st.one_of(app_errors, http_errors, other_errors), fmt=st.sampled_from(list(CLIENTS)))
def test_any_error_gives_a_valid_body(exc: BaseException, fmt: str) -> None:
    body = check(fmt, exc)
    if not isinstance(exc, (BaseAppException, HTTPException)):
        assert body["error_name"] == "InternalServerError"
        assert body.get("context") is None
        assert (body["detail"] is None) if fmt == "json" else True


@given(value=details)
def test_json_safe_is_strict_json(value: Any) -> None:
    text = json.dumps(json_safe(value), allow_nan=False)
    assert json.loads(text) == json_safe(value)


def test_json_safe_cycles_and_depth() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert json_safe(cyclic) == [None]
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    json.dumps(json_safe(deep))
    assert json_safe(math.inf) is None
