"""Data models of the monitoring part: events, snapshots, buckets, and the store's batch/view."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "OVERFLOW_CODE",
    "Batch",
    "ErrorEvent",
    "FleetView",
    "MetricsSnapshot",
    "SeriesKey",
    "TimeBucket",
]

#: Error code (and status) of the overflow series that new series fold into past ``max_series``.
OVERFLOW_CODE = -1

#: A series is one (error_code, status_code) pair.
SeriesKey = tuple[int, int]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ErrorEvent:
    """One recorded error, as kept in the recent-events stream (text already masked)."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    detail: Any = None
    path: str | None = None
    method: str | None = None
    timestamp: datetime = field(default_factory=_utcnow)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (timestamp as ISO 8601 UTC)."""
        return {
            "error_code": self.error_code,
            "error_name": self.error_name,
            "status_code": self.status_code,
            "message": self.message,
            "detail": self.detail,
            "path": self.path,
            "method": self.method,
            "timestamp": self.timestamp.isoformat(),
            "event_id": self.event_id,
        }


@dataclass
class TimeBucket:
    """Error counts of one time bucket (``collection_interval_ms`` wide) across the fleet."""

    start: datetime
    duration_s: int
    error_counts: dict[int, int] = field(default_factory=dict)
    status_counts: dict[int, int] = field(default_factory=dict)

    @property
    def total_errors(self) -> int:
        """All errors counted in this bucket."""
        return sum(self.error_counts.values())


@dataclass
class MetricsSnapshot:
    """A point-in-time view of the fleet's error metrics."""

    total_errors: int
    error_counts: dict[int, int]
    recent_events: list[ErrorEvent]
    bucket_count: int
    timestamp: datetime = field(default_factory=_utcnow)
    status_counts: dict[int, int] = field(default_factory=dict)
    error_names: dict[int, str] = field(default_factory=dict)
    buckets: list[TimeBucket] = field(default_factory=list)
    dropped: int = 0
    events_dropped: int = 0
    series_folded: int = 0
    workers: int = 0


@dataclass(frozen=True)
class Batch:
    """One flush of one worker: count deltas, names and masked events, applied exactly once."""

    worker_id: str
    seq: int
    #: (bucket start in seconds, error_code, status_code) -> delta; bucket 0 = totals only.
    counts: Mapping[tuple[int, int, int], int]
    names: Mapping[int, str]
    #: JSON-encoded, masked events, oldest first, at most ``max_events``.
    events: Sequence[str]
    dropped: int = 0
    events_dropped: int = 0
    series_folded: int = 0
    created_ms: int = 0

    @property
    def is_empty(self) -> bool:
        """True when the batch carries nothing but a heartbeat."""
        return not (self.counts or self.events or self.dropped or self.events_dropped)


@dataclass
class FleetView:
    """What a store read returns: fleet totals, names, the window's buckets, health figures."""

    totals: dict[SeriesKey, int]
    names: dict[int, str]
    buckets: dict[int, dict[SeriesKey, int]]
    dropped: int = 0
    events_dropped: int = 0
    series_folded: int = 0
    workers: int = 0
    oldest_flush_age_s: float | None = None
    created_s: float | None = None

    @property
    def total(self) -> int:
        """All errors of the fleet."""
        return sum(self.totals.values())

    def by_code(self) -> dict[int, int]:
        """Totals per error code (overflow series under ``OVERFLOW_CODE``)."""
        out: dict[int, int] = {}
        for (code, _status), n in self.totals.items():
            out[code] = out.get(code, 0) + n
        return out

    def by_status(self) -> dict[int, int]:
        """Totals per HTTP status (overflow series under ``OVERFLOW_CODE``)."""
        out: dict[int, int] = {}
        for (_code, status), n in self.totals.items():
            out[status] = out.get(status, 0) + n
        return out

    def window_total(self, since_s: float) -> int:
        """Errors in buckets starting at or after *since_s*."""
        return sum(sum(c.values()) for start, c in self.buckets.items() if start >= since_s)
