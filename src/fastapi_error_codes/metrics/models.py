"""Data models of the monitoring part: events, snapshots, buckets, and the store's batch/view."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "OTHER",
    "OVERFLOW_CODE",
    "Batch",
    "ErrorEvent",
    "FleetView",
    "MetricsSnapshot",
    "RequestKey",
    "RouteErrorKey",
    "SeriesKey",
    "TimeBucket",
    "folded_request",
    "folded_route_error",
]

#: Error code (and status) of the overflow series that new series fold into past ``max_series``.
OVERFLOW_CODE = -1

#: A series is one (error_code, status_code) pair.
SeriesKey = tuple[int, int]
#: A request series: (route template, method, status class 1-5).
RequestKey = tuple[str, str, int]
#: An error-by-route series: (error code, error name, status, route template, method).
RouteErrorKey = tuple[int, str, int, str, str]


#: The route, name and method a folded route series takes (past ``max_route_series``).
OTHER = "other"


def folded_request(key: RequestKey) -> RequestKey:
    """The series a request series folds into past the cap: its status class is kept."""
    return (OTHER, OTHER, key[2])


def folded_route_error(key: RouteErrorKey) -> RouteErrorKey:
    """The series an error-by-route series folds into past the cap: its status is kept."""
    return (OVERFLOW_CODE, OTHER, key[2], OTHER, OTHER)


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
    #: the request's id (``X-Request-ID``) and its W3C trace id, when known
    request_id: str | None = None
    trace_id: str | None = None

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
            "request_id": self.request_id,
            "trace_id": self.trace_id,
        }


def _as_utc(moment: datetime) -> datetime:
    """*moment* as an aware UTC datetime; a naive one is taken as UTC (the original's utcnow)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


@dataclass(init=False)
class TimeBucket:
    """Error counts of one time bucket (``collection_interval_ms`` wide) across the fleet.

    Stored as the original spells it, ``TimeBucket(start_time, end_time, error_counts={},
    total_count=0)`` with ``add_event`` and ``is_expired``; ``status_counts`` is ours, and
    ``start``, ``duration_s`` and ``total_errors`` read the same bucket our way. Buckets of a
    snapshot carry aware UTC times.
    """

    start_time: datetime
    end_time: datetime
    error_counts: dict[int, int]
    total_count: int
    status_counts: dict[int, int]

    def __init__(
        self,
        start_time: datetime | None = None,
        end_time: datetime | int | None = None,
        error_counts: Mapping[int, int] | None = None,
        total_count: int | Mapping[int, int] | None = None,
        status_counts: Mapping[int, int] | None = None,
        *,
        start: datetime | None = None,
        duration_s: int | None = None,
    ) -> None:
        """``TimeBucket(start_time, end_time, ...)``, or ours: ``TimeBucket(start, duration_s)``.

        Our earlier positional order (``start, duration_s, error_counts, status_counts``)
        still works: an int second argument is the width, a mapping fourth one the statuses.
        ``total_count`` defaults to the sum of ``error_counts``.
        """
        if isinstance(end_time, int):
            end_time, duration_s = None, end_time
        if isinstance(total_count, Mapping):
            total_count, status_counts = None, total_count
        begin = start_time if start_time is not None else start
        if begin is None:
            raise TypeError("TimeBucket needs start_time (or start)")
        if end_time is None:
            if duration_s is None:
                raise TypeError("TimeBucket needs end_time (or duration_s)")
            end_time = begin + timedelta(seconds=duration_s)
        self.start_time = begin
        self.end_time = end_time
        self.error_counts = dict(error_counts or {})
        self.status_counts = dict(status_counts or {})
        self.total_count = sum(self.error_counts.values()) if total_count is None else total_count

    @property
    def start(self) -> datetime:
        """Start of the bucket (``start_time``)."""
        return self.start_time

    @property
    def duration_s(self) -> int:
        """Width of the bucket in whole seconds (``end_time - start_time``)."""
        return int((_as_utc(self.end_time) - _as_utc(self.start_time)).total_seconds())

    @property
    def total_errors(self) -> int:
        """All errors counted in this bucket (``total_count``)."""
        return self.total_count

    def add_event(self, event: ErrorEvent) -> None:
        """Count *event* in this bucket: by code, by status and in ``total_count``."""
        self.error_counts[event.error_code] = self.error_counts.get(event.error_code, 0) + 1
        self.status_counts[event.status_code] = self.status_counts.get(event.status_code, 0) + 1
        self.total_count += 1

    def is_expired(self, current_time: datetime) -> bool:
        """True once *current_time* is past ``end_time`` (naive times are taken as UTC)."""
        return _as_utc(current_time) > _as_utc(self.end_time)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times as ISO 8601)."""
        return {
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat(),
            "duration_s": self.duration_s,
            "error_counts": dict(self.error_counts),
            "status_counts": dict(self.status_counts),
            "total_count": self.total_count,
        }


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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the original's keys first, then ours.

        ``total_errors``, ``error_counts``, ``recent_events`` (event dicts), ``bucket_count``
        and ``timestamp`` (ISO 8601) as in the original; then ``status_counts``,
        ``error_names``, ``buckets`` (bucket dicts, oldest first) and the health figures.
        Count dicts keep their int keys (``json.dumps`` writes them as strings).
        """
        return {
            "total_errors": self.total_errors,
            "error_counts": dict(self.error_counts),
            "recent_events": [event.to_dict() for event in self.recent_events],
            "bucket_count": self.bucket_count,
            "timestamp": self.timestamp.isoformat(),
            "status_counts": dict(self.status_counts),
            "error_names": dict(self.error_names),
            "buckets": [bucket.to_dict() for bucket in self.buckets],
            "dropped": self.dropped,
            "events_dropped": self.events_dropped,
            "series_folded": self.series_folded,
            "workers": self.workers,
        }


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
    #: this worker's failed flush attempts, Sentry captures skipped by the budget and requests
    #: to the library's own endpoints refused by authentication since its previous applied
    #: batch (fleet-wide counters), and what it still buffers (a gauge)
    flush_failures: int = 0
    sentry_skipped: int = 0
    refused: int = 0
    buffered: int = 0
    #: set per attempt by the flusher: ms since the first attempt (monotonic), and whether an
    #: earlier attempt may have been applied without the worker hearing of it
    age_ms: int = 0
    unsure: bool = False
    #: (bucket start, route, method, status class) -> delta: every response, by route
    requests: Mapping[tuple[int, str, str, int], int] = field(default_factory=dict)
    #: (bucket start, code, name, status, route, method) -> delta: every error response
    route_errors: Mapping[tuple[int, int, str, int, str, str], int] = field(default_factory=dict)
    #: error-by-route series (code, name, status, route, method) -> its newest request's ids
    #: as a compact JSON object (keys ``r`` request id, ``t`` trace id, ``s`` Sentry event id,
    #: ``ts`` time)
    exemplars: Mapping[RouteErrorKey, str] = field(default_factory=dict)
    #: route series folded into ``other`` by this worker (past ``max_route_series``)
    route_folded: int = 0


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
    #: fleet-wide self-health: failed flush attempts, Sentry captures the budget skipped,
    #: requests to /metrics or the dashboard refused by authentication (401/403), errors the
    #: live workers still held at their last flush
    flush_failures: int = 0
    sentry_skipped: int = 0
    refused: int = 0
    buffered: int = 0
    #: stored entries this read skipped because they could not be parsed
    malformed: int = 0
    #: the server's maxmemory-policy when it may evict keys of ours (None: safe or unknown)
    eviction_policy: str | None = None
    #: every response of the fleet by route, all time, and per bucket of the window
    requests: dict[RequestKey, int] = field(default_factory=dict)
    request_buckets: dict[int, dict[RequestKey, int]] = field(default_factory=dict)
    #: every error response of the fleet by route, all time, and per bucket of the window
    route_errors: dict[RouteErrorKey, int] = field(default_factory=dict)
    route_error_buckets: dict[int, dict[RouteErrorKey, int]] = field(default_factory=dict)
    #: error-by-route series -> its newest request: ``{"r": request id, "t": trace id,
    #: "s": Sentry event id, "ts": time}`` (keys present when known)
    exemplars: dict[RouteErrorKey, dict[str, Any]] = field(default_factory=dict)
    #: route series folded into ``other`` past ``max_route_series``, fleet-wide
    route_folded: int = 0

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
