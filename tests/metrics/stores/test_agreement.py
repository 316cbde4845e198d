"""The stores agree: one seeded random history of batches, the same reads from every store.

Several workers send batches (some seqs skipped), retry them, deliver old ones late and
retire; the memory store, a real-Redis store and a fakeredis store get the same steps and
must answer every apply() and every read alike: buckets of the present, the past, past the
retention and from a clock running ahead; the overflow code with any status; windows that
are not whole buckets; limits from 0 to past max_events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from fastapi_error_codes.metrics import MetricsStore
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
from tests.metrics.stores._batches import WIDTH, batch, current_bucket, event

KINDS = ("memory", "redis", "fakeredis")
CONFIG: dict[str, Any] = {"max_series": 6, "max_events": 100, "retention_s": 10 * WIDTH}
WORKERS = ("w1", "w2", "w3", "w4")

Step = tuple[str, Any]  # ("apply", Batch) or ("retire", worker id)


def random_history(rng: random.Random, now: int, steps: int = 80) -> list[Step]:
    """New batches, retries and late duplicates of sent ones, and retirements, interleaved."""
    # the current bucket, recent ones, one past the retention (totals only), totals only, and
    # one from a worker whose clock runs ten minutes ahead (totals only too)
    starts = [now, now - WIDTH, now - 2 * WIDTH, now - 5 * WIDTH, now - 60 * WIDTH, 0]
    starts.append(now + 10 * WIDTH)
    sent: dict[str, list[Batch]] = {w: [] for w in WORKERS}
    history: list[Step] = []
    numbered = 0
    for _ in range(steps):
        worker = rng.choice(WORKERS)
        roll = rng.random()
        if roll < 0.05:
            history.append(("retire", worker))
            continue
        if sent[worker] and roll < 0.25:
            history.append(("apply", rng.choice(sent[worker])))  # a retry or a late duplicate
            continue
        seq = (sent[worker][-1].seq if sent[worker] else 0) + rng.choice((1, 1, 1, 3))
        counts: dict[tuple[int, int, int], int] = {}
        for _ in range(rng.randint(0, 4)):
            key = (rng.choice(starts), rng.randint(1, 8), rng.choice((400, 404, 500)))
            counts[key] = rng.randint(1, 5)
        if rng.random() < 0.1:  # the worker folded some itself (any status: still overflow)
            status = rng.choice((OVERFLOW_CODE, 404))
            counts[(rng.choice(starts), OVERFLOW_CODE, status)] = rng.randint(1, 3)
        codes = {code for _, code, _ in counts if code != OVERFLOW_CODE} | {rng.randint(1, 10)}
        events = []
        for _ in range(rng.randint(0, 5)):
            numbered += 1
            events.append(event(rng.randint(1, 4), numbered, worker=worker))
        new = batch(
            seq,
            worker,
            counts,
            names={code: f"E{code}-{worker}-{seq}" for code in codes},
            events=events,
            dropped=rng.choice((0, 0, 1)),
            events_dropped=rng.choice((0, 0, 2)),
            series_folded=rng.choice((0, 0, 0, 1)),
        )
        sent[worker].append(new)
        history.append(("apply", new))
    return history


def observe(store: MetricsStore) -> dict[str, Any]:
    """Everything a reader can see, except readings of each store's own clock.

    ``created_s`` and ``oldest_flush_age_s`` are times each store takes itself; only whether
    there is one is compared.
    """
    view = store.read(window_s=CONFIG["retention_s"])
    return {
        "totals": view.totals,
        "names": view.names,
        "buckets": view.buckets,
        "windows": {w: store.read(window_s=w).buckets for w in (0, 1, WIDTH + 1, 3 * WIDTH - 7)},
        "created": view.created_s is None,
        "counters": (view.dropped, view.events_dropped, view.series_folded),
        "workers": (view.workers, view.oldest_flush_age_s is None),
        "events": {
            (limit, code): store.recent_events(limit, error_code=code)
            for limit in (0, 1, 7, CONFIG["max_events"], CONFIG["max_events"] + 5)
            for code in (None, 1, 2, 3, 4, 99)
        },
    }


@pytest.mark.redis
@pytest.mark.parametrize("seed", range(8))
def test_the_stores_agree_on_a_random_history(
    open_store: Callable[..., MetricsStore], seed: int
) -> None:
    stores = {kind: open_store(kind, **CONFIG) for kind in KINDS}
    history = random_history(random.Random(seed), now=current_bucket())
    refused = 0
    for action, arg in history:
        if action == "retire":
            for store in stores.values():
                store.retire(arg)
            continue
        applied = {kind: store.apply(arg) for kind, store in stores.items()}
        assert len(set(applied.values())) == 1, (arg, applied)
        refused += not applied["memory"]
    seen = {kind: observe(store) for kind, store in stores.items()}
    assert seen["redis"] == seen["memory"]
    assert seen["fakeredis"] == seen["memory"]
    # the history did exercise what it is meant to: duplicates, the series cap, the event cap
    assert refused > 0
    assert len([key for key in seen["memory"]["totals"] if key[0] != OVERFLOW_CODE]) == 6
    assert len(seen["memory"]["events"][(CONFIG["max_events"], None)]) == CONFIG["max_events"]
