"""DashboardAPI endpoints through a real app, including bad query parameters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    setup_exception_handler(app, metrics_config=MetricsConfig.testing(flush_interval_ms=60_000))
    collector = app.state.metrics_collector
    for _ in range(5):
        collector.record(301, "UserNotFound", 404, "user missing", path="/users/{id}", method="GET")
    for _ in range(3):
        collector.record(500, "InternalError", 500, "boom", path="/boom", method="POST")
    collector.record(409, "Conflict", 409, "conflict")
    with TestClient(app) as c:
        yield c


def test_summary(client: TestClient) -> None:
    body = client.get("/api/metrics/summary").json()
    assert body["total_errors"] == 9
    assert body["error_counts"] == {"301": 5, "500": 3, "409": 1}
    assert body["status_counts"] == {"404": 5, "500": 3, "409": 1}
    assert body["error_names"]["301"] == "UserNotFound"
    assert body["last_5m"] == 9
    assert body["last_1h"] == 9
    assert body["bucket_count"] == 1
    assert body["workers"] == 1
    assert body["dropped"] == 0


def test_recent(client: TestClient) -> None:
    body = client.get("/api/metrics/recent", params={"limit": 4}).json()
    assert set(body) == {"events", "count", "timestamp"}
    assert body["count"] == 4
    events = body["events"]
    assert [e["error_code"] for e in events] == [409, 500, 500, 500]
    assert set(events[0]) == {
        "error_code",
        "error_name",
        "status_code",
        "message",
        "detail",
        "path",
        "method",
        "timestamp",
        "event_id",
        "request_id",
        "trace_id",
        "sentry_url",
    }
    only = client.get("/api/metrics/recent", params={"error_code": 301}).json()
    assert only["count"] == len(only["events"]) == 5
    assert {e["path"] for e in only["events"]} == {"/users/{id}"}
    default = client.get("/api/metrics/recent").json()  # default limit 100, as the original
    assert default["count"] == 9


def test_by_code(client: TestClient) -> None:
    body = client.get("/api/metrics/by-code/301").json()
    assert body["error_code"] == 301
    assert body["count"] == body["total"] == 5
    assert isinstance(body["timestamp"], str)
    assert body["error_name"] == "UserNotFound"
    assert body["status_counts"] == {"404": 5}
    assert len(body["recent_events"]) == 5


def test_by_code_of_a_code_never_seen_is_a_zero_count(client: TestClient) -> None:
    missing = client.get("/api/metrics/by-code/4242")
    assert missing.status_code == 200  # as the original: count 0, not a 404
    body = missing.json()
    assert (body["error_code"], body["count"], body["total"]) == (4242, 0, 0)
    assert (body["status_counts"], body["recent_events"]) == ({}, [])


def test_by_code_path_parameter_is_named_error_code(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/metrics/by-code/{error_code}" in paths
    (param,) = [
        p
        for p in paths["/api/metrics/by-code/{error_code}"]["get"]["parameters"]
        if p["in"] == "path"
    ]
    assert param["name"] == "error_code"


def test_top_errors(client: TestClient) -> None:
    rows = client.get("/api/metrics/top-errors", params={"limit": 2}).json()
    assert [(r["error_code"], r["count"], r["rank"]) for r in rows] == [(301, 5, 1), (500, 3, 2)]
    assert rows[0]["share"] == pytest.approx(5 / 9, abs=1e-6)
    assert rows[0]["error_name"] == "UserNotFound"


@pytest.mark.parametrize(
    "url",
    [
        "/api/metrics/recent?limit=1000000000",
        "/api/metrics/recent?limit=0",
        "/api/metrics/recent?limit=abc",
        "/api/metrics/top-errors?limit=101",
        "/api/metrics/by-code/99999",
        "/api/metrics/by-code/-2",
        "/api/metrics/by-code/abc",
        "/api/metrics/by-code/301?limit=-1",
    ],
)
def test_bad_parameters_are_422_in_our_body(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 422
    body = response.json()
    assert body["status_code"] == 422
    assert "error_code" in body
