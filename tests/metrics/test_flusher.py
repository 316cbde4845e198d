"""Flusher: batches in seq order, retried unchanged, poison batches dropped and counted."""

from __future__ import annotations

import logging

import pytest

from fastapi_error_codes.metrics import BatchRejected, MemoryStore, MetricsConfig
from fastapi_error_codes.metrics.models import Batch
from tests.metrics._doubles import FailingStore, PoisonOnce
from tests.metrics.conftest import MakeCollector

CONFIG = MetricsConfig.testing(flush_interval_ms=60_000)


def test_failed_batch_is_retried_before_newer_data(make_collector: MakeCollector) -> None:
    store = FailingStore(CONFIG)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    collector.record(301, "A", 404, "first")
    store.fail_next = 1
    assert not collector.flush()
    collector.record(302, "B", 404, "second")
    assert collector.buffered == 2
    assert collector.flush()
    assert store.applied_seqs == [1, 2]  # the kept batch (seq 1) first, then seq 2
    assert store.read().totals == {(301, 404): 1, (302, 404): 1}


def test_lost_reply_is_not_counted_twice(make_collector: MakeCollector) -> None:
    store = FailingStore(CONFIG)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    for _ in range(5):
        collector.record(301, "A", 404, "x")
    store.fail_next = 1
    store.apply_then_fail = True  # applied, but the caller sees an error
    assert not collector.flush()
    assert collector.flush()
    assert store.read().totals == {(301, 404): 5}


def test_an_os_error_of_a_store_is_retried_like_store_unavailable(
    make_collector: MakeCollector,
) -> None:
    class SocketStore(FailingStore):
        def apply(self, batch: Batch) -> bool:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionRefusedError("store down")  # an OSError, not our own error
            return super().apply(batch)

    store = SocketStore(CONFIG)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    store.fail_next = 1
    assert not collector.flush()
    assert collector.buffered == 1  # kept for the retry, not dropped
    assert collector.flush()
    assert store.read().totals == {(301, 404): 1}
    assert store.read().dropped == 0


def test_one_warning_per_failure_streak(
    make_collector: MakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingStore(CONFIG)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    store.fail_next = 3
    with caplog.at_level(logging.WARNING, logger="fastapi_error_codes.metrics"):
        for _ in range(3):
            assert not collector.flush()
        assert collector.flush()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("flush to the metrics store failed" in m for m in messages) == 1
    assert sum("works again" in m for m in messages) == 1
    assert collector.stats.flush_failures == 3
    assert collector.stats.last_error is None


def test_a_batch_that_can_never_be_stored_is_dropped_and_counted(
    make_collector: MakeCollector,
) -> None:
    collector = make_collector(store=PoisonOnce(CONFIG), flush_interval_ms=60_000)
    for _ in range(5):
        collector.record(301, "A", 404, "x")
    assert not collector.flush()  # dropped, not kept for a retry that can never succeed
    collector.record(302, "B", 404, "y")
    assert collector.flush()  # the worker is not jammed
    view = collector.read()
    assert view.totals == {(302, 404): 1}
    assert view.dropped == 5  # every lost error is visible


def test_close_does_the_final_flush(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    assert collector.close()
    assert collector.store.read().total == 1
    assert collector.close()  # idempotent


def test_close_retires_the_worker_once(make_collector: MakeCollector) -> None:
    collector = make_collector(flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    assert collector.flush()
    assert collector.store.read().workers == 1
    assert collector.close()
    assert collector.store.read().workers == 0  # out of the live set at once
    assert collector.close()


class RejectOnce(MemoryStore):
    """Refuses the next batch for good, saying whether it may have been applied before."""

    def __init__(self, config: MetricsConfig, maybe_applied: bool) -> None:
        super().__init__(config)
        self.maybe_applied = maybe_applied
        self.reject = True

    def apply(self, batch: Batch) -> bool:
        if self.reject:
            self.reject = False
            raise BatchRejected("refused", maybe_applied=self.maybe_applied)
        return super().apply(batch)


@pytest.mark.parametrize("maybe_applied", [False, True])
def test_a_refused_batch_hands_on_its_reports_only_if_surely_never_applied(
    make_collector: MakeCollector, maybe_applied: bool
) -> None:
    """Drops, failures, Sentry skips and auth refusals a refused batch carried: exact, once."""
    store = RejectOnce(CONFIG, maybe_applied)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    collector.note_dropped(2)
    collector.note_sentry_skipped(3)
    collector.note_refused(4)
    assert not collector.flush()  # refused, dropped: its 1 error is counted as dropped
    assert collector.flush()
    view = store.read()
    health = (view.dropped, view.sentry_skipped, view.refused, view.flush_failures)
    if maybe_applied:  # the earlier attempt may have landed with them: not sent again
        assert health == (1, 0, 0, 1)
    else:
        assert health == (1 + 2, 3, 4, 1)


def test_auth_refusals_of_a_batch_whose_reply_was_lost_count_once(
    make_collector: MakeCollector,
) -> None:
    store = FailingStore(CONFIG)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    collector.note_refused(3)
    store.fail_next = 1
    store.apply_then_fail = True  # applied, but the caller sees an error: sent again
    assert not collector.flush()
    assert collector.flush()
    assert store.read().refused == 3


def test_flush_failures_are_reported_with_the_next_applied_batch(
    make_collector: MakeCollector,
) -> None:
    store = FailingStore(CONFIG)
    collector = make_collector(store=store, flush_interval_ms=60_000)
    collector.record(301, "A", 404, "x")
    store.fail_next = 2
    assert not collector.flush()
    assert not collector.flush()
    assert collector.flush()  # the kept batch lands, then one carrying the two failures
    assert store.read().flush_failures == 2
