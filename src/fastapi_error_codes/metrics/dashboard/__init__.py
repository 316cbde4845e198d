"""The dashboard: JSON endpoints over the fleet's error metrics and the operator HTML page."""

from __future__ import annotations

from .router import DashboardAPI
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
    "DashboardAPI",
    "ErrorCodeStatsResponse",
    "ErrorEventResponse",
    "MetricsSummaryResponse",
    "RecentEventsResponse",
    "TimeseriesResponse",
    "TimeseriesSeries",
    "TopErrorResponse",
]
