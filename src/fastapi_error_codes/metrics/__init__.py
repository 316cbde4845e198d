"""Fleet-wide error monitoring: collector, stores, Prometheus, Sentry and the dashboard API."""

from __future__ import annotations

from .buffer import UNMATCHED_ROUTE
from .collector import ErrorMetricsCollector
from .config import MetricsConfig, MetricsPreset, get_config_from_env
from .dashboard import (
    DashboardAPI,
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
from .models import ErrorEvent, MetricsSnapshot, TimeBucket
from .pii import DEFAULT_PII_PATTERNS, PiiMasker, mask_pii
from .prometheus import PrometheusExporter
from .reads import ReadGate
from .sentry import SentryIntegration
from .setup import UNDECLARED, MetricsComponents, setup_metrics
from .stores import BatchRejected, MemoryStore, MetricsStore, StoreError, StoreUnavailable
from .stores.redis import RedisStore

__all__ = [
    "DEFAULT_PII_PATTERNS",
    "UNDECLARED",
    "UNMATCHED_ROUTE",
    "BatchRejected",
    "DashboardAPI",
    "ErrorCodeStatsResponse",
    "ErrorEvent",
    "ErrorEventResponse",
    "ErrorMetricsCollector",
    "MemoryStore",
    "MetricsComponents",
    "MetricsConfig",
    "MetricsPreset",
    "MetricsSnapshot",
    "MetricsStore",
    "MetricsSummaryResponse",
    "PiiMasker",
    "PrometheusExporter",
    "ReadGate",
    "RecentEventsResponse",
    "RedisStore",
    "RouteErrorCount",
    "RouteStats",
    "RoutesResponse",
    "SentryIntegration",
    "StoreError",
    "StoreUnavailable",
    "TimeBucket",
    "TimeseriesResponse",
    "TimeseriesSeries",
    "TopErrorResponse",
    "get_config_from_env",
    "mask_pii",
    "setup_metrics",
]
