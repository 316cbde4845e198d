"""setup_metrics: wire collector, exporter, Sentry and dashboard into a FastAPI app, once."""

from __future__ import annotations

import atexit
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypedDict

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..handlers import installed_config, setup_exception_handler
from ..observers import HandledError, add_error_observer, register_monitoring
from ._http import route_template, store_unavailable_as_503
from .auth import bearer_token_dependency
from .collector import ErrorMetricsCollector
from .config import MetricsConfig
from .dashboard import DashboardAPI
from .prometheus import PrometheusExporter
from .reads import ReadGate
from .sentry import SentryIntegration

__all__ = ["MetricsComponents", "setup_metrics"]


class MetricsComponents(TypedDict):
    """What ``setup_metrics`` installed: the keys of the specification's components dict."""

    collector: ErrorMetricsCollector
    exporter: PrometheusExporter | None
    sentry: SentryIntegration
    dashboard: DashboardAPI | None


_log = logging.getLogger("fastapi_error_codes.metrics")
_STATE_KEY = "fastapi_error_codes_metrics"


def _close_at_exit(ref: weakref.ReferenceType[ErrorMetricsCollector]) -> None:
    collector = ref()
    if collector is not None:
        collector.close(timeout=2.0)


_warned_unprotected = False


def _warn_unprotected_once(config: MetricsConfig) -> None:
    """Fleet mode (a Redis URL: production) without protection: say so, once per process."""
    global _warned_unprotected
    if config.redis_url and not _warned_unprotected:
        _warned_unprotected = True
        _log.warning(
            "fastapi_error_codes: %s and %s serve the fleet's error data without "
            "protection; set MetricsConfig.auth_token (FEC_AUTH_TOKEN) or pass auth_dependency",
            config.metrics_path,
            config.dashboard_prefix,
        )


def _wrap_lifespan(
    app: FastAPI, on_startup: Callable[[], None], on_shutdown: Callable[[], None]
) -> None:
    """Run *on_startup*/*on_shutdown* around the app's own lifespan (works on Starlette 1.x)."""
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        # Off the event loop: startup measures the store's clock (one round trip).
        await run_in_threadpool(on_startup)
        try:
            async with original(app_) as state:
                yield state
        finally:
            # The final flush belongs here: a UvicornWorker that gets SIGTERM runs the
            # lifespan shutdown and then dies by the signal, skipping atexit.
            await run_in_threadpool(on_shutdown)

    app.router.lifespan_context = lifespan


def setup_metrics(
    app: FastAPI,
    config: MetricsConfig | None = None,
    *,
    auth_dependency: Callable[..., Any] | None = None,
) -> MetricsComponents:
    """Install error metrics on *app*; returns (and keeps on app.state) the components.

    Keys: ``collector``, ``exporter`` (None if Prometheus is off), ``sentry``, ``dashboard``
    (None if off). Calling it again returns the same components: nothing is counted twice.
    """
    existing: MetricsComponents | None = getattr(app.state, _STATE_KEY, None)
    if existing is not None:
        return existing.copy()
    config = config or MetricsConfig()
    sentry = SentryIntegration(config)
    collector = ErrorMetricsCollector(config)
    components = MetricsComponents(
        collector=collector, exporter=None, sentry=sentry, dashboard=None
    )
    setattr(app.state, _STATE_KEY, components)
    for name, component in components.items():
        setattr(app.state, f"metrics_{name}", component)
    if not config.enabled:
        return components.copy()

    if installed_config(app) is None:
        # Every error is counted where the handlers answer it: install them if the app has not.
        setup_exception_handler(app)

    record = collector.record
    metrics_path = config.metrics_path if config.prometheus_enabled else None
    dashboard: DashboardAPI | None = None  # set below; read by record_error at call time

    def record_error(request: Request, error: HandledError) -> None:
        scope = request.scope
        path = route_template(scope)
        # A 401/422/503 of /metrics or the dashboard is not an error of the app. The dashboard's
        # routes are known by their endpoint (its bound methods), whatever prefix serves them.
        if dashboard is not None and getattr(scope.get("endpoint"), "__self__", None) is dashboard:
            return
        if path is not None and path == metrics_path:
            return
        try:
            record(
                error.error_code,
                error.error_name,
                error.status_code,
                error.message,
                error.detail,
                path,
                request.scope.get("method"),
            )
        except Exception:
            collector.note_dropped()  # exported as fastapi_errors_dropped_total
            raise  # notify() logs it, once

    add_error_observer(app, record_error)
    if sentry.enabled:
        # What the capture budget skips is summed fleet-wide, like the errors themselves.
        sentry.on_skipped = collector.note_sentry_skipped
        add_error_observer(app, sentry.observe)

    # The app's own dependency guards everything; the bearer token guards every data endpoint
    # but not the data-free HTML page, which a browser must open before it can send a header.
    user_deps = [Depends(auth_dependency)] if auth_dependency is not None else []
    token_deps = [Depends(bearer_token_dependency(config.auth_token))] if config.auth_token else []
    deps = token_deps + user_deps
    # One gate per collector: /metrics and the dashboard share its threads, flights and cache.
    gate = app.state.metrics_read_gate = ReadGate(collector)
    if config.prometheus_enabled:
        exporter = PrometheusExporter(collector)  # a clear ImportError without the extra
        components["exporter"] = app.state.metrics_exporter = exporter
        from prometheus_client.exposition import choose_encoder

        async def metrics(request: Request) -> Response:
            accept = request.headers.get("accept")
            # Requests that ask for the same format share one read (and its result).
            key = ("metrics", choose_encoder(accept or "")[1])
            with store_unavailable_as_503():
                body, content_type = await gate.read(key, partial(exporter.render, accept))
            return Response(content=body, media_type=content_type)

        app.add_api_route(
            config.metrics_path,
            metrics,
            methods=["GET"],
            include_in_schema=False,
            dependencies=deps,
            name="fastapi_error_codes_metrics",
        )
    if config.dashboard_enabled:
        dashboard = DashboardAPI(
            collector, dependencies=deps, page_dependencies=user_deps, gate=gate
        )
        components["dashboard"] = app.state.metrics_dashboard = dashboard
        # The router has no prefix of its own (as the original's): the app gives it one.
        app.include_router(dashboard.router, prefix=config.dashboard_prefix)
    if not deps and (config.prometheus_enabled or config.dashboard_enabled):
        _warn_unprotected_once(config)

    def startup() -> None:
        collector.start()
        sentry.initialize()

    def shutdown() -> None:
        collector.close()
        sentry.flush(timeout=2.0)
        gate.close()

    _wrap_lifespan(app, startup, shutdown)
    atexit.register(_close_at_exit, weakref.ref(collector))
    return components.copy()


# setup_exception_handler(app, metrics_config=MetricsConfig(...)) lands here.
register_monitoring(MetricsConfig, setup_metrics)
