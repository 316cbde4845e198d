"""Pydantic response models of the dashboard's JSON endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..models import ErrorEvent

__all__ = [
    "ErrorCodeStatsResponse",
    "ErrorEventResponse",
    "MetricsSummaryResponse",
    "RecentEventsResponse",
    "RouteErrorCount",
    "RouteStats",
    "RoutesResponse",
    "TimeseriesResponse",
    "TimeseriesSeries",
    "TopErrorResponse",
]


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
    request_id: str | None = Field(
        None, description="The request's id (the X-Request-ID header), when known"
    )
    trace_id: str | None = Field(None, description="The request's W3C trace id, when known")
    sentry_url: str | None = Field(
        None,
        description="Link to this request's Sentry event: only with MetricsConfig."
        "sentry_base_url set and a Sentry event id known for this very request",
    )

    @classmethod
    def from_event(cls, event: ErrorEvent, sentry_url: str | None = None) -> ErrorEventResponse:
        """Build the response model from an :class:`ErrorEvent` (and its Sentry link)."""
        return cls(**event.to_dict(), sentry_url=sentry_url)


class RecentEventsResponse(BaseModel):
    """The newest error events of the fleet, newest first (the original's shape)."""

    events: list[ErrorEventResponse]
    count: int = Field(description="Number of events in ``events``")
    timestamp: str = Field(description="When this answer was computed (ISO 8601 UTC)")


class ErrorCodeStatsResponse(BaseModel):
    """Statistics of one error code across the fleet (all zero for a code never seen)."""

    error_code: int
    count: int = Field(description="Errors with this code, all time (the original's field)")
    timestamp: str = Field(description="When this answer was computed (ISO 8601 UTC)")
    error_name: str
    total: int = Field(description="The same number as ``count``")
    status_counts: dict[int, int]
    last_5m: int
    last_1h: int
    recent_events: list[ErrorEventResponse]


class TopErrorResponse(BaseModel):
    """One row of the top-errors table."""

    error_code: int
    count: int
    rank: int = Field(description="1 for the code with the most errors")
    error_name: str
    share: float


class TimeseriesSeries(BaseModel):
    """One line of the chart: a top error code, or ``other`` (the rest and the overflow)."""

    key: str = Field(description='The code as text, or "other"')
    error_code: int | None = Field(description='The error code; null for "other"')
    error_name: str
    total: int = Field(description="Errors of this line in the whole window")
    counts: list[int] = Field(description="Errors per step, aligned with ``timestamps``")


class TimeseriesResponse(BaseModel):
    """Fleet-wide errors per step over a window, for the top codes plus an "other" line."""

    window_s: int
    step_s: int
    bucket_width_s: int
    retention_s: int
    points: int
    start: str = Field(description="Start of the first step (ISO 8601 UTC)")
    start_epoch: int
    end: str = Field(description="End of the last step, exclusive (ISO 8601 UTC)")
    end_epoch: int
    timestamps: list[str] = Field(description="Start of each step (ISO 8601 UTC)")
    timestamps_epoch: list[int] = Field(description="Start of each step (Unix seconds)")
    series: list[TimeseriesSeries] = Field(description='Top codes, largest first, then "other"')
    total: int = Field(description="All errors in the window")
    status_classes: dict[str, int] = Field(
        description='Errors in the window per status class ("4xx", "5xx", ...)'
    )
    timestamp: str = Field(description="When this answer was computed (ISO 8601 UTC)")


class RouteErrorCount(BaseModel):
    """One error series of a route: how often it answered with this error in the window."""

    error_code: int = Field(description="The error code; the status for an undeclared error")
    error_name: str = Field(description='"Undeclared" for a response no handler raised')
    status_code: int
    count: int


class RouteStats(BaseModel):
    """Requests and error responses of one (route, method) over the window."""

    route: str = Field(
        description='The route template; "<unmatched>" for paths no route matched, "other" '
        "for routes folded past max_route_series"
    )
    method: str
    requests: int = Field(description="Responses of this route in the window")
    errors: int = Field(description="Responses with a 4xx or 5xx status")
    errors_4xx: int
    errors_5xx: int
    error_ratio: float | None = Field(description="errors / requests; null without requests")
    top_errors: list[RouteErrorCount] = Field(
        description="The route's most frequent errors in the window (at most 3), largest first"
    )


class RoutesResponse(BaseModel):
    """Error ratio per route over a window, the routes that fail most first."""

    window_s: int = Field(description="Seconds covered; 0 for all time")
    bucket_width_s: int
    start: str | None = Field(
        description="Start of the oldest bucket covered (ISO 8601 UTC); null for all time"
    )
    start_epoch: int | None
    requests: int = Field(description="Responses of every route in the window")
    errors: int = Field(description="Responses with a 4xx or 5xx status, every route")
    errors_5xx: int
    error_ratio: float | None = Field(description="errors / requests; null without requests")
    route_count: int = Field(description="(route, method) pairs with requests, before ``limit``")
    route_folded: int = Field(description="Route series folded into other, fleet-wide")
    routes: list[RouteStats] = Field(
        description="Most errors first (then most 5xx, most requests, route, method)"
    )
    timestamp: str = Field(description="When this answer was computed (ISO 8601 UTC)")
