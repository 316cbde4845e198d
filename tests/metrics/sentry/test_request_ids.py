"""The request id reaches the Sentry event, and the Sentry event id the series' exemplar."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig
from tests.metrics.sentry._helpers import capture_into
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport

TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_a_captured_error_links_request_id_trace_id_and_sentry_event(
    transport: CapturingTransport,
) -> None:
    app = FastAPI()
    config = MetricsConfig.testing(sentry_enabled=True, sentry_dsn=FAKE_DSN)
    setup_exception_handler(app, metrics_config=config)

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        capture_into(transport)
        response = client.get(
            "/fail",
            headers={"X-Request-ID": "req-500", "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"},
        )
        text = client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        ).text
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-500"
    (event,) = transport.events
    assert event["tags"]["request_id"] == "req-500"
    assert event["contexts"]["error"]["request_id"] == "req-500"
    assert event["contexts"]["error"]["trace_id"] == TRACE
    (exemplar,) = [
        s.exemplar
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fastapi_errors_by_route_total"
    ]
    assert exemplar is not None
    assert exemplar.labels == {
        "trace_id": TRACE,
        "request_id": "req-500",
        "sentry_id": event["event_id"],
    }
