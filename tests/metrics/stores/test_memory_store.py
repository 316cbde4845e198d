"""MemoryStore specifics: eviction under a controlled clock (the contract suite covers the rest)."""

from __future__ import annotations

import pytest

from fastapi_error_codes.metrics import MemoryStore, MetricsConfig
from fastapi_error_codes.metrics.models import Batch
from fastapi_error_codes.metrics.stores import memory
from tests.metrics._doubles import FakeClock
from tests.metrics.stores._batches import event


def test_store_evicts_old_buckets_and_bounds_events(monkeypatch: pytest.MonkeyPatch) -> None:
    config = MetricsConfig.testing(retention_s=120, max_events=100)
    store = MemoryStore(config)

    clock = FakeClock(1_700_000_040.0)
    monkeypatch.setattr(memory.time, "time", clock)
    for i in range(10):  # ten minutes of batches, one per minute
        bucket = int(clock.now) - int(clock.now) % 60
        store.apply(
            Batch(
                "w1",
                i + 1,
                {(bucket, 301, 404): 1},
                {301: "A"},
                [event(301, i * 20 + k) for k in range(20)],
            )
        )
        clock.now += 60
    view = store.read(window_s=3600)
    assert view.totals == {(301, 404): 10}  # totals keep everything
    assert len(view.buckets) <= 4  # retention 120 s: old buckets are gone
    assert len(store.recent_events(1000)) == 100  # 200 were applied
