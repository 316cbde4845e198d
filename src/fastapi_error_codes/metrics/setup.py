"""setup_metrics: wire collector, exporter, Sentry and dashboard into a FastAPI app, once.

One collector per app tree: an app mounted in another one with metrics (``app.mount``) gives
up its own components for those of the app it is mounted in when that app's middleware stack
is built (:func:`_adopt`): its errors are counted once, by that app's collector, under the full
route template, and its endpoints (if any) serve the same data.
"""

from __future__ import annotations

import atexit
import logging
import re
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypedDict

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount, WebSocketRoute, compile_path
from starlette.types import Scope

from .._sent import Sent, add_request_hook, sent_record
from .._tree import add_build_hook, app_chain, on_mount
from ..handlers import installed_config, setup_exception_handler
from ..observers import (
    ErrorObserver,
    HandledError,
    add_error_observer,
    register_monitoring,
    remove_error_observer,
)
from ._http import route_template, store_unavailable_as_503
from .auth import bearer_token_dependency
from .buffer import UNMATCHED_ROUTE
from .collector import ErrorMetricsCollector
from .config import MetricsConfig
from .dashboard import DashboardAPI
from .prometheus import PrometheusExporter
from .reads import ReadGate
from .sentry import SentryIntegration

__all__ = ["UNDECLARED", "MetricsComponents", "setup_metrics"]


class MetricsComponents(TypedDict):
    """What ``setup_metrics`` installed: the keys of the specification's components dict."""

    collector: ErrorMetricsCollector
    exporter: PrometheusExporter | None
    sentry: SentryIntegration
    dashboard: DashboardAPI | None


_log = logging.getLogger("fastapi_error_codes.metrics")
_STATE_KEY = "fastapi_error_codes_metrics"
_NODE_KEY = "fastapi_error_codes_metrics_node"
#: Attribute marking the library's own endpoint functions (the dashboard's are its methods).
_OWN_ENDPOINT_ATTR = "__fastapi_error_codes_endpoint__"
#: Statuses of a request the library's own endpoints refused (authentication).
_REFUSED = frozenset({401, 403})
#: The error name of an error response no handler answered (its code is its status).
UNDECLARED = "Undeclared"


class _Node:
    """The monitoring of one app: the components its endpoints and observers use.

    ``components`` are the app's own until it is found mounted in an app with metrics; then
    they are that app's, and the observers this app registered are withdrawn (the outer app's
    observers see its errors: counted once).
    """

    __slots__ = ("components", "gate", "observers", "own", "routes")

    def __init__(self, components: MetricsComponents, gate: ReadGate) -> None:
        self.own = components
        self.components = components
        self.gate = gate
        self.observers: list[ErrorObserver] = []
        #: the app's routes, for requests answered before routing (set at each build)
        self.routes = _RouteMap(None, [])

    def count_request(self, scope: Scope, sent: Sent) -> None:
        """A request hook: count the response by route, and an error response by route.

        An error a handler answered is counted under its code; a response of 400 or more that
        no handler answered (returned, not raised) under its status as code, named
        ``Undeclared``. Not counted: requests of an app mounted in one with metrics (that
        app counts them) and requests to the library's own endpoints.
        """
        if self.components is not self.own or sent.counted:
            return  # an app with metrics it is mounted in counts it (linked, or not: once)
        sent.counted = True
        if _is_own_endpoint(scope.get("endpoint")):
            return
        status = sent.status
        assert status is not None  # hooks run only for a response that started
        handled = sent.error
        error: tuple[int, str, int] | None = None
        if handled is not None and handled.status_code == status:
            error = (handled.error_code, handled.error_name, status)
        elif status >= 400:  # returned, not raised (or a middleware replaced our answer)
            error = (status, UNDECLARED, status)
        self.own["collector"].count_request(
            route_template(scope) or self.routes.match(scope) or UNMATCHED_ROUTE,
            scope["method"],
            status,
            error,
            (sent.request_id, sent.trace_id, sent.sentry_event_id, sent.event_id)
            if error
            else None,
        )

    def adopt(self, app: Starlette, outer: _Node) -> None:
        """Use *outer*'s components from now on; this app's own are closed."""
        if outer is self or self.components is outer.components:
            return
        for observer in self.observers:
            remove_error_observer(app, observer)
        collector = outer.components["collector"]
        exporter = self.own["exporter"]
        if exporter is not None:
            self.own["exporter"] = outer.components["exporter"] or PrometheusExporter(collector)
        dashboard = self.own["dashboard"]
        if dashboard is not None:
            dashboard.collector = collector
            dashboard.gate = outer.gate
        old_collector, old_gate = self.components["collector"], self.gate
        self.components = outer.components
        self.gate = outer.gate
        for name, component in outer.components.items():
            setattr(app.state, f"metrics_{name}", component)
        setattr(app.state, _STATE_KEY, outer.components)
        app.state.metrics_read_gate = outer.gate
        old_gate.close()
        old_collector.close(timeout=0.5)


