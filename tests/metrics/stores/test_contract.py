"""The MetricsStore contract: the same assertions for the memory, Redis and fakeredis stores.

Every test runs once per kind of store and states what a user can rely on, whichever store
is configured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fastapi_error_codes.metrics import MetricsStore
from fastapi_error_codes.metrics.models import OVERFLOW_CODE
from fastapi_error_codes.metrics.wire import FILTER_SCAN
from tests.metrics.stores._batches import WIDTH, batch, current_bucket, event, ids

MakeStore = Callable[..., MetricsStore]
OVERFLOW = (OVERFLOW_CODE, OVERFLOW_CODE)


# ---------------------------------------------------------------- exactly once per seq


def test_a_batch_counts_once_per_seq(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()
    counts = {(now, 301, 404): 3, (now, 500, 500): 1}
    first = batch(1, counts=counts, names={301: "UserNotFound"}, events=[event(301, 1)], dropped=1)
    assert store.apply(first) is True
    assert store.apply(first) is False
    assert store.apply(batch(1)) is False  # any batch with an applied seq is refused
    view = store.read(window_s=WIDTH)
    assert view.totals == {(301, 404): 3, (500, 500): 1}
    assert view.buckets == {now: {(301, 404): 3, (500, 500): 1}}
    assert view.dropped == 1
    assert ids(store.recent_events(10)) == ["e1"]

    assert store.apply(batch(2, counts=counts)) is True
    assert store.read().totals == {(301, 404): 6, (500, 500): 2}


def test_a_lower_seq_is_ignored(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply(batch(5, counts={(0, 301, 404): 1}))
    assert store.apply(batch(3, counts={(0, 301, 404): 10}, events=[event(301, 3)])) is False
    assert store.apply(batch(5, counts={(0, 301, 404): 10})) is False
    assert store.apply(batch(6, counts={(0, 301, 404): 1}))
    assert store.read().totals == {(301, 404): 2}
    assert store.recent_events(10) == []


def test_workers_have_independent_seqs(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply(batch(7, worker="w1", counts={(0, 301, 404): 1}))
    assert store.apply(batch(1, worker="w2", counts={(0, 301, 404): 1}))
    assert store.apply(batch(1, worker="w2", counts={(0, 301, 404): 1})) is False
    assert store.apply(batch(1, worker="w1", counts={(0, 301, 404): 1})) is False
    assert store.apply(batch(2, worker="w2", counts={(0, 301, 404): 1}))
    assert store.read().totals == {(301, 404): 3}


# ---------------------------------------------------------------- series cap and names


def test_existing_series_keep_counting_past_the_cap_and_new_ones_fold(
    make_store: MakeStore,
) -> None:
    store = make_store(max_series=3)
    now = current_bucket()
    three = {(now, 1, 400): 1, (now, 2, 400): 1, (0, 3, 400): 1}
    assert store.apply(batch(1, worker="w1", counts=three))
    past_cap = {
        (now, 1, 400): 5,  # an existing series keeps its own count past the cap
        (now, 4, 400): 2,  # new series: folded, fleet-wide (another worker filled the cap)
        (0, 5, 500): 3,
        (now, OVERFLOW_CODE, OVERFLOW_CODE): 1,  # folded by the worker itself
    }
    assert store.apply(batch(1, worker="w2", counts=past_cap, series_folded=7))
    view = store.read(window_s=WIDTH)
    assert view.totals == {(1, 400): 6, (2, 400): 1, (3, 400): 1, OVERFLOW: 2 + 3 + 1}
    assert view.buckets == {now: {(1, 400): 6, (2, 400): 1, OVERFLOW: 2 + 1}}
    assert view.series_folded == 2 + 3 + 7  # the store's folded deltas + the batch's own
    # an overflow series is not a series of its own: the cap still admits nothing new
    assert store.apply(batch(2, worker="w2", counts={(0, 6, 400): 1}))
    assert store.read().totals[OVERFLOW] == 7


def test_every_count_of_the_overflow_code_is_the_overflow_series(make_store: MakeStore) -> None:
    # collector.record(-1, ..., 404, ...) sends (bucket, -1, 404): the stored field of any
    # OVERFLOW_CODE count is "other:other", whatever its status
    store = make_store(max_series=1)
    assert store.apply(batch(1, counts={(0, OVERFLOW_CODE, 404): 2}, names={-1: "Other"}))
    assert store.apply(batch(2, counts={(0, 1, 400): 1}))  # the one slot is still free
    view = store.read()
    assert view.totals == {OVERFLOW: 2, (1, 400): 1}
    assert view.names == {}
    assert view.series_folded == 0


def test_names_are_kept_only_for_codes_with_a_series_of_their_own(make_store: MakeStore) -> None:
    store = make_store(max_series=2)
    first = batch(
        1,
        counts={(0, 1, 400): 1, (0, 2, 400): 1},
        names={1: "One", 2: "Two", 9: "NoCounts"},  # 9 has no series at all
    )
    assert store.apply(first)
    second = batch(
        2,
        counts={(0, 1, 400): 1, (0, 1, 503): 1, (0, 3, 400): 1},  # 1:503 and 3:400 fold
        names={1: "OneRenamed", 3: "Three"},
    )
    assert store.apply(second)
    assert store.apply(batch(3, counts={(0, 3, 400): 1}, names={2: "TwoWithoutCounts"}))
    view = store.read()
    assert view.names == {1: "OneRenamed", 2: "Two"}
    assert view.totals == {(1, 400): 2, (2, 400): 1, OVERFLOW: 3}


# ---------------------------------------------------------------- events


def test_recent_events_are_newest_first_within_and_across_batches(make_store: MakeStore) -> None:
    store = make_store(max_events=100)
    assert store.apply(batch(1, events=[event(1, 1), event(2, 2)]))
    assert store.apply(batch(2, events=[event(1, 3), event(3, 4), event(1, 5)]))
    assert ids(store.recent_events(10)) == ["e5", "e4", "e3", "e2", "e1"]
    assert ids(store.recent_events(2)) == ["e5", "e4"]
    assert store.recent_events(1) == [json.loads(event(1, 5))]  # the wire dict, as written


def test_recent_events_filter_by_error_code(make_store: MakeStore) -> None:
    store = make_store(max_events=100)
    assert store.apply(batch(1, events=[event(1, 1), event(2, 2), event(1, 3)]))
    assert store.apply(batch(2, events=[event(3, 4), event(1, 5)]))
    assert ids(store.recent_events(10, error_code=1)) == ["e5", "e3", "e1"]
    assert ids(store.recent_events(2, error_code=1)) == ["e5", "e3"]
    assert ids(store.recent_events(10, error_code=2)) == ["e2"]
    assert store.recent_events(10, error_code=99) == []


def test_the_newest_max_events_are_kept(make_store: MakeStore) -> None:
    store = make_store(max_events=100)  # the smallest cap a config allows
    for seq in range(1, 4):
        assert store.apply(batch(seq, events=[event(seq % 2, 40 * seq + i) for i in range(40)]))
    # > cap at once
    assert store.apply(batch(4, events=[event(7, n) for n in range(1000, 1108)]))
    assert ids(store.recent_events(5)) == ["e1107", "e1106", "e1105", "e1104", "e1103"]
    assert ids(store.recent_events(100)) == [f"e{n}" for n in range(1107, 1007, -1)]
    assert ids(store.recent_events(5, error_code=1)) == []  # older than the newest 100


def test_never_more_than_max_events_are_visible(make_store: MakeStore) -> None:
    # The contract: recent_events returns at most min(limit, max_events) events, the newest.
    # Redis may *hold* more (approximate trimming is cheaper); they must not be visible.
    store = make_store(max_events=100)  # the smallest cap a config allows
    for seq in range(1, 4):
        assert store.apply(batch(seq, events=[event(1, 40 * seq + i) for i in range(40)]))
    assert ids(store.recent_events(1000)) == [f"e{n}" for n in range(159, 59, -1)]
    assert len(store.recent_events(1000, error_code=1)) == 100


def test_a_filter_looks_through_the_newest_events_only(make_store: MakeStore) -> None:
    # The cost of a filtered read is bounded: it looks through the newest
    # max(limit, FILTER_SCAN) kept events, in every store.
    store = make_store(max_events=1500)
    assert store.apply(batch(1, events=[event(7, 0)]))
    assert store.apply(batch(2, events=[event(8, n) for n in range(1, FILTER_SCAN)]))
    assert ids(store.recent_events(5, error_code=7)) == ["e0"]  # the FILTER_SCAN-th newest
    assert store.apply(batch(3, events=[event(8, FILTER_SCAN)]))
    assert store.recent_events(5, error_code=7) == []  # one newer event pushed it out
    assert ids(store.recent_events(FILTER_SCAN + 1, error_code=7)) == ["e0"]


def test_a_limit_of_zero_returns_no_events(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply(batch(1, events=[event(1, 1), event(1, 2)]))
    assert store.recent_events(0) == []
    assert store.recent_events(0, error_code=1) == []


# ---------------------------------------------------------------- counters and workers


def test_drop_counters_add_up(make_store: MakeStore) -> None:
    store = make_store()
    view = store.read()
    assert (view.dropped, view.events_dropped, view.series_folded) == (0, 0, 0)
    first = batch(1, worker="w1", dropped=2, events_dropped=3, series_folded=1)
    assert store.apply(first)
    assert store.apply(first) is False  # a retry adds nothing
    assert store.apply(batch(1, worker="w2", dropped=1, events_dropped=4))
    assert store.apply(batch(2, worker="w2", events_dropped=1, series_folded=2))
    view = store.read()
    assert (view.dropped, view.events_dropped, view.series_folded) == (3, 8, 3)
    assert view.totals == {}


def test_live_workers_and_the_oldest_flush(make_store: MakeStore) -> None:
    store = make_store()
    view = store.read()
    assert (view.workers, view.oldest_flush_age_s) == (0, None)
    assert store.apply(batch(1, worker="w1"))  # a heartbeat-only batch still counts
    assert store.apply(batch(1, worker="w2", counts={(0, 1, 400): 1}))
    view = store.read()
    assert view.workers == 2
    assert view.oldest_flush_age_s is not None
    assert 0 <= view.oldest_flush_age_s < 5


def test_retire_takes_a_worker_out_at_once_and_keeps_its_seq(make_store: MakeStore) -> None:
    store = make_store()
    last = batch(3, worker="w1", counts={(0, 1, 400): 2}, events=[event(1, 1)])
    assert store.apply(last)
    assert store.apply(batch(1, worker="w2", counts={(0, 1, 400): 1}))
    assert store.read().workers == 2
    store.retire("w1")
    assert store.read().workers == 1  # at once, not after the live window
    assert store.apply(last) is False  # a late retry of its last batch is still deduplicated
    assert store.read().totals == {(1, 400): 3}
    assert ids(store.recent_events(10)) == ["e1"]


def test_retiring_an_unknown_worker_changes_nothing(make_store: MakeStore) -> None:
    store = make_store()
    store.retire("ghost")  # an empty store
    assert store.apply(batch(1, worker="w1"))
    store.retire("ghost")
    assert store.read().workers == 1
    assert store.apply(batch(1, worker="ghost", counts={(0, 1, 400): 1}))  # no seq was kept
    assert store.read().workers == 2


# ---------------------------------------------------------------- time windows and buckets


def test_read_returns_the_buckets_of_the_window_keyed_by_start(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()
    counts = {
        (now, 1, 400): 1,
        (now - WIDTH, 1, 400): 2,
        (now - WIDTH, 2, 500): 3,
        (now - 3 * WIDTH, 1, 400): 4,
        (now - 10 * WIDTH, 1, 400): 5,
        (0, 1, 400): 6,  # bucket 0: totals only
    }
    assert store.apply(batch(1, counts=counts))
    assert store.read(window_s=0).buckets == {}
    assert store.read(window_s=WIDTH).buckets == {
        now: {(1, 400): 1},
        now - WIDTH: {(1, 400): 2, (2, 500): 3},
    }
    assert set(store.read(window_s=2 * WIDTH).buckets) == {now, now - WIDTH}
    assert set(store.read(window_s=3 * WIDTH).buckets) == {now, now - WIDTH, now - 3 * WIDTH}
    view = store.read(window_s=24 * 3600)
    assert view.buckets[now - 10 * WIDTH] == {(1, 400): 5}
    assert 0 not in view.buckets
    assert view.totals == {(1, 400): 18, (2, 500): 3}


def test_a_window_covers_every_bucket_it_overlaps(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()  # at least 3 s before the next bucket
    counts = {(now, 1, 400): 1, (now - WIDTH, 1, 400): 2, (now - 2 * WIDTH, 1, 400): 3}
    assert store.apply(batch(1, counts=counts))
    # The last 2 x WIDTH - 1 seconds start inside bucket now - 2 x WIDTH.
    assert set(store.read(window_s=2 * WIDTH - 1).buckets) == {now, now - WIDTH, now - 2 * WIDTH}


def test_a_bucket_from_the_future_counts_in_totals_but_in_no_window(
    make_store: MakeStore,
) -> None:
    store = make_store()
    now = current_bucket()
    skewed = now + 10 * WIDTH  # a worker whose clock is 10 minutes ahead
    assert store.apply(batch(1, counts={(now, 1, 400): 1, (skewed, 1, 400): 2}))
    assert store.read().totals == {(1, 400): 3}
    assert store.read(window_s=0).buckets == {}
    assert store.read(window_s=3600).buckets == {now: {(1, 400): 1}}


def test_a_bucket_past_the_retention_when_it_lands_counts_in_totals_only(
    make_store: MakeStore,
) -> None:
    store = make_store(retention_s=2 * WIDTH)
    now = current_bucket()
    last_kept = now - 2 * WIDTH  # expires at start + width + retention = now + WIDTH
    first_lost = now - 3 * WIDTH  # would have expired at now: totals only
    counts = {(last_kept, 1, 400): 1, (first_lost, 1, 400): 2, (now - 3600, 2, 400): 4}
    assert store.apply(batch(1, counts=counts))
    view = store.read(window_s=3600)
    assert view.buckets == {last_kept: {(1, 400): 1}}
    assert view.totals == {(1, 400): 3, (2, 400): 4}


def test_a_bucket_leaves_every_window_when_it_expires(make_store: MakeStore) -> None:
    store = make_store(collection_interval_ms=1000, retention_s=60)  # 1 s buckets
    start = int(time.time()) - 59  # expires at start + 1 + 60: in one to two seconds
    expires = start + 1 + 60
    assert store.apply(batch(1, counts={(start, 1, 400): 1}))
    assert set(store.read(window_s=120).buckets) == {start}
    time.sleep(max(0.0, expires - time.time()) + 0.2)
    assert store.read(window_s=120).buckets == {}
    assert store.read().totals == {(1, 400): 1}


# ---------------------------------------------------------------- clear and created_s


def test_clear_forgets_everything(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()
    full = batch(
        1,
        counts={(now, 1, 400): 1, (0, 2, 500): 1},
        names={1: "One", 2: "Two"},
        events=[event(1, 1)],
        dropped=1,
        events_dropped=1,
        series_folded=1,
    )
    assert store.apply(full)
    store.clear()
    view = store.read(window_s=3600)
    assert (view.totals, view.names, view.buckets) == ({}, {}, {})
    assert (view.dropped, view.events_dropped, view.series_folded) == (0, 0, 0)
    assert (view.workers, view.oldest_flush_age_s) == (0, None)
    assert store.recent_events(10) == []
    assert store.apply(full) is True  # seqs are forgotten too
    assert store.read().totals == {(1, 400): 1, (2, 500): 1}


def test_created_s_is_set_by_the_first_apply(make_store: MakeStore) -> None:
    store = make_store()
    assert store.read().created_s is None
    before = time.time()
    assert store.apply(batch(1))
    after = time.time()
    created = store.read().created_s
    assert created is not None
    assert before - 0.001 <= created <= after  # Redis keeps milliseconds
    time.sleep(0.01)
    assert store.apply(batch(2, counts={(0, 1, 400): 1}))
    assert store.read().created_s == created


def test_created_s_starts_again_after_clear(make_store: MakeStore) -> None:
    store = make_store()
    assert store.apply(batch(1))
    store.clear()
    assert store.read().created_s is None
    time.sleep(0.01)
    before = time.time()
    assert store.apply(batch(1))
    created = store.read().created_s
    assert created is not None
    assert created >= before - 0.001
