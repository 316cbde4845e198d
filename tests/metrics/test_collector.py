"""ErrorMetricsCollector on the memory store: exactness, buckets, bounds, flush semantics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MemoryStore, MetricsConfig
from fastapi_error_codes.metrics import buffer as buffer_mod
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
from fastapi_error_codes.metrics.stores import StoreUnavailable


@pytest.fixture
def make_collector() -> Iterator[Any]:
    made: list[ErrorMetricsCollector] = []

    def make(**overrides: Any) -> ErrorMetricsCollector:
        config = MetricsConfig.testing(**overrides)
        collector = ErrorMetricsCollector(config)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.close(timeout=1)


class FakeClock:
    """A settable stand-in for time.time() inside the collector module."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_record_returns_unique_event_ids(make_collector: Any) -> None:
    collector = make_collector()
    ids = {collector.record(404, "NotFound", 404, "missing") for _ in range(1000)}
    assert len(ids) == 1000


def test_reads_see_own_writes(make_collector: Any) -> None:
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


def test_exact_counts_with_8_threads_x_10000(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=20, max_events=1000)
    per_thread = 10_000
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()
        code = 300 + index % 4
        for _ in range(per_thread):
            collector.record(code, f"E{code}", 400, "bad")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = collector.get_error_counts_by_code()
    assert counts == {300: 20_000, 301: 20_000, 302: 20_000, 303: 20_000}
    view = collector.read()
    assert view.total == 80_000
    # every record is either a kept event or an event dropped by the bounds, never lost
    kept = len(collector.get_recent_events(limit=100_000))
    assert kept <= 1000
    assert view.events_dropped >= 80_000 - 1000 * (collector.stats.flushes + 1)