def _node(app: object) -> _Node | None:
    node = getattr(getattr(app, "state", None), _NODE_KEY, None)
    return node if isinstance(node, _Node) else None


def _adopt(parent: Starlette, sub: Starlette) -> None:
    """An app with metrics mounted in one with metrics uses the outer app's components."""
    inner = _node(sub)
    if inner is None:
        return
    outer = next((n for n in map(_node, app_chain(parent)) if n is not None), None)
    if outer is not None:
        inner.adopt(sub, outer)


on_mount(_adopt)


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

    def record_error(request: Request, error: HandledError) -> None:
        scope = request.scope
        # A 401/422/503 of /metrics or the dashboard (of this app or one mounted in it) is not
        # an error of the app; a refused request is counted in its own self-health series.
        if _is_own_endpoint(scope.get("endpoint")):
            if error.status_code in _REFUSED:
                collector.note_refused()
            return
        path = route_template(scope)
        try:
            event_id = record(
                error.error_code,
                error.error_name,
                error.status_code,
                error.message,
                error.detail,
                path,
                request.scope.get("method"),
                error.request_id,
                error.trace_id,
            )
        except Exception:
            collector.note_dropped()  # exported as fastapi_errors_dropped_total
            raise  # notify() logs it, once
        sent = sent_record(scope)
        if sent is not None:
            sent.event_id = event_id  # the series' exemplar names the event (dashboard links)

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
    node = _Node(components, gate)
    setattr(app.state, _NODE_KEY, node)
    node.observers.append(record_error)
    if sentry.enabled:
        node.observers.append(sentry.observe)
    if config.count_requests:
        add_request_hook(app, node.count_request)
    if config.prometheus_enabled:
        exporter = PrometheusExporter(collector)  # a clear ImportError without the extra
        components["exporter"] = app.state.metrics_exporter = exporter
        from prometheus_client.exposition import choose_encoder

        async def metrics(request: Request) -> Response:
            accept = request.headers.get("accept")
            # Requests that ask for the same format share one read (and its result).
            key = ("metrics", choose_encoder(accept or "")[1])
            own = node.own["exporter"]  # the outer app's collector once mounted in one
            assert own is not None
            with store_unavailable_as_503():
                body, content_type = await node.gate.read(key, partial(own.render, accept))
            return Response(content=body, media_type=content_type)

        setattr(metrics, _OWN_ENDPOINT_ATTR, True)

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
        app.include_router(
            dashboard.router,
            prefix=config.dashboard_prefix,
            include_in_schema=config.include_in_schema,
        )
    if not deps and (config.prometheus_enabled or config.dashboard_enabled):
        _warn_unprotected_once(config)
    # Checked when the middleware stack is built: every route of the app is there by then.
    add_build_hook(app, _check_paths)

    def startup() -> None:
        if node.components is not node.own:  # mounted in an app with metrics: that one runs
            return
        collector.start()
        sentry.initialize()

    def shutdown() -> None:
        if node.components is not node.own:
            return
        collector.close()
        sentry.flush(timeout=2.0)
        gate.close()

    _wrap_lifespan(app, startup, shutdown)
    atexit.register(_close_at_exit, weakref.ref(collector))
    return components.copy()


