"""The original fastapi-error-code's monitoring spellings, working here as a drop-in.

Collector (``total_events``, ``get_buckets()``), the models as importable from
``metrics.collector``, ``TimeBucket(start_time, end_time)`` with ``add_event``/``is_expired``,
``MetricsSnapshot.to_dict()``, ``PrometheusExporter(collector, enabled=..., namespace=...)`` and
``DashboardAPI(collector)`` included as its documentation shows, through a real TestClient.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fastapi_error_codes.metrics import models
from fastapi_error_codes.metrics.collector import (
    ErrorEvent,
    ErrorMetricsCollector,
    MetricsSnapshot,
    TimeBucket,
)
from fastapi_error_codes.metrics.config import MetricsConfig
from fastapi_error_codes.metrics.dashboard import DashboardAPI
from fastapi_error_codes.metrics.prometheus import PrometheusExporter


def _naive_utc_now() -> datetime:
    """What the original's ``datetime.utcnow()`` returns, without its deprecation warning."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@pytest.fixture
def collector() -> Iterator[ErrorMetricsCollector]:
    """A collector built as the original's documentation builds it: ``MetricsConfig()``."""
    made = ErrorMetricsCollector(MetricsConfig())
    yield made
    made.close(timeout=1)


def _record(collector: ErrorMetricsCollector, code: int, times: int = 1, status: int = 0) -> None:
    for i in range(times):
        collector.record(
            error_code=code,
            error_name=f"Error{code}",
            status_code=status or code,
            message=f"error {code} #{i}",
        )


# --- the collector module -------------------------------------------------------------------


def test_models_are_importable_from_the_collector_module() -> None:
    from fastapi_error_codes.metrics import collector as module

    assert (ErrorEvent, MetricsSnapshot, TimeBucket) == (
        models.ErrorEvent,
        models.MetricsSnapshot,
        models.TimeBucket,
    )
    assert {"ErrorMetricsCollector", "ErrorEvent", "MetricsSnapshot", "TimeBucket"} <= set(
        module.__all__
    )


def test_total_events_is_the_snapshot_total(collector: ErrorMetricsCollector) -> None:
    assert collector.total_events == 0
    assert len(collector.get_buckets()) == 0
    _record(collector, 404, 10)
    assert collector.total_events == 10
    _record(collector, 500, 3)
    assert collector.total_events == collector.get_snapshot().total_errors == 13
    collector.clear()
    assert collector.total_events == 0
    assert collector.get_buckets() == []


def test_total_events_counts_every_thread(collector: ErrorMetricsCollector) -> None:
    def work(thread: int) -> None:
        for i in range(100):
            collector.record(400 + i % 100, f"Error{thread}_{i}", 400, f"thread {thread} #{i}")

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(work, range(10)))
    assert collector.total_events == 1000


def test_get_buckets_are_the_snapshots_oldest_first(collector: ErrorMetricsCollector) -> None:
    _record(collector, 404, 2)
    _record(collector, 500)
    buckets = collector.get_buckets()
    assert len(buckets) == 1
    (bucket,) = buckets
    assert isinstance(bucket, TimeBucket)
    assert bucket.total_count == bucket.total_errors == 3
    assert bucket.error_counts == {404: 2, 500: 1}
    assert bucket.status_counts == {404: 2, 500: 1}
    assert bucket.end_time - bucket.start_time == timedelta(seconds=60)
    assert bucket.start_time <= datetime.now(timezone.utc) <= bucket.end_time
    assert not bucket.is_expired(datetime.now(timezone.utc))
    snapshot = collector.get_snapshot()
    assert snapshot.buckets == buckets
    assert snapshot.bucket_count == 1


# --- TimeBucket -----------------------------------------------------------------------------


def test_time_bucket_as_the_original_builds_it() -> None:
    now = _naive_utc_now()
    bucket = TimeBucket(start_time=now, end_time=now + timedelta(minutes=5))
    assert (bucket.start_time, bucket.end_time) == (now, now + timedelta(minutes=5))
    assert (bucket.error_counts, bucket.total_count) == ({}, 0)
    bucket.add_event(
        ErrorEvent(error_code=404, error_name="NotFound", status_code=404, message="x")
    )
    bucket.add_event(ErrorEvent(error_code=500, error_name="Boom", status_code=500, message="x"))
    bucket.add_event(
        ErrorEvent(error_code=404, error_name="NotFound", status_code=404, message="x")
    )
    assert bucket.total_count == 3
    assert bucket.error_counts == {404: 2, 500: 1}
    # Ours, read from the same bucket.
    assert bucket.status_counts == {404: 2, 500: 1}
    assert bucket.total_errors == 3
    assert (bucket.start, bucket.duration_s) == (now, 300)


def test_time_bucket_positional_as_the_original() -> None:
    now = _naive_utc_now()
    bucket = TimeBucket(now, now + timedelta(seconds=10), {404: 4}, 4)
    assert (bucket.error_counts, bucket.total_count, bucket.duration_s) == ({404: 4}, 4, 10)


