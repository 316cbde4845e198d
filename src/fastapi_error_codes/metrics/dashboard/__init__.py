"""The dashboard: JSON and CSV endpoints over the fleet's error metrics, and the operator page."""

from __future__ import annotations

from .router import DashboardAPI
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
    "DashboardAPI",
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
