"""DashboardAPI: JSON endpoints over the fleet's error metrics, with pydantic response models."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.params import Depends
from fastapi.responses import HTMLResponse
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
    "TimeseriesResponse",
    "TimeseriesSeries",
    "TopErrorResponse",
]

#: Upper bound of every ``limit`` query parameter.
MAX_LIMIT = 1000

#: Most points one timeseries answer may hold (``ceil(window / step)``).
MAX_POINTS = 1440
#: Points the timeseries aims at when the caller leaves ``step`` out.
DEFAULT_POINTS = 120
#: Most bucket hashes one timeseries read may touch (``window / bucket width``).
MAX_BUCKETS = 10080
#: Upper bound of ``top`` (lines besides "other").
MAX_TOP = 20
#: Absolute bounds of ``window`` and ``step`` in seconds; ``retention_s`` narrows ``window``.
MAX_WINDOW_S = 366 * 86400
MAX_STEP_S = 86400


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


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def _resolve_grid(
    window: int | None, step: int | None, width: int, retention: int
) -> tuple[int, int, int]:
    """Check the cross-field bounds of a timeseries query; return (window, step, points)."""
    if window is None:
        window = min(3600, retention)
    if window > retention:
        raise _unprocessable(f"window={window} is longer than the retention ({retention} s)")
    if window // width > MAX_BUCKETS:
        raise _unprocessable(
            f"window={window} spans more than {MAX_BUCKETS} buckets of {width} s; use a shorter "
            "window"
        )
    if step is None:
        step = width * max(1, math.ceil(window / (width * DEFAULT_POINTS)))
    elif step % width:
        raise _unprocessable(f"step={step} must be a multiple of the bucket width ({width} s)")
    if step > window:
        raise _unprocessable(f"step={step} must not be longer than window={window}")
    points = math.ceil(window / step)
    if points > MAX_POINTS:
        raise _unprocessable(
            f"window/step gives {points} points; at most {MAX_POINTS} (use a larger step)"
        )
    return window, step, points


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
        page_dependencies: Sequence[Depends] | None = None,
    ) -> None:
        """Serve *collector*'s fleet view under *prefix*, behind *dependencies* (auth).

        The HTML page (no data of its own) is guarded by *page_dependencies* when given, else
        by *dependencies*: ``setup_metrics`` leaves the bearer token off the page, because a
        browser opening a page cannot send it; the page's token field sends it on every fetch.
        """
        self.collector = collector
        self.router = APIRouter(prefix=prefix, tags=["metrics"])
        deps = list(dependencies or [])
        json_routes: list[tuple[str, Any, Any]] = [
            ("/summary", self.summary, MetricsSummaryResponse),
            ("/recent", self.recent, list[ErrorEventResponse]),
            ("/by-code/{code}", self.by_code, ErrorCodeStatsResponse),
            ("/top-errors", self.top_errors, list[TopErrorResponse]),
            ("/timeseries", self.timeseries, TimeseriesResponse),
        ]
        for path, endpoint, model in json_routes:
            self.router.add_api_route(
                path, endpoint, methods=["GET"], response_model=model, dependencies=deps
            )
        # The page is HTML for people, not part of the API: kept out of the OpenAPI schema.
        self.router.add_api_route(
            "/",
            self.page,
            methods=["GET"],
            response_class=HTMLResponse,
            include_in_schema=False,
            name="fastapi_error_codes_dashboard_page",
            dependencies=list(deps if page_dependencies is None else page_dependencies),
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

    def timeseries(
        self,
        window: int | None = Query(
            None,
            ge=1,
            le=MAX_WINDOW_S,
            description="Seconds to cover, at most retention_s (default: an hour)",
        ),
        step: int | None = Query(
            None,
            ge=1,
            le=MAX_STEP_S,
            description="Seconds per point, a multiple of the bucket width (default: about "
            f"{DEFAULT_POINTS} points)",
        ),
        top: int = Query(5, ge=1, le=MAX_TOP, description='Lines besides "other"'),
    ) -> TimeseriesResponse:
        """Fleet-wide errors per step over the window: the top codes and an "other" line."""
        config = self.collector.config
        width = config.bucket_width_s
        window, step, points = _resolve_grid(window, step, width, config.retention_s)
        with store_unavailable_as_503():
            view = self.collector.read(window_s=points * step)
        now = time.time()
        last = int(now) - int(now) % step
        first = last - (points - 1) * step
        rows: dict[int, list[int]] = {}
        classes = {"4xx": 0, "5xx": 0}
        for start, cells in view.buckets.items():
            if not first <= start < last + step:
                continue
            index = (start - first) // step
            for (code, status), n in cells.items():
                rows.setdefault(code, [0] * points)[index] += n
                label = _status_class(status)
                classes[label] = classes.get(label, 0) + n
        totals = {code: sum(row) for code, row in rows.items()}
        ranked = sorted(
            (c for c in rows if c != OVERFLOW_CODE and totals[c]), key=lambda c: (-totals[c], c)
        )
        series = [
            TimeseriesSeries(
                key=str(code),
                error_code=code,
                error_name=view.names.get(code, ""),
                total=totals[code],
                counts=rows[code],
            )
            for code in ranked[:top]
        ]
        shown = set(ranked[:top])
        other = [0] * points
        for code, row in rows.items():
            if code not in shown:
                other = [a + b for a, b in zip(other, row, strict=True)]
        series.append(
            TimeseriesSeries(
                key="other", error_code=None, error_name="other", total=sum(other), counts=other
            )
        )
        epochs = [first + i * step for i in range(points)]
        return TimeseriesResponse(
            window_s=window,
            step_s=step,
            bucket_width_s=width,
            retention_s=config.retention_s,
            points=points,
            start=_iso(first),
            start_epoch=first,
            end=_iso(last + step),
            end_epoch=last + step,
            timestamps=[_iso(t) for t in epochs],
            timestamps_epoch=epochs,
            series=series,
            total=sum(totals.values()),
            status_classes=classes,
            timestamp=_iso(now),
        )

    def page(self) -> HTMLResponse:
        """The operator dashboard: one self-contained HTML page over the JSON endpoints."""
        body, csp = _page()
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY",
            },
        )


def _csp_hashes(tag: str, html: str) -> str:
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
        for text in found
    )


@functools.lru_cache(maxsize=1)
def _page() -> tuple[bytes, str]:
    """The page's bytes (package data, read once) and its Content-Security-Policy."""
    static = resources.files("fastapi_error_codes.metrics") / "static"
    html = (static / "dashboard.html").read_text(encoding="utf-8")
    # Only this page's own inline script and style may run, and it may talk only to its own
    # origin: the browser itself enforces "no CDN, no external fetch".
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hashes('script', html)}; "
        f"style-src {_csp_hashes('style', html)}; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html.encode("utf-8"), csp