def test_is_expired_past_the_end_only() -> None:
    now = _naive_utc_now()
    expired = TimeBucket(start_time=now - timedelta(minutes=6), end_time=now - timedelta(minutes=1))
    active = TimeBucket(start_time=now - timedelta(minutes=2), end_time=now + timedelta(minutes=3))
    assert expired.is_expired(now) is True
    assert active.is_expired(now) is False
    assert active.is_expired(active.end_time) is False  # "past", not "at"


def test_is_expired_mixes_naive_and_aware_times_as_utc() -> None:
    aware_end = datetime(2026, 1, 16, 12, 0, tzinfo=timezone.utc)
    ours = TimeBucket(start_time=aware_end - timedelta(minutes=1), end_time=aware_end)
    naive_end = aware_end.replace(tzinfo=None)
    theirs = TimeBucket(start_time=naive_end - timedelta(minutes=1), end_time=naive_end)
    for bucket in (ours, theirs):
        assert bucket.is_expired(naive_end + timedelta(seconds=1)) is True
        assert bucket.is_expired(aware_end + timedelta(seconds=1)) is True
        assert bucket.is_expired(naive_end) is False
        assert bucket.is_expired(aware_end - timedelta(seconds=1)) is False
    # An aware time in another zone is compared as the instant it is.
    plus_two = timezone(timedelta(hours=2))
    assert ours.is_expired(datetime(2026, 1, 16, 14, 0, 1, tzinfo=plus_two)) is True
    assert theirs.is_expired(datetime(2026, 1, 16, 13, 59, 59, tzinfo=plus_two)) is False


# --- MetricsSnapshot.to_dict ------------------------------------------------------------------


def test_snapshot_to_dict_has_the_original_keys() -> None:
    event = ErrorEvent(error_code=404, error_name="NotFound", status_code=404, message="x")
    snapshot = MetricsSnapshot(
        total_errors=100,
        error_counts={404: 50, 500: 30},
        recent_events=[event],
        bucket_count=3,
    )
    data = snapshot.to_dict()
    assert data["total_errors"] == 100
    assert data["error_counts"] == {404: 50, 500: 30}
    assert data["bucket_count"] == 3
    assert data["recent_events"] == [event.to_dict()]
    assert datetime.fromisoformat(data["timestamp"]) == snapshot.timestamp
    assert list(data)[:5] == [
        "total_errors",
        "error_counts",
        "recent_events",
        "bucket_count",
        "timestamp",
    ]
    json.dumps(data)


def test_snapshot_to_dict_of_a_real_collector_is_json_ready(
    collector: ErrorMetricsCollector,
) -> None:
    collector.record(404, "NotFound", 404, "x", detail={"id": 7}, path="/u/{id}", method="GET")
    data = json.loads(json.dumps(collector.get_snapshot().to_dict()))
    assert data["total_errors"] == 1
    assert data["error_counts"] == {"404": 1}
    assert data["status_counts"] == {"404": 1}
    assert data["error_names"] == {"404": "NotFound"}
    assert data["bucket_count"] == len(data["buckets"]) == 1
    assert data["buckets"][0]["total_count"] == 1
    assert data["buckets"][0]["duration_s"] == 60
    (event,) = data["recent_events"]
    assert (event["path"], event["method"], event["detail"]) == ("/u/{id}", "GET", {"id": 7})
    assert {"dropped", "events_dropped", "series_folded", "workers"} <= set(data)


# --- PrometheusExporter -----------------------------------------------------------------------


def _names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_exporter_defaults_as_the_original(collector: ErrorMetricsCollector) -> None:
    exporter = PrometheusExporter(collector)
    assert exporter.collector is collector
    assert exporter.enabled is True
    assert exporter.namespace == "fastapi"
    _record(collector, 404, 5)
    _record(collector, 500, 3)
    text = exporter.generate_metrics()
    assert "fastapi_errors_total 8.0" in text
    assert "# TYPE fastapi_errors_total counter" in text
    assert "# TYPE fastapi_errors_by_code gauge" in text
    assert 'error_code="404"' in text and 'error_code="500"' in text
    assert "fastapi_errors_by_status" in text


def test_disabled_exporter_returns_nothing(collector: ErrorMetricsCollector) -> None:
    exporter = PrometheusExporter(collector, enabled=False)
    assert exporter.enabled is False
    _record(collector, 404)
    assert exporter.generate_metrics() == ""
    body, content_type = exporter.render("application/openmetrics-text; version=1.0.0")
    assert body == b""
    assert content_type.startswith("text/plain")
    exporter.enabled = True  # a plain attribute, as in the original
    assert "fastapi_errors_total 1.0" in exporter.generate_metrics()


def test_custom_namespace_prefixes_every_series(collector: ErrorMetricsCollector) -> None:
    _record(collector, 404)
    names = _names(PrometheusExporter(collector, namespace="myapp").generate_metrics())
    assert {"myapp_errors_total", "myapp_errors_by_code", "myapp_errors_by_status"} <= names
    assert all(n.startswith("myapp_errors") for n in names)
    default = _names(PrometheusExporter(collector).generate_metrics())
    assert {n.replace("fastapi_", "myapp_", 1) for n in default} == names


