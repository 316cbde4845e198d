"""The wire format: events masked and bounded before they leave the worker, decoded back."""

from __future__ import annotations

import json

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig
from fastapi_error_codes.metrics.buffer import LocalBuffer
from fastapi_error_codes.metrics.models import OVERFLOW_CODE
from fastapi_error_codes.metrics.wire import (
    OVERFLOW_FIELD,
    WireEncoder,
    decode_event,
    decode_field,
    encode_field,
    select_events,
)
from tests.metrics.conftest import MakeCollector


def test_messages_are_masked_before_they_reach_the_store(make_collector: MakeCollector) -> None:
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


def test_error_names_are_cut_before_they_leave_the_worker(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000, max_text_length=32)
    collector.record(301, "N" * 10_000, 404, "x")
    view = collector.read()
    assert view.names == {301: "N" * 32}
    (event,) = collector.get_recent_events()
    assert event.error_name == "N" * 32


def test_surrogates_and_odd_names_reach_the_store(collector: ErrorMetricsCollector) -> None:
    collector.record(301, "Bad\ud800Name", 400, "user sent \ud800", detail={"k": "\udfff"})
    collector.record(302, None, 400, "no name")  # type: ignore[arg-type]
    view = collector.read()
    assert view.total == 2
    assert view.names[302] == "None"
    assert {e.error_code for e in collector.get_recent_events()} == {301, 302}


def test_a_set_detail_is_bounded_too(collector: ErrorMetricsCollector) -> None:
    collector.record(460, "InvalidIds", 400, "bad ids", detail=set(range(100_000)))
    assert collector.flush()
    (event,) = collector.store.recent_events(1)
    assert len(str(event["d"])) <= 4 * collector.config.max_text_length


def test_series_fields_round_trip() -> None:
    for key in [(301, 404), (0, 500), (OVERFLOW_CODE, OVERFLOW_CODE)]:
        assert decode_field(encode_field(*key)) == key
        assert decode_field(encode_field(*key).encode()) == key
    assert encode_field(OVERFLOW_CODE, 404) == OVERFLOW_FIELD


def test_a_drained_buffer_becomes_one_batch_and_its_events_decode() -> None:
    config = MetricsConfig.testing(max_events=100)  # the smallest cap a config allows
    buffer = LocalBuffer(config, on_roll=lambda: None)
    for i in range(101):
        buffer.record(301, "UserNotFound", 404, f"user {i}", {"id": i}, "/users/{id}", "GET")
    drained = buffer.drain()
    encoder = WireEncoder(config)
    encoded = [encoder.event(raw, drained.id_prefix, "w-1") for raw in drained.events]
    batch = encoder.batch(drained, "w-1", 7, encoded)
    assert (batch.worker_id, batch.seq, batch.names) == ("w-1", 7, {301: "UserNotFound"})
    assert list(batch.counts.values()) == [101]
    assert batch.events_dropped == 1  # max_events keeps the newest hundred
    events = [decode_event(json.loads(e)) for e in batch.events]
    assert [e.message for e in events] == [f"user {i}" for i in range(1, 101)]
    assert (events[0].path, events[0].method, events[0].detail) == ("/users/{id}", "GET", {"id": 1})
    assert select_events(reversed(batch.events), 1, 301)[0]["m"] == "user 100"
    assert buffer.drain().recorded == 0  # drained once


def test_the_drained_health_reports_travel_in_the_batch() -> None:
    config = MetricsConfig.testing()
    buffer = LocalBuffer(config, on_roll=lambda: None)
    buffer.note_dropped(1)
    buffer.note_sentry_skipped(2)
    buffer.note_refused(3)
    batch = WireEncoder(config).batch(buffer.drain(), "w-1", 1, [])
    assert (batch.dropped, batch.sentry_skipped, batch.refused) == (1, 2, 3)
    assert batch.counts == {}


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        '{"c": 301}',
        '{"id": "e1", "t": 1.0, "c": "301", "n": "A", "s": 404, "m": "x"}',
        '{"id": "e1", "t": 1.0, "c": true, "n": "A", "s": 404, "m": "x"}',
        '{"id": "e1", "t": 1e300, "c": 301, "n": "A", "s": 404, "m": "x"}',
        '{"id": "e1", "t": 1.0, "c": 301, "n": null, "s": 404, "m": "x"}',
    ],
)
def test_entries_that_are_no_events_are_skipped_and_reported(raw: str | bytes) -> None:
    good = '{"id": "e2", "t": 2.0, "c": 301, "n": "A", "s": 404, "m": "x"}'
    skipped: list[int] = []
    events = select_events([raw, good], 10, None, skipped)
    assert [e["id"] for e in events] == ["e2"]
    assert skipped == [0]
    assert decode_event(events[0]).error_code == 301  # what is kept always decodes
