"""Odd input to the public record() API and store failures never jam or silently lose counts."""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes.metrics import ErrorMetricsCollector, MemoryStore, MetricsConfig
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
from fastapi_error_codes.metrics.pii import PiiMasker


class PoisonOnce(MemoryStore):
    """Raises a non-transient error (as redis-py does for data it cannot encode) once."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__(config)
        self.poison = True

    def apply(self, batch: Batch) -> bool:
        if self.poison:
            self.poison = False
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return super().apply(batch)


@pytest.fixture
def collector() -> Iterator[ErrorMetricsCollector]:
    c = ErrorMetricsCollector(MetricsConfig.testing(flush_interval_ms=60_000))
    yield c
    c.close(timeout=1)


def test_a_batch_that_can_never_be_stored_is_dropped_and_counted() -> None:
    config = MetricsConfig.testing(flush_interval_ms=60_000)
    store = PoisonOnce(config)
    collector = ErrorMetricsCollector(config, store=store)
    try:
        for _ in range(5):
            collector.record(301, "A", 404, "x")
        assert not collector.flush()  # dropped, not kept for a retry that can never succeed
        collector.record(302, "B", 404, "y")
        assert collector.flush()  # the worker is not jammed
        view = collector.read()
        assert view.totals == {(302, 404): 1}
        assert view.dropped == 5  # every lost error is visible
    finally:
        collector.close(timeout=1)


def test_surrogates_and_odd_names_reach_the_store(collector: ErrorMetricsCollector) -> None:
    collector.record(301, "Bad\ud800Name", 400, "user sent \ud800", detail={"k": "\udfff"})
    collector.record(302, None, 400, "no name")  # type: ignore[arg-type]
    view = collector.read()
    assert view.total == 2
    assert view.names[302] == "None"
    assert {e.error_code for e in collector.get_recent_events()} == {301, 302}


class Status(IntEnum):
    NOT_FOUND = 404


def test_codes_must_be_ints(collector: ErrorMetricsCollector) -> None:
    collector.record(Status.NOT_FOUND, "NotFound", Status.NOT_FOUND, "enum codes count as ints")
    collector.record("E42", "Text", 400, "not an int")  # type: ignore[arg-type]
    view = collector.read()
    assert view.totals == {(404, 404): 1, (OVERFLOW_CODE, OVERFLOW_CODE): 1}
    assert view.series_folded == 1
    assert {e.error_code for e in collector.get_recent_events()} == {404, OVERFLOW_CODE}


def test_a_set_detail_is_bounded_too(collector: ErrorMetricsCollector) -> None:
    collector.record(460, "InvalidIds", 400, "bad ids", detail=set(range(100_000)))
    assert collector.flush()
    (event,) = collector.store.recent_events(1)
    assert len(str(event["d"])) <= 4 * collector.config.max_text_length


def test_long_texts_are_not_remembered_by_the_masker() -> None:
    masker = PiiMasker()
    masker.mask_text("short text")
    masker.mask_text("x" * 100_000)
    assert "short text" in masker._text_cache
    assert all(len(t) <= 256 for t in masker._text_cache)


def test_errors_of_the_librarys_own_endpoints_are_not_counted() -> None:
    app = FastAPI()
    token = "t" * 32
    setup_exception_handler(app, metrics_config=MetricsConfig.testing(auth_token=token))

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("boom")

    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/api/metrics/recent?limit=0", headers=auth).status_code == 422
        assert client.get("/fail").status_code == 500
        summary = client.get("/api/metrics/summary", headers=auth).json()
    assert summary["error_counts"] == {"500": 1}


def test_a_failing_record_is_counted_as_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ErrorMetricsCollector, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("record broke")

    monkeypatch.setattr(ErrorMetricsCollector, "record", broken)
    app = FastAPI()
    setup_exception_handler(app, metrics_config=MetricsConfig.testing())

    @app.get("/x")
    def x() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/x").status_code == 500  # the response is unchanged
        assert client.get("/x").status_code == 500
    view = app.state.metrics_collector.read()
    assert (view.total, view.dropped) == (0, 2)  # not counted, but not silently lost either


def test_config_repr_hides_secrets() -> None:
    config = MetricsConfig(
        redis_url="redis://:hunter2@redis:6379/0",
        auth_token="a-very-secret-token-value",
        sentry_dsn="https://key@sentry.example/1",
    )
    text = repr(config)
    for secret in ("hunter2", "a-very-secret-token-value", "key@sentry"):
        assert secret not in text
