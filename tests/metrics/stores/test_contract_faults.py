"""The store contract under faults: stale retries, fleet-wide health, bad stored data.

Run against the memory store, a real Redis and fakeredis, like ``test_contract.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from fastapi_error_codes.metrics import BatchRejected, MetricsStore
from tests.metrics.stores._batches import batch

MakeStore = Callable[..., MetricsStore]
DAY_MS = 86_400_000


def test_a_stale_unsure_retry_without_a_seq_is_refused(make_store: MakeStore) -> None:
    store = make_store()
    stale = dataclasses.replace(
        batch(4, worker="gone", counts={(0, 301, 404): 50}), age_ms=DAY_MS + 1, unsure=True
    )
    with pytest.raises(BatchRejected, match="forget window"):
        store.apply(stale)
    assert store.read().totals == {}


def test_a_stale_retry_is_applied_when_it_surely_never_arrived(make_store: MakeStore) -> None:
    store = make_store()
    never_sent = dataclasses.replace(
        batch(4, worker="late", counts={(0, 301, 404): 5}), age_ms=DAY_MS + 1, unsure=False
    )
    assert store.apply(never_sent) is True
    assert store.read().totals == {(301, 404): 5}


def test_a_stale_retry_whose_seq_is_kept_is_decided_by_the_seq(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply(batch(1, worker="w", counts={(0, 301, 404): 1}))
    stale = dataclasses.replace(
        batch(1, worker="w", counts={(0, 301, 404): 1}), age_ms=DAY_MS + 1, unsure=True
    )
    assert store.apply(stale) is False  # applied before: the seq says so
    newer = dataclasses.replace(stale, seq=2)
    assert store.apply(newer) is True  # the seq is known and older: safe to apply
    assert store.read().totals == {(301, 404): 2}


def test_health_counters_are_fleet_sums_applied_once(make_store: MakeStore) -> None:
    store = make_store()
    first = dataclasses.replace(batch(1, worker="a"), flush_failures=2, sentry_skipped=5, refused=4)
    assert store.apply(first)
    assert store.apply(first) is False  # a retry adds nothing
    assert store.apply(dataclasses.replace(batch(1, worker="b"), flush_failures=1, refused=3))
    view = store.read()
    assert (view.flush_failures, view.sentry_skipped, view.refused) == (3, 5, 7)


def test_every_health_figure_lands_in_a_field_of_its_own(make_store: MakeStore) -> None:
    store = make_store()
    figures = batch(
        1,
        worker="a",
        counts={(0, 301, 404): 1},
        names={301: "E301"},
        dropped=1,
        events_dropped=2,
        series_folded=3,
    )
    figures = dataclasses.replace(
        figures, flush_failures=4, sentry_skipped=5, refused=6, buffered=7
    )
    assert store.apply(figures)
    view = store.read()
    health = (
        view.dropped,
        view.events_dropped,
        view.series_folded,
        view.flush_failures,
        view.sentry_skipped,
        view.refused,
        view.buffered,
    )
    assert health == (1, 2, 3, 4, 5, 6, 7)
    assert (view.totals, view.names) == ({(301, 404): 1}, {301: "E301"})


def test_a_refused_stale_retry_is_no_auth_refusal(make_store: MakeStore) -> None:
    """The store's own refusals of stale retries are kept apart from requests refused by auth."""
    store = make_store()
    stale = dataclasses.replace(batch(4, worker="gone"), age_ms=DAY_MS + 1, unsure=True, refused=9)
    with pytest.raises(BatchRejected):
        store.apply(stale)
    assert store.read().refused == 0  # neither the refusal nor the batch's figures count


def test_buffered_is_the_sum_of_live_workers_last_reports(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply(dataclasses.replace(batch(1, worker="a"), buffered=4))
    assert store.apply(dataclasses.replace(batch(1, worker="b"), buffered=6))
    assert store.read().buffered == 10
    assert store.apply(dataclasses.replace(batch(2, worker="a"), buffered=0))
    assert store.read().buffered == 6
    store.retire("b")  # a worker that left is no longer counted
    assert store.read().buffered == 0


def test_the_store_clock_is_measured(make_store: MakeStore) -> None:
    store = make_store()
    assert abs(store.sync_clock()) < 5  # the test's clock and the server's agree roughly
    assert store.apply(batch(1, counts={(0, 301, 404): 1}))
    assert abs(store.clock_offset_s) < 5
