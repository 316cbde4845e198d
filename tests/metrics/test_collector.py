"""ErrorMetricsCollector, the facade: reads through the store see the worker's own writes."""

from __future__ import annotations

from fastapi_error_codes.metrics.models import OVERFLOW_CODE
from tests.metrics.conftest import MakeCollector


def test_reads_see_own_writes(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000)
    collector.record(301, "UserNotFound", 404, "user not found", path="/users/{id}", method="GET")
    collector.record(301, "UserNotFound", 404, "user not found")
    collector.record(500, "InternalError", 500, "boom")
    assert collector.get_error_counts_by_code() == {301: 2, 500: 1}
    snapshot = collector.get_snapshot()
    assert snapshot.total_errors == 3
    assert snapshot.error_counts == {301: 2, 500: 1}
    assert snapshot.status_counts == {404: 2, 500: 1}
    assert snapshot.error_names == {301: "UserNotFound", 500: "InternalError"}
    assert [e.error_code for e in snapshot.recent_events] == [500, 301, 301]
    event = snapshot.recent_events[-1]
    assert (event.path, event.method, event.message) == ("/users/{id}", "GET", "user not found")
    assert snapshot.bucket_count == 1


def test_store_series_cap_folds_into_overflow(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_series=5)
    for code in range(10):
        collector.record(code, f"E{code}", 400, "x")
        collector.record(code, f"E{code}", 400, "x")
    view = collector.read()
    assert view.total == 20
    assert len(view.totals) == 6
    assert view.totals[(OVERFLOW_CODE, OVERFLOW_CODE)] == 10
    assert view.series_folded == 10


def test_clear_forgets_everything(make_collector: MakeCollector) -> None:
    collector = make_collector()
    collector.record(301, "A", 404, "x")
    collector.flush()
    collector.record(301, "A", 404, "x")
    collector.clear()
    view = collector.read()
    assert (view.total, view.names, view.buckets) == (0, {}, {})
    assert collector.get_recent_events() == []