def _is_own_endpoint(endpoint: object) -> bool:
    """Whether *endpoint* is /metrics or a dashboard endpoint of any app set up here."""
    if getattr(endpoint, _OWN_ENDPOINT_ATTR, False) is True:
        return True
    return isinstance(getattr(endpoint, "__self__", None), DashboardAPI)


@dataclass(frozen=True, slots=True)
class _Claim:
    """A path an app answers: a route's template, or a mount's prefix."""

    path: str
    endpoint: object
    methods: frozenset[str] | None
    position: int
    name: str | None
    mount: bool
    websocket: bool = False

    @property
    def ours(self) -> bool:
        """Whether it is /metrics or a dashboard endpoint of the library."""
        return not self.mount and _is_own_endpoint(self.endpoint)

    def describe(self) -> str:
        """The claim as an error message names it."""
        module = getattr(self.endpoint, "__module__", None)
        label = repr(self.name) if self.name else repr(self.path)
        return f"{label} ({module})" if module else label


def _claims(app: Starlette) -> list[_Claim]:
    """Every path *app*'s routes answer, included routers flattened, in routing order."""
    found: list[_Claim] = []
    for position, route in enumerate(app.router.routes):
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # FastAPI's included router (0.137 and later)
            for context in contexts():
                original = getattr(context, "original_route", None)
                found.append(_claim(context.path, context.endpoint, original, position))
            continue
        path = getattr(route, "path", None)
        if isinstance(path, str):
            found.append(_claim(path, getattr(route, "endpoint", None), route, position))
    return found


def _claim(path: str, endpoint: object, route: object, position: int) -> _Claim:
    methods = getattr(route, "methods", None)
    return _Claim(
        path=path,
        endpoint=endpoint if endpoint is not None else getattr(route, "app", None),
        methods=frozenset(methods) if methods else None,
        position=position,
        name=getattr(route, "name", None),
        mount=isinstance(route, Mount),
        websocket=isinstance(route, WebSocketRoute),
    )


def _check_paths(app: Starlette) -> None:
    """Refuse to start when the library's endpoints and the app's routes claim one path."""
    node = _node(app)
    if node is None:
        return
    config = node.own["collector"].config
    claims = _claims(app)
    node.routes = _RouteMap(app, claims)
    for own in (c for c in claims if c.ours):
        for other in (c for c in claims if not c.ours):
            before = other.position < own.position
            if not _collide(own, other, before=before):
                continue
            hint = (
                "serve ours elsewhere (MetricsConfig.metrics_path='/error-metrics'), or "
                "turn ours off (prometheus_enabled=False) and register the collector in the "
                "app's registry: PrometheusExporter(collector, registry=prometheus_client."
                "REGISTRY); see docs/API.md, 'Beside another /metrics'"
                if own.path == config.metrics_path
                else "move the dashboard (MetricsConfig.dashboard_prefix) or the route"
            )
            raise ValueError(
                f"fastapi_error_codes: {own.path} is also served by the app's route "
                f"{other.describe()}, added {'before' if before else 'after'} it: only one of "
                f"them would answer. {hint}"
            )
    _move_ours_back(app, claims)


