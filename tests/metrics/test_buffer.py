"""LocalBuffer, the hot path: exact counts, buckets, bounds, ids and odd input."""

from __future__ import annotations

import threading
from enum import IntEnum

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig
from fastapi_error_codes.metrics import buffer as buffer_mod
from fastapi_error_codes.metrics.models import OVERFLOW_CODE
from tests.metrics._doubles import FakeClock
from tests.metrics.conftest import MakeCollector


def test_record_returns_unique_event_ids(make_collector: MakeCollector) -> None:
    collector = make_collector()
    ids = {collector.record(404, "NotFound", 404, "missing") for _ in range(1000)}
    assert len(ids) == 1000


def test_exact_counts_with_8_threads_x_10000(make_collector: MakeCollector) -> None:
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


def test_bucket_rollover(make_collector: MakeCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(1_700_000_000.0)
    collector = make_collector(flush_interval_ms=60_000, collection_interval_ms=60_000, clock=clock)
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


def test_local_buffer_is_bounded_and_counts_survive(make_collector: MakeCollector) -> None:
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


def test_series_cap_holds_in_the_local_buffer(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_series=10)
    for code in range(1000):
        collector.record(code, f"E{code}", 400, "x")
    assert len(collector.buffer._series) == 10
    assert sum(len(cells) for cells in collector.buffer._buckets.values()) <= 11
    view = collector.read()
    assert view.total == 1000
    assert len(view.totals) == 11
    assert view.series_folded == 990


def test_disabled_collector_is_a_noop() -> None:
    collector = ErrorMetricsCollector(MetricsConfig.disabled())
    assert collector.record(1, "A", 400, "x") == ""
    assert collector.get_error_counts_by_code() == {}
    assert not collector.flusher.running


class Status(IntEnum):
    NOT_FOUND = 404


def test_codes_must_be_ints(collector: ErrorMetricsCollector) -> None:
    collector.record(Status.NOT_FOUND, "NotFound", Status.NOT_FOUND, "enum codes count as ints")
    collector.record("E42", "Text", 400, "not an int")  # type: ignore[arg-type]
    view = collector.read()
    assert view.totals == {(404, 404): 1, (OVERFLOW_CODE, OVERFLOW_CODE): 1}
    assert view.series_folded == 1
    assert {e.error_code for e in collector.get_recent_events()} == {404, OVERFLOW_CODE}


def test_refused_requests_are_counted_from_any_thread_and_taken_at_drain() -> None:
    buffer = buffer_mod.LocalBuffer(MetricsConfig.testing(), on_roll=lambda: None)
    assert not buffer.has_reports

    def refuse() -> None:
        for _ in range(1000):
            buffer.note_refused()

    threads = [threading.Thread(target=refuse) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buffer.note_refused(5)
    assert buffer.has_reports  # a report to flush, with no error counted
    assert buffer.is_empty
    drained = buffer.drain()
    assert (drained.refused, drained.sentry_skipped, drained.recorded) == (8005, 0, 0)
    assert buffer.drain().refused == 0  # taken once
    assert not buffer.has_reports


# --- request counting ---------------------------------------------------------------------------


def _buffer(**overrides: object) -> buffer_mod.LocalBuffer:
    config = MetricsConfig.testing(**overrides)  # type: ignore[arg-type]
    return buffer_mod.LocalBuffer(config, on_roll=lambda: None)


def test_requests_and_errors_by_route_are_counted_per_bucket() -> None:
    buf = _buffer()
    for _ in range(3):
        buf.count_request("/a", "GET", 200)
    buf.count_request("/a", "GET", 404, (404, "NotFound", 404), ("r1", None, None))
    buf.count_request("/a", "GET", 404, (404, "NotFound", 404), ("r2", "t" * 32, "s" * 32))
    drained = buf.drain()
    (cells,) = drained.routes.values()
    assert cells == {
        ("/a", "GET", 2): 3,
        ("/a", "GET", 4): 2,
        (404, "NotFound", 404, "/a", "GET"): 2,
    }
    ((key, exemplar),) = drained.exemplars.items()
    assert key == (404, "NotFound", 404, "/a", "GET") and exemplar[:3] == ("r2", "t" * 32, "s" * 32)
    assert drained.recorded == 0  # requests are not errors of the specification's series
    assert buf.is_empty


def test_unusual_methods_are_one_series_and_take_no_room() -> None:
    buf = _buffer(max_pending=100)
    for i in range(500):
        buf.count_request("/a", f"M{i}", 404, (404, "NotFound", 404))
    buf.record(1234, "Kept", 400, "still counted under its own code")
    drained = buf.drain()
    (cells,) = drained.routes.values()
    assert cells == {("/a", "other", 4): 500, (404, "NotFound", 404, "/a", "other"): 500}
    assert list(drained.buckets.values()) == [{(1234, 400): 1}]
    assert drained.route_folded == 0


def test_each_route_family_has_its_own_cap() -> None:
    buf = _buffer(max_route_series=2)
    buf.count_request("/a", "GET", 200)
    buf.count_request("/b", "GET", 200)
    buf.count_request("/c", "GET", 500, (500, "Boom", 500), ("r", None, None))
    buf.count_request("/d", "GET", 503, (503, "Down", 503))
    buf.count_request("/e", "GET", 502, (502, "Bad", 502), ("r", None, None))
    drained = buf.drain()
    (cells,) = drained.routes.values()
    assert cells == {
        ("/a", "GET", 2): 1,
        ("/b", "GET", 2): 1,
        ("other", "other", 5): 3,  # the third request series on folded, its class kept
        (500, "Boom", 500, "/c", "GET"): 1,  # the error family has room of its own
        (503, "Down", 503, "/d", "GET"): 1,
        (OVERFLOW_CODE, "other", 502, "other", "other"): 1,
    }
    assert drained.route_folded == 4
    assert set(drained.exemplars) == {(500, "Boom", 500, "/c", "GET")}  # never of a folded one