def test_empty_namespace_means_no_prefix(collector: ErrorMetricsCollector) -> None:
    _record(collector, 404)
    names = _names(PrometheusExporter(collector, namespace="").generate_metrics())
    assert {"errors_total", "errors_by_code", "errors_by_status"} <= names
    assert all(n.startswith("errors") for n in names)


@pytest.mark.parametrize(
    "namespace", ["my-app", "1app", "my app", "app\n", "é", "shop:api", None, 7]
)
def test_invalid_namespace_is_a_value_error(
    collector: ErrorMetricsCollector, namespace: object
) -> None:
    with pytest.raises(ValueError, match="namespace"):
        PrometheusExporter(collector, namespace=namespace)  # type: ignore[arg-type]
    exporter = PrometheusExporter(collector, namespace="ok_app_1")
    with pytest.raises(ValueError, match="namespace"):
        exporter.namespace = namespace  # type: ignore[assignment]
    assert exporter.namespace == "ok_app_1"


# --- DashboardAPI as the original documents it ------------------------------------------------


@pytest.fixture
def app(collector: ErrorMetricsCollector) -> FastAPI:
    dashboard = DashboardAPI(collector)
    assert dashboard.collector is collector
    made = FastAPI()
    made.include_router(dashboard.router, prefix="/api/metrics")
    return made


def test_summary_keeps_the_original_keys(app: FastAPI, collector: ErrorMetricsCollector) -> None:
    with TestClient(app) as client:
        empty = client.get("/api/metrics/summary")
        assert empty.status_code == 200
        assert (empty.json()["total_errors"], empty.json()["error_counts"]) == (0, {})
        _record(collector, 404, 5)
        body = client.get("/api/metrics/summary").json()
    assert {"total_errors", "error_counts", "bucket_count", "timestamp"} <= set(body)
    assert body["total_errors"] == 5
    assert body["error_counts"] == {"404": 5}
    assert body["bucket_count"] == 1
    assert isinstance(body["timestamp"], str)


def test_recent_is_events_with_count(app: FastAPI, collector: ErrorMetricsCollector) -> None:
    _record(collector, 404, 5)
    with TestClient(app) as client:
        response = client.get("/api/metrics/recent?limit=3")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert len(body["events"]) == 3
    assert [e["message"] for e in body["events"]] == [
        "error 404 #4",
        "error 404 #3",
        "error 404 #2",
    ]
    assert isinstance(body["timestamp"], str)


def test_by_code_has_a_count(app: FastAPI, collector: ErrorMetricsCollector) -> None:
    _record(collector, 404)
    with TestClient(app) as client:
        seen = client.get("/api/metrics/by-code/404")
        unseen = client.get("/api/metrics/by-code/777")
    assert seen.status_code == 200
    assert (seen.json()["error_code"], seen.json()["count"]) == (404, 1)
    assert "timestamp" in seen.json()
    assert unseen.status_code == 200
    assert (unseen.json()["error_code"], unseen.json()["count"]) == (777, 0)


def test_top_errors_are_ranked(app: FastAPI, collector: ErrorMetricsCollector) -> None:
    _record(collector, 404, 10)
    _record(collector, 500, 5)
    with TestClient(app) as client:
        response = client.get("/api/metrics/top-errors?limit=5")
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 2
    assert (rows[0]["error_code"], rows[0]["count"], rows[0]["rank"]) == (404, 10, 1)
    assert (rows[1]["error_code"], rows[1]["count"], rows[1]["rank"]) == (500, 5, 2)


def test_the_router_has_no_prefix_of_its_own(collector: ErrorMetricsCollector) -> None:
    paths = {getattr(r, "path", None) for r in DashboardAPI(collector).router.routes}
    assert {"/summary", "/recent", "/by-code/{error_code}", "/top-errors"} <= paths
    prefixed = FastAPI()
    prefixed.include_router(DashboardAPI(collector, prefix="/ops/errors").router)
    with TestClient(prefixed) as client:
        assert client.get("/ops/errors/summary").status_code == 200
        assert client.get("/api/metrics/summary").status_code == 404


def test_time_bucket_keeps_our_earlier_constructor_too() -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ours = TimeBucket(start, 60, {301: 2, 302: 1}, {404: 3})
    keyword = TimeBucket(start=start, duration_s=60, error_counts={301: 2, 302: 1})
    original = TimeBucket(start_time=start, end_time=start + timedelta(seconds=60))
    assert (ours.start, ours.duration_s, ours.total_errors, ours.status_counts) == (
        start,
        60,
        3,
        {404: 3},
    )
    assert keyword.end_time == original.end_time == start + timedelta(seconds=60)
    assert keyword.total_count == 3  # derived from error_counts when not given
    assert original.total_count == 0
    with pytest.raises(TypeError, match="end_time"):
        TimeBucket(start_time=start)
