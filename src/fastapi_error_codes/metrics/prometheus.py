"""PrometheusExporter: the fleet's error series, rendered by prometheus_client's exposition code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .models import OVERFLOW_CODE

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from .collector import ErrorMetricsCollector

__all__ = ["PrometheusExporter", "require_prometheus_client"]

_MISSING_EXTRA = (
    "the Prometheus exporter needs prometheus-client: "
    "pip install 'fastapi-error-codes[prometheus]' (or [monitoring])"
)


def require_prometheus_client() -> None:
    """Raise one clear ImportError naming the extra when prometheus_client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA) from exc


def _label(code: int, max_length: int) -> str:
    return "other" if code == OVERFLOW_CODE else str(code)[:max_length]


class _FleetCollector:
    """A prometheus_client custom collector that reads the fleet view at each scrape."""

    def __init__(self, collector: ErrorMetricsCollector) -> None:
        self._collector = collector

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        collector = self._collector
        view = collector.read(window_s=0)
        cap = collector.config.max_text_length
        yield CounterMetricFamily(
            "fastapi_errors",
            "Total number of application errors",
            value=view.total,
            created=view.created_s,
        )
        by_code = GaugeMetricFamily(
            "fastapi_errors_by_code",
            "Errors grouped by application error code",
            labels=["error_code", "error_name", "status_code"],
        )
        for (code, status), n in sorted(view.totals.items()):
            name = "other" if code == OVERFLOW_CODE else view.names.get(code, "")
            by_code.add_metric([_label(code, cap), name[:cap], _label(status, cap)], n)
        yield by_code
        by_status = GaugeMetricFamily(
            "fastapi_errors_by_status", "Errors grouped by HTTP status code", labels=["status_code"]
        )
        for status, n in sorted(view.by_status().items()):
            by_status.add_metric([_label(status, cap)], n)
        yield by_status
        yield CounterMetricFamily(
            "fastapi_errors_dropped",
            "Errors recorded but not counted because a bound was exceeded",
            value=view.dropped,
        )
        yield CounterMetricFamily(
            "fastapi_errors_events_dropped",
            "Error events counted but not kept in the recent-events stream (bounds)",
            value=view.events_dropped,
        )
        yield CounterMetricFamily(
            "fastapi_errors_series_folded",
            "Errors folded into the overflow series because max_series was reached",
            value=view.series_folded,
        )
        yield GaugeMetricFamily(
            "fastapi_errors_workers", "Workers with a recent flush heartbeat", value=view.workers
        )
        yield GaugeMetricFamily(
            "fastapi_errors_flush_age_seconds",
            "Age of the oldest live worker's last successful flush",
            value=view.oldest_flush_age_s if view.oldest_flush_age_s is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "fastapi_errors_worker_buffered",
            "Errors this serving worker holds locally, not yet in the store",
            value=collector.buffered,
        )
        yield CounterMetricFamily(
            "fastapi_errors_worker_flush_failures",
            "Failed flush attempts of this serving worker",
            value=collector.stats.flush_failures,
        )


class PrometheusExporter:
    """Renders the fleet's error metrics in the Prometheus text or OpenMetrics format."""

    def __init__(
        self, collector: ErrorMetricsCollector, registry: CollectorRegistry | None = None
    ) -> None:
        """Export *collector*'s fleet view through *registry* (a private one by default)."""
        require_prometheus_client()
        from prometheus_client import CollectorRegistry

        self.collector = collector
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.registry.register(_FleetCollector(collector))  # type: ignore[arg-type,unused-ignore]

    def generate_metrics(self) -> str:
        """Return the fleet's metrics in the Prometheus text format (0.0.4)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Return (body, content type), OpenMetrics when the *accept* header asks for it."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
