"""PrometheusExporter: the fleet's error series, rendered by prometheus_client's exposition code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .models import OVERFLOW_CODE, FleetView

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry
    from prometheus_client.samples import Exemplar

    from .collector import ErrorMetricsCollector

__all__ = [
    "DEFAULT_NAMESPACE",
    "EXEMPLAR_MAX_CHARS",
    "PrometheusExporter",
    "require_prometheus_client",
]

#: The default metric-name prefix: ``fastapi_errors_total``, ``fastapi_errors_by_code``, ...
DEFAULT_NAMESPACE = "fastapi"

#: A metric-name prefix (empty: no prefix). Colons, legal in names, are meant for recording
#: rules, and prometheus_client's OpenMetrics output rewrites them in sample names only.
_NAMESPACE_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

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


def _check_namespace(namespace: object) -> str:
    """*namespace* if it is a valid metric-name prefix (or ""), else a ValueError."""
    if not isinstance(namespace, str) or (namespace and _NAMESPACE_RE.fullmatch(namespace) is None):
        raise ValueError(
            "PrometheusExporter namespace must be a metric-name prefix of letters, digits "
            f"and _ ([a-zA-Z_][a-zA-Z0-9_]*), or '' for none; got {namespace!r}"
        )
    return namespace


class _FleetCollector:
    """A prometheus_client custom collector that reads the fleet view at each scrape."""

    def __init__(self, collector: ErrorMetricsCollector, namespace: str) -> None:
        self._collector = collector
        self.namespace = namespace

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        collector = self._collector
        base = f"{self.namespace}_errors" if self.namespace else "errors"
        view = collector.read(window_s=0)
        cap = collector.config.max_text_length
        yield CounterMetricFamily(
            base,
            "Total number of application errors",
            value=view.total,
            created=view.created_s,
        )
        by_code = GaugeMetricFamily(
            base + "_by_code",
            "Errors grouped by application error code",
            labels=["error_code", "error_name", "status_code"],
        )
        for (code, status), n in sorted(view.totals.items()):
            name = "other" if code == OVERFLOW_CODE else view.names.get(code, "")
            by_code.add_metric([_label(code, cap), name[:cap], _label(status, cap)], n)
        yield by_code
        yield from self._routes(view, base, cap)
        by_status = GaugeMetricFamily(
            base + "_by_status", "Errors grouped by HTTP status code", labels=["status_code"]
        )
        for status, n in sorted(view.by_status().items()):
            by_status.add_metric([_label(status, cap)], n)
        yield by_status
        yield CounterMetricFamily(
            base + "_dropped",
            "Errors recorded but not counted because a bound was exceeded",
            value=view.dropped,
        )
        yield CounterMetricFamily(
            base + "_events_dropped",
            "Error events counted but not kept in the recent-events stream (bounds)",
            value=view.events_dropped,
        )
        yield CounterMetricFamily(
            base + "_series_folded",
            "Errors folded into the overflow series because max_series was reached",
            value=view.series_folded,
        )
        yield GaugeMetricFamily(
            base + "_workers", "Workers with a recent flush heartbeat", value=view.workers
        )
        yield GaugeMetricFamily(
            base + "_flush_age_seconds",
            "Age of the oldest live worker's last successful flush",
            value=view.oldest_flush_age_s if view.oldest_flush_age_s is not None else 0.0,
        )
        # Self-health: every series is the fleet's, kept in the store, so it is the same
        # whichever worker answers the scrape (a per-process counter behind one Service
        # target would jump between workers and read as resets).
        yield CounterMetricFamily(
            base + "_flush_failures",
            "Failed flush attempts of all workers (reported with their next applied batch)",
            value=view.flush_failures,
        )
        yield GaugeMetricFamily(
            base + "_buffered",
            "Errors the live workers still held locally after their last flush",
            value=view.buffered,
        )
        yield CounterMetricFamily(
            base + "_sentry_skipped",
            "Sentry captures skipped by the per-code capture budget (the errors are counted)",
            value=view.sentry_skipped,
        )
        yield CounterMetricFamily(
            base + "_refused",
            "Requests to the library's own endpoints (/metrics, dashboard) refused by "
            "authentication (401/403), fleet-wide",
            value=view.refused,
        )
        yield CounterMetricFamily(
            base + "_route_series_folded",
            'Requests and errors counted under route="other" because max_route_series was reached',
            value=view.route_folded,
        )
        yield GaugeMetricFamily(
            base + "_store_malformed",
            "Stored entries the last read skipped because they could not be parsed",
            value=view.malformed,
        )
        evictable = GaugeMetricFamily(
            base + "_store_evictable",
            "1 when the store's maxmemory-policy may evict this library's keys",
            labels=["policy"],
        )
        evictable.add_metric([view.eviction_policy or ""], 1 if view.eviction_policy else 0)
        yield evictable

    def _routes(self, view: FleetView, base: str, cap: int) -> Iterator[Any]:
        """Every response by route (the request totals) and every error response by route."""
        from prometheus_client.core import CounterMetricFamily

        requests = CounterMetricFamily(
            f"{self.namespace}_requests" if self.namespace else "requests",
            "HTTP responses by route template, method and status class",
            labels=["route", "method", "status_class"],
        )
        for (route, method, status_class), n in sorted(view.requests.items()):
            requests.add_metric([route, method, f"{status_class}xx"], n)
        yield requests
        by_route = CounterMetricFamily(
            base + "_by_route",
            "Error responses by error code, status, route template and method (an error no "
            "handler raised has its status as code and the name Undeclared)",
            labels=["error_code", "error_name", "status_code", "route", "method"],
        )
        exemplars = view.exemplars
        for key, n in sorted(view.route_errors.items()):
            code, name, status, route, method = key
            found = exemplars.get(key)
            by_route.add_metric(
                [_label(code, cap), name[:cap], _label(status, cap), route, method],
                n,
                exemplar=_exemplar(found) if found else None,
            )
        yield by_route


#: The most characters an exemplar's label names and values may have together (OpenMetrics).
EXEMPLAR_MAX_CHARS = 128


def _exemplar(found: dict[str, Any]) -> Exemplar | None:
    """The OpenMetrics exemplar of an error-by-route series: its newest request's ids.

    ``trace_id`` first (what tracing backends link), then ``request_id`` and ``sentry_id``, each
    while the labels stay within the 128 characters OpenMetrics allows.
    """
    from prometheus_client.samples import Exemplar

    labels: dict[str, str] = {}
    used = 0
    for name, key in (("trace_id", "t"), ("request_id", "r"), ("sentry_id", "s")):
        value = found.get(key)
        if value and used + len(name) + len(value) <= EXEMPLAR_MAX_CHARS:
            labels[name] = value
            used += len(name) + len(value)
    if not labels:
        return None
    return Exemplar(labels, 1.0, found.get("ts"))


class PrometheusExporter:
    """Renders the fleet's error metrics in the Prometheus text or OpenMetrics format.

    *namespace* is the metric-name prefix: the default ``"fastapi"`` gives
    ``fastapi_errors_total``, ``fastapi_errors_by_code`` and the rest; ``"myapp"`` gives
    ``myapp_errors_total``; ``""`` gives ``errors_total``. The prefix is letters, digits and
    ``_`` (``[a-zA-Z_][a-zA-Z0-9_]*``): colons, legal in metric names, are meant for recording
    rules, and prometheus_client's OpenMetrics output would rewrite them in sample names only.
    With ``enabled`` false, nothing is read or rendered: ``generate_metrics()`` returns ``""``
    and ``render()`` an empty body.
    """

    def __init__(
        self,
        collector: ErrorMetricsCollector,
        enabled: bool = True,
        namespace: str = DEFAULT_NAMESPACE,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """Export *collector*'s fleet view through *registry* (a private one by default)."""
        require_prometheus_client()
        from prometheus_client import CollectorRegistry

        self.collector = collector
        self.enabled = enabled
        self._fleet = _FleetCollector(collector, _check_namespace(namespace))
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.registry.register(self._fleet)  # type: ignore[arg-type,unused-ignore]

    @property
    def namespace(self) -> str:
        """The metric-name prefix (``"fastapi"``: ``fastapi_errors_total``; ``""``: none)."""
        return self._fleet.namespace

    @namespace.setter
    def namespace(self, value: str) -> None:
        self._fleet.namespace = _check_namespace(value)

    def generate_metrics(self) -> str:
        """Return the fleet's metrics in the Prometheus text format (0.0.4); "" if disabled."""
        if not self.enabled:
            return ""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Return (body, content type), OpenMetrics when the *accept* header asks for it.

        Disabled: an empty body in the plain text format (valid for any scraper: no series).
        """
        from prometheus_client.exposition import choose_encoder

        if not self.enabled:
            return b"", choose_encoder("")[1]
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