class _RouteMap:
    """The app's route templates, to name the route of a request answered before routing.

    A middleware that answers by itself (a rate limiter's 429) or copies the scope leaves no
    route in it; such a request is still counted under the template its path matches, the
    first one that takes its method too (else the first that matches the path, as routing
    would answer 405), or not at all when none matches.
    """

    __slots__ = ("_app", "_routes")

    def __init__(self, app: object, claims: list[_Claim]) -> None:
        self._app = app
        self._routes: list[tuple[re.Pattern[str], str, frozenset[str] | None]] = []
        for claim in claims:
            if claim.ours or claim.websocket:
                continue
            if claim.mount:
                prefix = claim.path.rstrip("/")
                self._routes.append((compile_path(prefix or "/")[0], prefix or "/", None))
                self._routes.append((_mount_pattern(prefix), prefix or "/", None))
            else:
                self._routes.append((compile_path(claim.path)[0], claim.path, claim.methods))

    def match(self, scope: Scope) -> str | None:
        """The template of the route *scope*'s path and method would reach, or None.

        Only for a request that stayed in this map's app: one that entered a mounted app
        (its own app in the scope) is that app's to name.
        """
        if scope.get("app") is not self._app:
            return None
        path: str = scope["path"]
        root: str = scope.get("root_path") or ""
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root) :] or "/"  # the path the routes see (behind a proxy prefix)
        method = scope.get("method")
        partial = None
        for pattern, template, methods in self._routes:
            if pattern.fullmatch(path) is None:
                continue
            if methods is None or method in methods or (method == "HEAD" and "GET" in methods):
                return template
            partial = partial or template
        return partial


def _move_ours_back(app: Starlette, claims: list[_Claim]) -> None:
    """Put the library's routes after the app's, so the app's requests are matched first.

    Routing takes the first match: every request to the app would otherwise try /metrics and
    each dashboard route first. They go just before the first route (or mount) that could
    answer one of their paths (a catch-all, an SPA fallback), so they answer what they
    answered before; the paths were checked (:func:`_check_paths`) already.
    """
    ours = [c for c in claims if c.ours]
    if not ours:
        return
    mine = {c.position for c in ours}
    routes = app.router.routes
    claimed = {c.position for c in claims}
    blocking = [
        c.position
        for c in claims
        if c.position not in mine and any(_collide(o, c, before=True) for o in ours)
    ]
    # A route without a path (a Host, a route of another kind) may answer anything: ours
    # stay before it.
    blocking += [i for i in range(len(routes)) if i not in claimed]
    # Never earlier than they were: only what came after them may now come before them.
    stop = min((b for b in blocking if b > min(mine)), default=len(routes))
    order = (
        [r for i, r in enumerate(routes) if i not in mine and i < stop]
        + [routes[i] for i in sorted(mine)]
        + [r for i, r in enumerate(routes) if i not in mine and i >= stop]
    )
    if order != routes:
        routes[:] = order
        changed = getattr(app.router, "_mark_routes_changed", None)
        if callable(changed):  # FastAPI 0.137 and later cache included routers' routes
            changed()


def _mount_pattern(prefix: str) -> re.Pattern[str]:
    """What a mount at *prefix* (a template: ``/{tenant}``) answers below it."""
    return compile_path(prefix + "/{fec_rest:path}")[0]


def _collide(own: _Claim, other: _Claim, *, before: bool) -> bool:
    """Whether one of the two GET routes keeps the other from answering what it should.

    Routing takes the first match: a route (or mount) added *before* ours collides when it
    matches our path (``/metrics``, ``/{anything}``); one added *after* ours when ours matches
    its path (the same path; ``/api/metrics/by-code/latest``). A catch-all added after ours
    (an SPA fallback) shadows nothing.
    """
    if other.websocket:
        return False
    if other.mount:
        prefix = other.path.rstrip("/")
        return before and (
            own.path == prefix or _mount_pattern(prefix).fullmatch(own.path) is not None
        )
    if other.methods is not None and "GET" not in other.methods:
        return False
    if other.path == own.path:
        return True
    if before:
        return compile_path(other.path)[0].fullmatch(own.path) is not None
    return compile_path(own.path)[0].fullmatch(other.path) is not None


# setup_exception_handler(app, metrics_config=MetricsConfig(...)) lands here.
register_monitoring(MetricsConfig, setup_metrics)
