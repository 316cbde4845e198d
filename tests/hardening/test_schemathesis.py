"""Schemathesis against the example app's OpenAPI schema, in-process (ASGI transport).

Positive and negative requests (about 25 per operation, no deadline) for the library's
dashboard endpoints and for the example's own routes. No generated request may get a 5xx, and
every 4xx must carry our error body. ``/boom`` (a deliberate 500) and ``/checkout`` (a
deliberate 503 for the right key) are excluded explicitly.

The dashboard runs three ways: open, behind a bearer token with the token sent, and behind
the token without it (then every answer is a 401 in our body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_error_codes import default_registry
from fastapi_error_codes._bodies import JSON_KEYS
from fastapi_error_codes.metrics import MetricsConfig

pytestmark = pytest.mark.slow

TOKEN = "schemathesis-token-0123456789"
MAX_EXAMPLES = 25

LIBRARY_OPERATIONS = (
    "GET /api/metrics/summary",
    "GET /api/metrics/recent",
    "GET /api/metrics/by-code/{error_code}",
    "GET /api/metrics/top-errors",
    "GET /api/metrics/timeseries",
    "GET /api/metrics/routes",
    "GET /api/metrics/summary.csv",
    "GET /api/metrics/timeseries.csv",
    "GET /api/metrics/routes.csv",
)
APP_OPERATIONS = (
    "GET /",
    "GET /healthz",
    "GET /users/{user_id}",
    "GET /orders/{order_id}",
    "POST /orders/{order_id}/cancel",
    "POST /orders",
)
#: Operations whose 5xx is the example's point, not a bug.
EXCLUDED = {
    "GET /boom": "raises RuntimeError on purpose: the built-in 500",
    "POST /checkout": "answers 503 PaymentServiceUnavailable on purpose for the right key",
}


def _conformance_checks() -> list[Any]:
    """Schemathesis' own response checks, where this version has them (else ours only)."""
    try:
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import (
            content_type_conformance,
            response_schema_conformance,
        )
    except ImportError:  # pragma: no cover - another schemathesis layout
        return []
    return [not_a_server_error, content_type_conformance, response_schema_conformance]


CHECKS = _conformance_checks()


def _load(config: MetricsConfig) -> Any:
    # Imported here, not at collection: the example's declared codes (301 UserNotFound ...)
    # must not sit in the global registry while other tests declare the same codes.
    from tests.examples._registry import example

    app = example("app").create_app(config)
    collector = app.state.metrics_collector
    # Data for by-code/top-errors, including boundary codes and the overflow series (-1).
    for code in (0, 301, 9999, 42, 7):
        collector.record(code, f"E{code}", 404, "seeded")
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def schemas() -> Iterator[dict[str, Any]]:
    saved = default_registry.all()
    yield {
        "open": _load(MetricsConfig.testing(max_series=3)),
        "token": _load(MetricsConfig.testing(max_series=3, auth_token=TOKEN)),
    }
    default_registry.clear()
    for info in saved:
        default_registry.register(info)
    # The ASGI transport keeps each app's lifespan running until exit: end them now.
    from schemathesis.python import asgi

    shutdown = getattr(asgi, "shutdown_lifespans", None)
    if shutdown is not None:
        shutdown()


def _operation(schema: Any, label: str) -> Any:
    method, path = label.split(" ", 1)
    return schema[path][method]


def _assert_our_error_body(response: Any) -> None:
    body = response.json()
    assert tuple(body) == JSON_KEYS, body
    assert body["status_code"] == response.status_code
    assert isinstance(body["error_code"], int)
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["error_name"], str) and body["error_name"]
    assert isinstance(body["timestamp"], str)


def _header(response: Any, name: str) -> str:
    """One header of a schemathesis Response (its headers map names to lists of values)."""
    for key, value in response.headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else str(value)
    raise AssertionError(f"no {name} header in {dict(response.headers)}")


def _fuzz(operation: Any, check: Callable[[Any, Any], None]) -> None:
    strategy = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case, case.call())

    run()


def _no_5xx_and_our_4xx(case: Any, response: Any) -> None:
    assert response.status_code < 500, (case.formatted_path, case.query, response.text[:300])
    if response.status_code >= 400:
        _assert_our_error_body(response)


def test_every_operation_is_fuzzed_or_excluded(schemas: dict[str, Any]) -> None:
    labels = {result.ok().label for result in schemas["open"].get_all_operations()}
    assert labels == {*LIBRARY_OPERATIONS, *APP_OPERATIONS, *EXCLUDED}


@pytest.mark.parametrize("label", LIBRARY_OPERATIONS)
def test_dashboard_open(schemas: dict[str, Any], label: str) -> None:
    def check(case: Any, response: Any) -> None:
        _no_5xx_and_our_4xx(case, response)
        if CHECKS:
            case.validate_response(response, checks=CHECKS)

    _fuzz(_operation(schemas["open"], label), check)


@pytest.mark.parametrize("label", LIBRARY_OPERATIONS)
def test_dashboard_behind_a_token(schemas: dict[str, Any], label: str) -> None:
    operation = _operation(schemas["token"], label)
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    def with_token(case: Any, response: Any) -> None:
        _no_5xx_and_our_4xx(case, response)
        assert response.status_code != 401
        again = case.call(headers=bearer)
        _no_5xx_and_our_4xx(case, again)
        assert again.status_code != 401

    def without_token(case: Any, response: Any) -> None:
        assert response.status_code == 401, (case.formatted_path, response.status_code)
        _assert_our_error_body(response)
        assert _header(response, "www-authenticate").startswith("Bearer")

    def both(case: Any, response: Any) -> None:
        without_token(case, response)
        with_token(case, case.call(headers=bearer))

    _fuzz(operation, both)


@pytest.mark.parametrize("label", APP_OPERATIONS)
def test_example_routes(schemas: dict[str, Any], label: str) -> None:
    _fuzz(_operation(schemas["open"], label), _no_5xx_and_our_4xx)
