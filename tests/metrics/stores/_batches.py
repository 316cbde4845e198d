"""Building blocks of the store tests: batches, wire events and a bucket clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping

from fastapi_error_codes.metrics.models import Batch

#: Bucket width of ``MetricsConfig.testing()`` (collection_interval_ms=60000).
WIDTH = 60


def batch(
    seq: int,
    worker: str = "w1",
    counts: Mapping[tuple[int, int, int], int] | None = None,
    names: Mapping[int, str] | None = None,
    events: Iterable[str] = (),
    *,
    dropped: int = 0,
    events_dropped: int = 0,
    series_folded: int = 0,
) -> Batch:
    """One flush of *worker*: counts keyed ``(bucket_start_s, code, status)``, 0 = totals only."""
    return Batch(
        worker_id=worker,
        seq=seq,
        counts=dict(counts or {}),
        names=dict(names or {}),
        events=list(events),
        dropped=dropped,
        events_dropped=events_dropped,
        series_folded=series_folded,
    )


def event(code: int, n: int, status: int = 404, worker: str = "w1") -> str:
    """A masked event as the collector writes it (``_encode_event``): id ``e<n>``."""
    return json.dumps(
        {
            "id": f"e{n}",
            "t": 1_700_000_000.0 + n,
            "c": code,
            "n": f"E{code}",
            "s": status,
            "m": f"message {n}",
            "d": None,
            "p": "/items",
            "mt": "GET",
            "w": worker,
        },
        separators=(",", ":"),
    )


def ids(events: Iterable[Mapping[str, object]]) -> list[object]:
    """The ids of decoded events, in the order given."""
    return [e["id"] for e in events]


def current_bucket(width: int = WIDTH, margin_s: float = 3.0) -> int:
    """Start of the current bucket, after waiting out its end if fewer than *margin_s* remain.

    Tests that name buckets relative to "now" must not see the clock cross into the next
    bucket between their writes and their reads.
    """
    now = time.time()
    left = width - now % width
    if left < margin_s:
        time.sleep(left + 0.05)
        now = time.time()
    return int(now) - int(now) % width
