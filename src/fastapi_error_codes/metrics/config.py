"""MetricsConfig: the frozen, validated configuration of the monitoring part, and its presets.

``MetricsPreset`` keeps the original fastapi-error-code's preset spellings and values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from .._settings import ENV_PREFIX, Settings

__all__ = [
    "MAX_EVENTS_RANGE",
    "MAX_REDIS_SHARDS",
    "REDIS_URL_SCHEMES",
    "MetricsConfig",
    "MetricsPreset",
    "get_config_from_env",
]

#: URL schemes accepted for ``redis_url``; the scheme selects standalone, Cluster or Sentinel.
REDIS_URL_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)

#: The smallest and the largest ``max_events`` (the original's bounds).
MAX_EVENTS_RANGE = (100, 1_000_000)
#: The most shards ``redis_shards`` may name (readers trust no larger count stored in Redis).
MAX_REDIS_SHARDS = 64

#: The original's fields, read from ``METRICS_<FIELD>`` too.
_LEGACY_FIELDS = (
    "enabled",
    "collection_interval_ms",
    "max_events",
    "prometheus_enabled",
    "sentry_enabled",
    "sentry_dsn",
    "dashboard_enabled",
    "pii_patterns",
)

#: The switches of an all-off config (``disabled`` presets, the original's ``testing``).
_ALL_OFF: Mapping[str, Any] = MappingProxyType(
    {
        "enabled": False,
        "prometheus_enabled": False,
        "sentry_enabled": False,
        "dashboard_enabled": False,
    }
)

_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _positive(name: str, value: object, *, minimum: float = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"MetricsConfig.{name} must be a number >= {minimum}, got {value!r}")


def _whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(
            f"MetricsConfig.{name} must be a whole number from {low} to {high}, got {value!r}"
        )


def _check_max_events(value: object) -> None:
    low, high = MAX_EVENTS_RANGE
    allowed = f"a whole number from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"MetricsConfig.max_events must be {allowed}, got {value!r}")
    if value < low:
        raise ValueError(
            f"MetricsConfig.max_events must be at least {low} ({allowed}), got {value}"
        )
    if value > high:
        raise ValueError(
            f"MetricsConfig.max_events must not exceed {high} ({allowed}), got {value}"
        )


@dataclass(frozen=True)
class MetricsConfig(Settings):
    """Configuration of error metrics: collection, fleet store, exporters and endpoints."""

    #: The original fastapi-error-code's variables, read by ``from_env`` besides ``FEC_<FIELD>``
    #: (which wins when both are set), and only with the default prefix.
    legacy_env: ClassVar[Mapping[str, str]] = MappingProxyType(
        {f"METRICS_{name.upper()}": name for name in _LEGACY_FIELDS}
    )

    # --- the spec's fields ---
    enabled: bool = True
    collection_interval_ms: int = 60000
    max_events: int = 10000
    prometheus_enabled: bool = True
    sentry_enabled: bool = False
    sentry_dsn: str | None = field(default=None, repr=False)  # secrets stay out of logs
    dashboard_enabled: bool = True
    pii_patterns: Sequence[str] = ()  # stored as a tuple: the config stays hashable
    # --- the fleet ---
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    namespace: str = "fastapi_errors"
    flush_interval_ms: int = 1000
    retention_s: int = 86400
    max_series: int = 1000
    #: fleet-wide cap of request series and of error-by-route series (each); past it new
    #: ones fold into ``route="other"``
    max_route_series: int = 2000
    max_text_length: int = 1024
    max_pending: int = 10000
    max_events_per_flush: int = 1000
    redis_timeout_ms: int = 1000
    redis_max_connections: int = 16
    #: a batch counts as flushed once WAIT confirms it on this many replicas (0: no WAIT)
    redis_min_replicas: int = 0
    #: hash tags the Redis keys are spread over: on a Redis Cluster, N shards put the fleet's
    #: writes on up to N primaries (each worker writes to one, readers merge them all)
    redis_shards: int = 1
    #: fleet reads at once per worker, on threads of their own (never the app's threadpool)
    read_concurrency: int = 2
    #: how long a fleet read is reused by identical reads of this worker (0: never)
    read_cache_ms: int = 1000
    #: count every response by route, method and status class (``fastapi_requests_total``),
    #: and every error response by route (``fastapi_errors_by_route_total``)
    count_requests: bool = True
    # --- endpoints ---
    metrics_path: str = "/metrics"
    dashboard_prefix: str = "/api/metrics"
    auth_token: str | None = field(default=None, repr=False)
    #: whether the dashboard's JSON endpoints appear in the app's OpenAPI schema (/metrics never)
    include_in_schema: bool = True
    # --- Sentry policy ---
    sentry_capture_4xx: bool = False
    sentry_environment: str | None = None
    #: captures per error code and budget interval (0: no budget, every error is captured)
    sentry_capture_budget: int = 10
    sentry_budget_interval_s: int = 60
    #: the Sentry organisation's URL (``https://sentry.io/organizations/acme``): the dashboard
    #: links each recent error to its Sentry event
    sentry_base_url: str | None = None
    #: extra ``sentry_sdk.init`` options (``traces_sample_rate``, ``release``, ...), used when
    #: the library initialises Sentry; an app's own earlier ``sentry_sdk.init`` always wins
    sentry_options: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}),
        metadata={"env": False},
        hash=False,
        repr=False,  # may hold secrets
    )

    def __post_init__(self) -> None:
        """Validate every field; bad values raise ``ValueError`` naming what is allowed."""
        self._check_flags()
        _positive("collection_interval_ms", self.collection_interval_ms, minimum=1000)
        if self.collection_interval_ms % 1000:
            raise ValueError(
                "MetricsConfig.collection_interval_ms must be a whole number of seconds "
                f"(a multiple of 1000), got {self.collection_interval_ms!r}"
            )
        _check_max_events(self.max_events)
        _positive("flush_interval_ms", self.flush_interval_ms, minimum=10)
        _positive("retention_s", self.retention_s, minimum=60)
        if self.retention_s * 1000 < self.collection_interval_ms:
            raise ValueError("MetricsConfig.retention_s must cover at least one bucket")
        _positive("max_series", self.max_series)
        _positive("max_route_series", self.max_route_series)
        _positive("max_text_length", self.max_text_length, minimum=16)
        _positive("max_pending", self.max_pending, minimum=100)
        _positive("max_events_per_flush", self.max_events_per_flush)
        _positive("redis_timeout_ms", self.redis_timeout_ms, minimum=10)
        _positive("redis_max_connections", self.redis_max_connections, minimum=2)
        _whole("redis_min_replicas", self.redis_min_replicas, 0, 16)
        _whole("redis_shards", self.redis_shards, 1, MAX_REDIS_SHARDS)
        _whole("read_concurrency", self.read_concurrency, 1, 64)
        _whole("read_cache_ms", self.read_cache_ms, 0, 60_000)
        _whole("sentry_capture_budget", self.sentry_capture_budget, 0, 1_000_000)
        _whole("sentry_budget_interval_s", self.sentry_budget_interval_s, 1, 86_400)
        if isinstance(self.pii_patterns, str) or not all(
            isinstance(p, str) and p for p in self.pii_patterns
        ):
            raise ValueError("MetricsConfig.pii_patterns must be a list of non-empty strings")
        object.__setattr__(self, "pii_patterns", tuple(self.pii_patterns))
        if "{" in self.namespace or "}" in self.namespace:
            raise ValueError(
                f"MetricsConfig.namespace {self.namespace!r} must not contain braces: the "
                "library wraps it in a Redis Cluster hash tag itself"
            )
        if not _NAMESPACE_RE.match(self.namespace):
            raise ValueError(
                f"MetricsConfig.namespace {self.namespace!r} is not allowed: use 1-64 of "
                "letters, digits and _ . : -"
            )
        if self.redis_url is not None:
            scheme = self.redis_url.split("://", 1)[0] if "://" in self.redis_url else ""
            if scheme not in REDIS_URL_SCHEMES:
                raise ValueError(
                    f"MetricsConfig.redis_url has scheme {scheme!r}; allowed: "
                    + ", ".join(f"{s}://" for s in REDIS_URL_SCHEMES)
                )
            if self.redis_min_replicas and scheme.endswith("+cluster"):
                raise ValueError(
                    "MetricsConfig.redis_min_replicas is not supported on Redis Cluster yet "
                    "(allowed there: 0); it works with redis://, rediss:// and "
                    "redis+sentinel:// URLs"
                )
        for name in ("metrics_path", "dashboard_prefix"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("/") or value.endswith("/"):
                raise ValueError(
                    f"MetricsConfig.{name} must start with '/' and not end with one, got {value!r}"
                )
        if self.metrics_path == self.dashboard_prefix or self.metrics_path.startswith(
            self.dashboard_prefix + "/"
        ):
            raise ValueError(
                f"MetricsConfig.metrics_path {self.metrics_path!r} collides with the dashboard "
                f"under dashboard_prefix {self.dashboard_prefix!r}: give them separate paths"
            )
        self._check_sentry_options()
        base = self.sentry_base_url
        if base is not None and not (
            isinstance(base, str) and base.startswith(("https://", "http://")) and " " not in base
        ):
            raise ValueError(
                "MetricsConfig.sentry_base_url must be an http(s):// URL of the Sentry "
                f"organisation (https://sentry.io/organizations/acme), got {base!r}"
            )
        if self.auth_token is not None and len(self.auth_token) < 16:
            raise ValueError("MetricsConfig.auth_token must be at least 16 characters long")
        if self.sentry_enabled and not self.sentry_dsn:
            raise ValueError(
                "MetricsConfig.sentry_dsn is required when sentry_enabled is True: pass the "
                "project's DSN, or leave sentry_enabled False"
            )

    def _check_sentry_options(self) -> None:
        options = self.sentry_options
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise ValueError(
                "MetricsConfig.sentry_options must be a mapping of sentry_sdk.init keyword "
                f"arguments, got {options!r}"
            )
        if "dsn" in options:
            raise ValueError(
                "MetricsConfig.sentry_options must not hold 'dsn': set MetricsConfig.sentry_dsn"
            )
        object.__setattr__(self, "sentry_options", MappingProxyType(dict(options)))

    @property
    def bucket_width_s(self) -> int:
        """Width of one time bucket in seconds (``collection_interval_ms`` / 1000)."""
        return self.collection_interval_ms // 1000

    @property
    def forget_s(self) -> int:
        """A worker not seen for this long is forgotten, with its seq (at least a day)."""
        return max(self.retention_s, 86400)

    @property
    def live_window_s(self) -> float:
        """A worker whose last flush is younger than this counts as live."""
        return max(10.0, 5 * self.flush_interval_ms / 1000)

    @classmethod
    def development(cls, **overrides: Any) -> MetricsConfig:
        """Local development: in-process store, fast flushes, dashboard on, Sentry off."""
        return cls._preset({"flush_interval_ms": 500, "max_events": 1000}, overrides)

    @classmethod
    def production(cls, **overrides: Any) -> MetricsConfig:
        """Production: everything on; pass ``redis_url`` for fleet totals, ``auth_token``."""
        return cls._preset({"max_events": 10000, "flush_interval_ms": 1000}, overrides)

    @classmethod
    def testing(cls, **overrides: Any) -> MetricsConfig:
        """Tests: small bounds, fast flushes, no Sentry."""
        base = {"flush_interval_ms": 50, "max_events": 500, "sentry_enabled": False}
        return cls._preset(base, overrides)

    @classmethod
    def disabled(cls) -> MetricsConfig:
        """Everything off: no collection, no endpoints, no per-request cost."""
        return cls(**_ALL_OFF)


class MetricsPreset:
    """The original's presets, as static methods returning a ``MetricsConfig``.

    Each takes ``**overrides`` (any ``MetricsConfig`` field, e.g. ``redis_url=``) applied on
    top of the preset's values. ``MetricsConfig.development()`` and its siblings are this
    library's own presets (fast flushes, bounds for tests) and differ from these.
    """

    @staticmethod
    def development(**overrides: Any) -> MetricsConfig:
        """Collection on in 60 s buckets, 1000 events, Prometheus and dashboard on, Sentry off."""
        base = {
            "enabled": True,
            "collection_interval_ms": 60000,
            "max_events": 1000,
            "prometheus_enabled": True,
            "sentry_enabled": False,
            "dashboard_enabled": True,
        }
        return MetricsConfig._preset(base, overrides)

    @staticmethod
    def production(sentry_dsn: str, **overrides: Any) -> MetricsConfig:
        """30 s buckets, 50000 events, everything on, Sentry with *sentry_dsn* (required)."""
        if not sentry_dsn:
            raise ValueError(
                "sentry_dsn is required for production preset: "
                "MetricsPreset.production(sentry_dsn='https://<key>@<host>/<project>')"
            )
        base = {
            "enabled": True,
            "collection_interval_ms": 30000,
            "max_events": 50000,
            "prometheus_enabled": True,
            "sentry_enabled": True,
            "sentry_dsn": sentry_dsn,
            "dashboard_enabled": True,
        }
        return MetricsConfig._preset(base, overrides)

    @staticmethod
    def testing(**overrides: Any) -> MetricsConfig:
        """Everything off (no collection, exporters or endpoints), 500 events."""
        return MetricsConfig._preset({**_ALL_OFF, "max_events": 500}, overrides)

    @staticmethod
    def disabled(**overrides: Any) -> MetricsConfig:
        """Everything off: no collection, no exporters, no endpoints."""
        return MetricsConfig._preset(_ALL_OFF, overrides)


def get_config_from_env(
    environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
) -> MetricsConfig:
    """Build a MetricsConfig from the environment (``MetricsConfig.from_env``).

    Reads ``FEC_<FIELD>`` and, with the default prefix, the original's ``METRICS_<FIELD>`` for
    its eight fields (``METRICS_ENABLED``, ``METRICS_MAX_EVENTS``, ``METRICS_SENTRY_DSN``, ...);
    when both names of a field are set, ``FEC_<FIELD>`` wins.
    """
    return MetricsConfig.from_env(environ, prefix)
