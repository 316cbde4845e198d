"""Pure dashboard computations: a fleet view, the time and plain numbers in, response models out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..models import OVERFLOW_CODE, ErrorEvent, FleetView
from .schemas import (
    ErrorCodeStatsResponse,
    ErrorEventResponse,
    MetricsSummaryResponse,
    RecentEventsResponse,
    TimeseriesResponse,
    TimeseriesSeries,
    TopErrorResponse,
)

__all__ = [
    "DEFAULT_POINTS",
    "MAX_BUCKETS",
    "MAX_POINTS",
    "Grid",
    "code_stats",
    "recent",
    "resolve_grid",
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


def recent(events: Sequence[ErrorEvent], *, now: float) -> RecentEventsResponse:
    """*events* (newest first) with their count and the time of the answer."""
    return RecentEventsResponse(
        events=[ErrorEventResponse.from_event(e) for e in events],
        count=len(events),
        timestamp=_iso(now),
    )


def code_stats(
    view: FleetView, code: int, events: Sequence[ErrorEvent], *, now: float, width: int
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
        recent_events=[ErrorEventResponse.from_event(e) for e in events],
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
    if window is None:
        window = min(3600, retention)
    if window > retention:
        raise ValueError(f"window={window} is longer than the retention ({retention} s)")
    if window // width > MAX_BUCKETS:
        raise ValueError(
            f"window={window} spans more than {MAX_BUCKETS} buckets of {width} s; use a shorter "
            "window"
        )
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
