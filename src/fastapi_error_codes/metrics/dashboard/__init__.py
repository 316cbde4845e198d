"""The dashboard: JSON endpoints over the fleet's error metrics and the operator HTML page."""

from __future__ import annotations

from .queries import DEFAULT_POINTS, MAX_BUCKETS, MAX_POINTS
from .router import MAX_LIMIT, MAX_STEP_S, MAX_TOP, MAX_WINDOW_S, DashboardAPI
from .schemas import (
    ErrorCodeStatsResponse,
    ErrorEventResponse,
    MetricsSummaryResponse,
    TimeseriesResponse,
    TimeseriesSeries,
    TopErrorResponse,
)

__all__ = [
    "DEFAULT_POINTS",
    "MAX_BUCKETS",
    "MAX_LIMIT",
    "MAX_POINTS",
    "MAX_STEP_S",
    "MAX_TOP",
    "MAX_WINDOW_S",
    "DashboardAPI",
    "ErrorCodeStatsResponse",
    "ErrorEventResponse",
    "MetricsSummaryResponse",
    "TimeseriesResponse",
    "TimeseriesSeries",
    "TopErrorResponse",
]
