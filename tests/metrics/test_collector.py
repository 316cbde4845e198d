"""ErrorMetricsCollector, the facade: reads through the store see the worker's own writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi_error_codes.metrics import ErrorMetricsCollector
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
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


def test_total_events_and_buckets_read_the_fleet(make_config: Callable[..., Any]) -> None:
    """Two workers on one Redis namespace: each sees the other's flushed errors."""
    config = make_config(flush_interval_ms=60_000)
    a, b = ErrorMetricsCollector(config), ErrorMetricsCollector(config)
    try:
        for _ in range(3):
            a.record(301, "UserNotFound", 404, "x")
        b.record(301, "UserNotFound", 404, "x")
        b.record(500, "InternalError", 500, "x")
        b.flush()
        assert a.total_events == a.get_snapshot().total_errors == 5  # a flushes its own first
        assert b.total_events == 5
        (bucket,) = b.get_buckets()
        assert (bucket.total_count, bucket.error_counts) == (5, {301: 4, 500: 1})
        assert bucket.status_counts == {404: 4, 500: 1}
        assert bucket.duration_s == config.bucket_width_s
        assert bucket.start_time.tzinfo is not None  # aware UTC
    finally:
        a.close(timeout=1)
        b.close(timeout=1)


def test_get_buckets_oldest_first_with_our_fields(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000)
    collector.record(301, "UserNotFound", 404, "x")
    (live,) = collector.get_buckets()
    current = int(live.start.timestamp())
    collector.store.apply(
        Batch(
            worker_id="history",
            seq=1,
            counts={(current - 120, 301, 404): 2, (current - 60, 500, 500): 1},
            names={301: "UserNotFound", 500: "InternalError"},
            events=[],
        )
    )
    buckets = collector.get_buckets()
    assert [b.start for b in buckets] == [
        datetime.fromtimestamp(t, timezone.utc) for t in (current - 120, current - 60, current)
    ]
    assert [b.total_errors for b in buckets] == [2, 1, 1]
    assert [b.end_time - b.start_time for b in buckets] == [timedelta(seconds=60)] * 3
    middle_of_live = live.start + timedelta(seconds=30)
    assert [b.is_expired(middle_of_live) for b in buckets] == [True, True, False]
    assert collector.get_snapshot().buckets == buckets


def test_refused_requests_are_a_fleet_wide_sum(make_collector: MakeCollector) -> None:
    first = make_collector(flush_interval_ms=60_000)
    second = make_collector(store=first.store, flush_interval_ms=60_000)
    first.note_refused()
    first.note_refused(2)
    second.note_refused(4)
    assert not first.flusher.running  # counting does no I/O and starts nothing
    assert first.store.read().refused == 0  # nothing sent before a flush
    assert first.flush()
    assert second.flush()
    view = first.read()
    assert view.refused == 7
    assert (view.total, view.sentry_skipped, view.dropped) == (0, 0, 0)
    assert first.flush()
    assert first.read().refused == 7  # taken at drain: sent once
