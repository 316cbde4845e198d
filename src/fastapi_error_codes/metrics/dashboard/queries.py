"""Pure dashboard computations: a fleet view, the time and plain numbers in, response models out."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

from ..models import OVERFLOW_CODE, ErrorEvent, FleetView, RequestKey, RouteErrorKey
from ..stores.base import window_starts
from .schemas import (
    ErrorCodeStatsResponse,
    ErrorEventResponse,
    MetricsSummaryResponse,
    RecentEventsResponse,
    RouteErrorCount,
    RoutesResponse,
    RouteStats,
    TimeseriesResponse,
    TimeseriesSeries,
    TopErrorResponse,
)

__all__ = [
    "DEFAULT_POINTS",
    "MAX_BUCKETS",
    "MAX_POINTS",
    "ROUTE_TOP_ERRORS",
    "Grid",
    "code_stats",
    "recent",
    "resolve_grid",
    "resolve_window",
    "routes",
    "sentry_url",
    "series_windows",
    "summary",
    "timeseries",
    "top_errors",
]

#: Most points one timeseries answer may hold (``ceil(window / step)``).
MAX_POINTS = 1440
#: Points the timeseries aims at when the caller leaves ``step`` out.
DEFAULT_POINTS = 120
#: Most bucket hashes one timeseries read may touch (``window / bucket width``).
MAX_BUCKETS = 10080
#: Error series listed per route in ``/routes``.
ROUTE_TOP_ERRORS = 3
#: What a Sentry event id looks like (32 hex digits; a dashed UUID passes too): anything else
#: in an exemplar is not linked.
_SENTRY_EVENT_ID = re.compile(r"[0-9a-fA-F][0-9a-fA-F-]{15,63}")

_K = TypeVar("_K", RequestKey, RouteErrorKey)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _error_name(view: FleetView, code: int) -> str:
    """The name of *code* in *view*; ``other`` for the overflow series, "" when unknown."""
    return "other" if code == OVERFLOW_CODE else view.names.get(code, "")


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def _window_count(
    view: FleetView, seconds: int, width: int, now: float, code: int | None = None
) -> int:
    """Errors (of *code*, or all) in the buckets that overlap the last *seconds* before *now*."""
    total = 0
    for start, cells in view.buckets.items():
        if start + width > now - seconds:
            total += sum(n for (c, _s), n in cells.items() if code is None or c == code)
    return total


def summary(view: FleetView, *, now: float, width: int) -> MetricsSummaryResponse:
    """Fleet totals per code and status, errors in the last 5 minutes and hour, health."""
    return MetricsSummaryResponse(
        total_errors=view.total,
        error_counts=view.by_code(),
        bucket_count=len(view.buckets),
        timestamp=_iso(now),
        status_counts=view.by_status(),
        error_names=view.names,
        last_5m=_window_count(view, 300, width, now),
        last_1h=_window_count(view, 3600, width, now),
        workers=view.workers,
        oldest_flush_age_s=view.oldest_flush_age_s,
        dropped=view.dropped,
        events_dropped=view.events_dropped,
        series_folded=view.series_folded,
    )


def sentry_links(view: FleetView | None) -> dict[str, str]:
    """Error event id -> Sentry event id, from the exemplars: the newest request of each
    error-by-route series whose Sentry event was captured."""
    if view is None:
        return {}
    links: dict[str, str] = {}
    for exemplar in view.exemplars.values():
        event_id, sentry_id = exemplar.get("e"), exemplar.get("s")
        valid = isinstance(sentry_id, str) and _SENTRY_EVENT_ID.fullmatch(sentry_id)
        if isinstance(event_id, str) and valid:
            links[event_id] = str(sentry_id)
    return links


def sentry_url(event: ErrorEvent, links: Mapping[str, str], base: str | None) -> str | None:
    """The link to *event*'s Sentry event, or None: never a guess.

    Only with a Sentry *base* URL, and only when an exemplar names this very event (by the
    event id the collector gave it, never by a request id a client chose) with its Sentry id.
    """
    if not base:
        return None
    sentry_id = links.get(event.event_id)
    if sentry_id is None:
        return None
    return f"{base.rstrip('/')}/issues/?query={sentry_id}"


def _event_responses(
    events: Sequence[ErrorEvent], view: FleetView | None, base: str | None
) -> list[ErrorEventResponse]:
    links = sentry_links(view) if base else {}
    return [ErrorEventResponse.from_event(e, sentry_url(e, links, base)) for e in events]


def recent(
    events: Sequence[ErrorEvent],
    *,
    now: float,
    view: FleetView | None = None,
    sentry_base_url: str | None = None,
) -> RecentEventsResponse:
    """*events* (newest first) with their count and the time of the answer.

    With *sentry_base_url* and the *view* holding the exemplars, an event whose request is its
    series' exemplar carries the link to its Sentry event.
    """
    return RecentEventsResponse(
        events=_event_responses(events, view, sentry_base_url),
        count=len(events),
        timestamp=_iso(now),
    )


def code_stats(
    view: FleetView,
    code: int,
    events: Sequence[ErrorEvent],
    *,
    now: float,
    width: int,
    sentry_base_url: str | None = None,
) -> ErrorCodeStatsResponse:
    """Totals, statuses, windows and *events* of one error code; zeros if it has no errors."""
    statuses = {s: n for (c, s), n in view.totals.items() if c == code}
    total = sum(statuses.values())
    return ErrorCodeStatsResponse(
        error_code=code,
        count=total,
        timestamp=_iso(now),
        error_name=_error_name(view, code),
        total=total,
        status_counts=statuses,
        last_5m=_window_count(view, 300, width, now, code),
        last_1h=_window_count(view, 3600, width, now, code),
        recent_events=_event_responses(events, view, sentry_base_url),
    )


def top_errors(view: FleetView, limit: int) -> list[TopErrorResponse]:
    """The *limit* error codes with the most errors (ties by code), largest first, ranked."""
    total = view.total or 1
    rows = sorted(view.by_code().items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [
        TopErrorResponse(
            error_code=code,
            count=n,
            rank=rank,
            error_name=_error_name(view, code),
            share=round(n / total, 6),
        )
        for rank, (code, n) in enumerate(rows, start=1)
    ]


@dataclass(frozen=True)
class Grid:
    """A checked timeseries grid: window, step and points over buckets of one width."""

    window_s: int
    step_s: int
    points: int
    bucket_width_s: int
    retention_s: int

    @property
    def span_s(self) -> int:
        """Seconds the steps cover (``points * step_s``): what the store must read."""
        return self.points * self.step_s


def resolve_grid(window: int | None, step: int | None, width: int, retention: int) -> Grid:
    """Check the cross-field bounds of a timeseries query; a ValueError names the broken rule."""
    window = resolve_window(window, width, retention)
    if step is None:
        step = width * max(1, math.ceil(window / (width * DEFAULT_POINTS)))
    elif step % width:
        raise ValueError(f"step={step} must be a multiple of the bucket width ({width} s)")
    if step > window:
        raise ValueError(f"step={step} must not be longer than window={window}")
    points = math.ceil(window / step)
    if points > MAX_POINTS:
        raise ValueError(
            f"window/step gives {points} points; at most {MAX_POINTS} (use a larger step)"
        )
    return Grid(window, step, points, width, retention)


def timeseries(view: FleetView, grid: Grid, *, now: float, top: int) -> TimeseriesResponse:
    """Errors per step of *grid* up to *now*: the *top* codes, largest first, then "other"."""
    step, points = grid.step_s, grid.points
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
            error_name=_error_name(view, code),
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
        window_s=grid.window_s,
        step_s=step,
        bucket_width_s=grid.bucket_width_s,
        retention_s=grid.retention_s,
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


def series_windows(
    view: FleetView, *, now: float, width: int
) -> list[tuple[int, int, int, int, int]]:
    """Rows ``(code, status, total, last_5m, last_1h)``, one per error series of *view*.

    The windows count the buckets that overlap them (as ``summary``); most errors first, then
    by code and status.
    """
    recent: dict[tuple[int, int], list[int]] = {}
    for start, cells in view.buckets.items():
        end = start + width
        for key, n in cells.items():
            row = recent.setdefault(key, [0, 0])
            if end > now - 300:
                row[0] += n
            if end > now - 3600:
                row[1] += n
    out = []
    for code, status in sorted(view.totals, key=lambda k: (-view.totals[k], k)):
        last_5m, last_1h = recent.get((code, status), (0, 0))
        out.append((code, status, view.totals[(code, status)], last_5m, last_1h))
    return out


def resolve_window(window: int | None, width: int, retention: int) -> int:
    """Check a ``window`` (seconds; 0 = all time) against the retention and the bucket bound."""
    if window is None:
        return min(3600, retention)
    if window > retention:
        raise ValueError(f"window={window} is longer than the retention ({retention} s)")
    if window // width > MAX_BUCKETS:
        raise ValueError(
            f"window={window} spans more than {MAX_BUCKETS} buckets of {width} s; use a shorter "
            "window"
        )
    return window


def _sum_buckets(buckets: Mapping[int, Mapping[_K, int]]) -> dict[_K, int]:
    """The cells of *buckets* added up per key."""
    out: dict[_K, int] = {}
    for cells in buckets.values():
        for key, n in cells.items():
            out[key] = out.get(key, 0) + n
    return out


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def routes(view: FleetView, window_s: int, *, limit: int, now: float, width: int) -> RoutesResponse:
    """Requests, error responses and their ratio per (route, method) over the last *window_s*
    seconds (0: all time); the routes with the most errors first, at most *limit* of them.

    Errors are responses with a 4xx or 5xx status (declared or not); the route's error series
    (code, name, status) say which.
    """
    if window_s:
        requests = _sum_buckets(view.request_buckets)
        errors = _sum_buckets(view.route_error_buckets)
        first: int | None = window_starts(now, window_s, width).start
    else:
        requests, errors, first = view.requests, view.route_errors, None
    # (route, method) -> [requests, 4xx, 5xx]
    rows: dict[tuple[str, str], list[int]] = {}
    for (route, method, status_class), n in requests.items():
        if n <= 0:
            continue
        row = rows.setdefault((route, method), [0, 0, 0])
        row[0] += n
        if status_class == 4:
            row[1] += n
        elif status_class == 5:
            row[2] += n
    by_route: dict[tuple[str, str], list[RouteErrorCount]] = {}
    for (code, name, status, route, method), n in errors.items():
        if n > 0:
            by_route.setdefault((route, method), []).append(
                RouteErrorCount(error_code=code, error_name=name, status_code=status, count=n)
            )
    ranked = sorted(
        rows.items(),
        key=lambda kv: (-(kv[1][1] + kv[1][2]), -kv[1][2], -kv[1][0], kv[0][0], kv[0][1]),
    )
    stats = []
    for (route, method), (n, four, five) in ranked[:limit]:
        top = sorted(
            by_route.get((route, method), []),
            key=lambda e: (-e.count, e.error_code, e.status_code, e.error_name),
        )
        stats.append(
            RouteStats(
                route=route,
                method=method,
                requests=n,
                errors=four + five,
                errors_4xx=four,
                errors_5xx=five,
                error_ratio=_ratio(four + five, n),
                top_errors=top[:ROUTE_TOP_ERRORS],
            )
        )
    total = sum(row[0] for row in rows.values())
    failed = sum(row[1] + row[2] for row in rows.values())
    return RoutesResponse(
        window_s=window_s,
        bucket_width_s=width,
        start=None if first is None else _iso(first),
        start_epoch=first,
        requests=total,
        errors=failed,
        errors_5xx=sum(row[2] for row in rows.values()),
        error_ratio=_ratio(failed, total),
        route_count=len(rows),
        route_folded=view.route_folded,
        routes=stats,
        timestamp=_iso(now),
    )
