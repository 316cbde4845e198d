"""DashboardAPI: JSON endpoints over the fleet's error metrics, with pydantic response models."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.params import Depends
from pydantic import BaseModel, Field

from ._http import store_unavailable_as_503
from .models import OVERFLOW_CODE, ErrorEvent, FleetView

if TYPE_CHECKING:
    from .collector import ErrorMetricsCollector

__all__ = [
    "DashboardAPI",
    "ErrorCodeStatsResponse",
    "ErrorEventResponse",
    "MetricsSummaryResponse",
    "TopErrorResponse",
]

#: Upper bound of every ``limit`` query parameter.
MAX_LIMIT = 1000


def _iso(ts: float | datetime) -> str:
    if isinstance(ts, datetime):
        return ts.isoformat()
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


class MetricsSummaryResponse(BaseModel):
    """Fleet-wide summary: totals per code and status, recent windows, health figures."""

    total_errors: int
    error_counts: dict[int, int]
    bucket_count: int
    timestamp: str
    status_counts: dict[int, int] = Field(default_factory=dict)
    error_names: dict[int, str] = Field(default_factory=dict)
    last_5m: int = 0
    last_1h: int = 0
    workers: int = 0
    oldest_flush_age_s: float | None = None
    dropped: int = 0
    events_dropped: int = 0
    series_folded: int = 0


class ErrorEventResponse(BaseModel):
    """One recent error event (text masked for PII before it left the worker)."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    detail: Any = None
    path: str | None = None
    method: str | None = None
    timestamp: str
    event_id: str

    @classmethod
    def from_event(cls, event: ErrorEvent) -> ErrorEventResponse:
        """Build the response model from an :class:`ErrorEvent`."""
        return cls(**event.to_dict())


class ErrorCodeStatsResponse(BaseModel):
    """Statistics of one error code across the fleet."""

    error_code: int
    error_name: str
    total: int
    status_counts: dict[int, int]
    last_5m: int
    last_1h: int
    recent_events: list[ErrorEventResponse]


class TopErrorResponse(BaseModel):
    """One row of the top-errors table."""

    error_code: int
    error_name: str
    count: int
    share: float


def _window(view: FleetView, seconds: int, width: int, now: float, code: int | None = None) -> int:
    total = 0
    for start, cells in view.buckets.items():
        if start + width > now - seconds:
            total += sum(n for (c, _s), n in cells.items() if code is None or c == code)
    return total


class DashboardAPI:
    """An APIRouter (tag ``metrics``) serving the dashboard JSON under a prefix."""

    def __init__(
        self,
        collector: ErrorMetricsCollector,
        prefix: str = "/api/metrics",
        dependencies: Sequence[Depends] | None = None,
    ) -> None:
        """Serve *collector*'s fleet view under *prefix*, behind *dependencies* (auth)."""
        self.collector = collector
        self.router = APIRouter(prefix=prefix, tags=["metrics"], dependencies=dependencies)
        self.router.add_api_route(
            "/summary", self.summary, methods=["GET"], response_model=MetricsSummaryResponse
        )
        self.router.add_api_route(
            "/recent", self.recent, methods=["GET"], response_model=list[ErrorEventResponse]
        )
        self.router.add_api_route(
            "/by-code/{code}",
            self.by_code,
            methods=["GET"],
            response_model=ErrorCodeStatsResponse,
        )
        self.router.add_api_route(
            "/top-errors", self.top_errors, methods=["GET"], response_model=list[TopErrorResponse]
        )

    # FastAPI runs these plain ``def`` endpoints in its threadpool: store reads (Redis round
    # trips) never block the event loop.
    def summary(self) -> MetricsSummaryResponse:
        """Fleet totals per code and status, errors in the last 5 minutes and hour, health."""
        with store_unavailable_as_503():
            view = self.collector.read(window_s=3600)
        now = time.time()
        width = self.collector.config.bucket_width_s
        return MetricsSummaryResponse(
            total_errors=view.total,
            error_counts=view.by_code(),
            bucket_count=len(view.buckets),
            timestamp=_iso(now),
            status_counts=view.by_status(),
            error_names=view.names,
            last_5m=_window(view, 300, width, now),
            last_1h=_window(view, 3600, width, now),
            workers=view.workers,
            oldest_flush_age_s=view.oldest_flush_age_s,
            dropped=view.dropped,
            events_dropped=view.events_dropped,
            series_folded=view.series_folded,
        )

    def recent(
        self,
        limit: int = Query(50, ge=1, le=MAX_LIMIT, description="How many events, newest first"),
        error_code: int | None = Query(None, ge=-1, le=9999, description="Only this code"),
    ) -> list[ErrorEventResponse]:
        """The newest error events of the fleet (masked), newest first."""
        with store_unavailable_as_503():
            events = self.collector.get_recent_events(limit, error_code)
        return [ErrorEventResponse.from_event(e) for e in events]

    def by_code(
        self,
        code: int = Path(..., ge=-1, le=9999, description="Application error code"),
        limit: int = Query(20, ge=0, le=MAX_LIMIT, description="Recent events to include"),
    ) -> ErrorCodeStatsResponse:
        """Totals, statuses, windows and recent events of one error code."""
        with store_unavailable_as_503():
            view = self.collector.read(window_s=3600)
            events = self.collector.get_recent_events(limit, code, flush=False) if limit else []
        statuses = {s: n for (c, s), n in view.totals.items() if c == code}
        if not statuses:
            raise HTTPException(status_code=404, detail=f"no errors recorded with code {code}")
        now = time.time()
        width = self.collector.config.bucket_width_s
        return ErrorCodeStatsResponse(
            error_code=code,
            error_name="other" if code == OVERFLOW_CODE else view.names.get(code, ""),
            total=sum(statuses.values()),
            status_counts=statuses,
            last_5m=_window(view, 300, width, now, code),
            last_1h=_window(view, 3600, width, now, code),
            recent_events=[ErrorEventResponse.from_event(e) for e in events],
        )

    def top_errors(
        self, limit: int = Query(10, ge=1, le=100, description="How many codes")
    ) -> list[TopErrorResponse]:
        """The error codes with the most errors, largest first."""
        with store_unavailable_as_503():
            view = self.collector.read(window_s=0)
        total = view.total or 1
        rows = sorted(view.by_code().items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [
            TopErrorResponse(
                error_code=code,
                error_name="other" if code == OVERFLOW_CODE else view.names.get(code, ""),
                count=n,
                share=round(n / total, 6),
            )
            for code, n in rows
        ]