def test_bucket_rollover(make_collector: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    collector = make_collector(flush_interval_ms=60_000, collection_interval_ms=60_000)
    clock = FakeClock(1_700_000_000.0)
    monkeypatch.setattr(buffer_mod, "_now", clock)
    monkeypatch.setattr(buffer_mod.time, "time", clock)
    start = int(clock.now) - int(clock.now) % 60
    collector.record(301, "A", 404, "x")
    clock.now += 60
    collector.record(301, "A", 404, "x")
    collector.record(302, "B", 409, "x")
    clock.now += 60
    collector.record(302, "B", 409, "x")
    assert collector.flush()
    view = collector.store.read(window_s=3600)
    assert view.buckets == {
        start: {(301, 404): 1},
        start + 60: {(301, 404): 1, (302, 409): 1},
        start + 120: {(302, 409): 1},
    }
    assert view.totals == {(301, 404): 2, (302, 409): 2}


def test_store_evicts_old_buckets_and_bounds_events(monkeypatch: pytest.MonkeyPatch) -> None:
    config = MetricsConfig.testing(retention_s=120, max_events=50)
    store = MemoryStore(config)
    from fastapi_error_codes.metrics.stores import memory

    clock = FakeClock(1_700_000_040.0)
    monkeypatch.setattr(memory.time, "time", clock)
    for i in range(10):  # ten minutes of batches, one per minute
        bucket = int(clock.now) - int(clock.now) % 60
        store.apply(Batch("w1", i + 1, {(bucket, 301, 404): 1}, {301: "A"}, [f'{{"i":{i}}}'] * 20))
        clock.now += 60
    view = store.read(window_s=3600)
    assert view.totals == {(301, 404): 10}  # totals keep everything
    assert len(view.buckets) <= 4  # retention 120 s: old buckets are gone
    assert len(store.recent_events(1000)) == 50


def test_local_buffer_is_bounded_and_counts_survive(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_pending=100, max_events=100)
    for i in range(200):  # 200 distinct series, cell cap 100: the rest fold
        collector.record(i, f"E{i}", 400, "x")
    assert collector.buffer._cells <= 100
    assert sum(len(cells) for cells in collector.buffer._buckets.values()) <= 101
    assert len(collector.buffer._events) <= 100
    view = collector.read()
    assert view.total == 200
    assert view.totals[(OVERFLOW_CODE, OVERFLOW_CODE)] == 100
    assert view.series_folded == 100
    assert view.events_dropped == 100


def test_store_series_cap_folds_into_overflow(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_series=5)
    for code in range(10):
        collector.record(code, f"E{code}", 400, "x")
        collector.record(code, f"E{code}", 400, "x")
    view = collector.read()
    assert view.total == 20
    assert len(view.totals) == 6
    assert view.totals[(OVERFLOW_CODE, OVERFLOW_CODE)] == 10
    assert view.series_folded == 10


class FailingStore(MemoryStore):
    """A memory store that fails the next *n* applies; optionally after applying (lost reply)."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__(config)
        self.fail_next = 0
        self.apply_then_fail = False
        self.applied_seqs: list[int] = []

    def apply(self, batch: Batch) -> bool:
        if self.fail_next:
            self.fail_next -= 1
            if self.apply_then_fail:
                super().apply(batch)
            raise StoreUnavailable("store down")
        self.applied_seqs.append(batch.seq)
        return super().apply(batch)


def test_failed_batch_is_retried_before_newer_data() -> None:
    config = MetricsConfig.testing(flush_interval_ms=60_000)
    store = FailingStore(config)
    collector = ErrorMetricsCollector(config, store=store)
    try:
        collector.record(301, "A", 404, "first")
        store.fail_next = 1
        assert not collector.flush()
        collector.record(302, "B", 404, "second")
        assert collector.buffered == 2
        assert collector.flush()
        assert store.applied_seqs == [1, 2]  # the kept batch (seq 1) first, then seq 2
        assert store.read().totals == {(301, 404): 1, (302, 404): 1}
    finally:
        collector.close(timeout=1)


def test_lost_reply_is_not_counted_twice() -> None:
    config = MetricsConfig.testing(flush_interval_ms=60_000)
    store = FailingStore(config)
    collector = ErrorMetricsCollector(config, store=store)
    try:
        for _ in range(5):
            collector.record(301, "A", 404, "x")
        store.fail_next = 1
        store.apply_then_fail = True  # applied, but the caller sees an error
        assert not collector.flush()
        assert collector.flush()
        assert store.read().totals == {(301, 404): 5}
    finally:
        collector.close(timeout=1)


def test_messages_are_masked_before_they_reach_the_store(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=60_000)
    collector.record(
        301,
        "A",
        400,
        "mail alice@example.com failed",
        detail={"password": "hunter2", "nested": {"api_key": "sk_live_abc"}},
        path="/login",
    )
    (event,) = collector.get_recent_events()
    text = repr(event)
    assert "alice@example.com" not in text
    assert "hunter2" not in text
    assert "sk_live_abc" not in text


def test_disabled_collector_is_a_noop() -> None:
    collector = ErrorMetricsCollector(MetricsConfig.disabled())
    assert collector.record(1, "A", 400, "x") == ""
    assert collector.get_error_counts_by_code() == {}
    assert not collector.flusher.running


def test_clear_forgets_everything(make_collector: Any) -> None:
    collector = make_collector()
    collector.record(301, "A", 404, "x")
    collector.flush()
    collector.record(301, "A", 404, "x")
    collector.clear()
    view = collector.read()
    assert (view.total, view.names, view.buckets) == (0, {}, {})
    assert collector.get_recent_events() == []


def test_close_does_the_final_flush(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    assert collector.close()
    assert collector.store.read().total == 1
    assert collector.close()  # idempotent


def test_series_cap_holds_in_the_local_buffer(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_series=10)
    for code in range(1000):
        collector.record(code, f"E{code}", 400, "x")
    assert len(collector.buffer._series) == 10
    assert sum(len(cells) for cells in collector.buffer._buckets.values()) <= 11
    view = collector.read()
    assert view.total == 1000
    assert len(view.totals) == 11
    assert view.series_folded == 990


def test_error_names_are_cut_before_they_leave_the_worker(make_collector: Any) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_text_length=32)
    collector.record(301, "N" * 10_000, 404, "x")
    view = collector.read()
    assert view.names == {301: "N" * 32}
    (event,) = collector.get_recent_events()
    assert event.error_name == "N" * 32
