"""DashboardAPI: the router that reads the store through the collector and serves the results."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, Response

from .._http import store_unavailable_as_503
from ..models import ErrorEvent, FleetView
from ..reads import ReadGate
from . import export, queries
from .page import page_response
from .queries import DEFAULT_POINTS
from .schemas import (
    ErrorCodeStatsResponse,
    MetricsSummaryResponse,
    RecentEventsResponse,
    RoutesResponse,
    TimeseriesResponse,
    TopErrorResponse,
)

if TYPE_CHECKING:
    from ..collector import ErrorMetricsCollector

__all__ = ["MAX_LIMIT", "MAX_STEP_S", "MAX_TOP", "MAX_WINDOW_S", "DashboardAPI"]

#: Upper bound of every ``limit`` query parameter.
MAX_LIMIT = 1000
#: Upper bound of ``top`` (lines besides "other").
MAX_TOP = 20
#: Absolute bounds of ``window`` and ``step`` in seconds; ``retention_s`` narrows ``window``.
MAX_WINDOW_S = 366 * 86400
MAX_STEP_S = 86400

# Query parameters shared by a JSON endpoint and its CSV twin.
TimeseriesWindow = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_WINDOW_S,
        description="Seconds to cover, at most retention_s (default: an hour)",
    ),
]
TimeseriesStep = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_STEP_S,
        description="Seconds per point, a multiple of the bucket width (default: about "
        f"{DEFAULT_POINTS} points)",
    ),
]
TimeseriesTop = Annotated[int, Query(ge=1, le=MAX_TOP, description='Lines besides "other"')]
RoutesWindow = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_WINDOW_S,
        description="Seconds to cover, at most retention_s; 0 for all time (default: an hour)",
    ),
]
RoutesLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many routes")]

#: The OpenAPI description of a CSV answer.
_CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV (text/csv; charset=utf-8) with a header row",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


class DashboardAPI:
    """An APIRouter (tag ``metrics``) serving the dashboard JSON and the operator page.

    As in the original, the router has no prefix of its own: the app chooses it when it
    includes the router, ``app.include_router(dashboard.router, prefix="/api/metrics")``
    (``setup_metrics`` does that with ``MetricsConfig.dashboard_prefix``).
    """

    def __init__(
        self,
        collector: ErrorMetricsCollector,
        prefix: str = "",
        dependencies: Sequence[Depends] | None = None,
        page_dependencies: Sequence[Depends] | None = None,
        *,
        gate: ReadGate | None = None,
    ) -> None:
        """Serve *collector*'s fleet view under *prefix* (none by default), behind *dependencies*.

        The HTML page (no data of its own) is guarded by *page_dependencies* when given, else
        by *dependencies*: ``setup_metrics`` leaves the bearer token off the page, because a
        browser opening a page cannot send it; the page's token field sends it on every fetch.
        Store reads go through *gate* (``setup_metrics`` shares the one of ``/metrics``; by
        default the dashboard makes its own).
        """
        self.collector = collector
        self.gate = gate if gate is not None else ReadGate(collector)
        self.router = APIRouter(prefix=prefix, tags=["metrics"])
        deps = list(dependencies or [])
        json_routes: list[tuple[str, Any, Any]] = [
            ("/summary", self.summary, MetricsSummaryResponse),
            ("/recent", self.recent, RecentEventsResponse),
            ("/by-code/{error_code}", self.by_code, ErrorCodeStatsResponse),
            ("/top-errors", self.top_errors, list[TopErrorResponse]),
            ("/timeseries", self.timeseries, TimeseriesResponse),
            ("/routes", self.routes, RoutesResponse),
        ]
        for path, endpoint, model in json_routes:
            self.router.add_api_route(
                path, endpoint, methods=["GET"], response_model=model, dependencies=deps
            )
        csv_routes: list[tuple[str, Any]] = [
            ("/summary.csv", self.summary_csv),
            ("/timeseries.csv", self.timeseries_csv),
            ("/routes.csv", self.routes_csv),
        ]
        for path, endpoint in csv_routes:
            self.router.add_api_route(
                path,
                endpoint,
                methods=["GET"],
                response_class=Response,
                responses=_CSV_RESPONSES,
                dependencies=deps,
            )
        # The page is HTML for people, not part of the API: kept out of the OpenAPI schema.
        self.router.add_api_route(
            "/",
            self.page,
            methods=["GET"],
            response_class=HTMLResponse,
            include_in_schema=False,
            name="fastapi_error_codes_dashboard_page",
            dependencies=list(deps if page_dependencies is None else page_dependencies),
        )

    # The JSON endpoints are ``async``: store reads (Redis round trips) run on the gate's own
    # threads, never in the app's threadpool nor on the event loop; the pure queries on the loop.
    async def _view(self, window_s: int, *, routes: bool = False) -> FleetView:
        """The fleet view of the last *window_s* seconds, read through the gate.

        *routes*: with the route series' buckets of the window (only ``/routes`` needs them).
        """
        with store_unavailable_as_503():
            return await self.gate.read(
                ("read", window_s, routes),
                partial(self.collector.read, window_s=window_s, routes=routes),
            )

    async def _events(self, limit: int, error_code: int | None) -> list[ErrorEvent]:
        """The newest *limit* events (of *error_code*), read through the gate."""
        with store_unavailable_as_503():
            return await self.gate.read(
                ("recent", limit, error_code),
                partial(self.collector.get_recent_events, limit, error_code),
            )

    @property
    def _sentry_base_url(self) -> str | None:
        return self.collector.config.sentry_base_url

    async def summary(self) -> MetricsSummaryResponse:
        """Fleet totals per code and status, errors in the last 5 minutes and hour, health."""
        view = await self._view(3600)
        return queries.summary(
            view, now=self.collector.now(), width=self.collector.config.bucket_width_s
        )

    async def recent(
        self,
        limit: int = Query(100, ge=1, le=MAX_LIMIT, description="How many events, newest first"),
        error_code: int | None = Query(None, ge=-1, le=9999, description="Only this code"),
    ) -> RecentEventsResponse:
        """The newest error events of the fleet (masked), newest first, with their count.

        With ``MetricsConfig.sentry_base_url`` set, an event whose request is the exemplar of
        its error-by-route series links to its Sentry event (``sentry_url``).
        """
        events = await self._events(limit, error_code)
        base = self._sentry_base_url
        # The exemplars come with any read; window 0 reads no buckets.
        view = await self._view(0) if base and events else None
        return queries.recent(events, now=self.collector.now(), view=view, sentry_base_url=base)

    async def by_code(
        self,
        error_code: int = Path(..., ge=-1, le=9999, description="Application error code"),
        limit: int = Query(20, ge=0, le=MAX_LIMIT, description="Recent events to include"),
    ) -> ErrorCodeStatsResponse:
        """Totals, statuses, windows and recent events of one error code (zeros if never seen)."""
        view = await self._view(3600)
        events = await self._events(limit, error_code) if limit else []
        return queries.code_stats(
            view,
            error_code,
            events,
            now=self.collector.now(),
            width=self.collector.config.bucket_width_s,
            sentry_base_url=self._sentry_base_url,
        )

    async def top_errors(
        self, limit: int = Query(10, ge=1, le=100, description="How many codes")
    ) -> list[TopErrorResponse]:
        """The error codes with the most errors, largest first."""
        return queries.top_errors(await self._view(0), limit)

    async def timeseries(
        self,
        window: TimeseriesWindow = None,
        step: TimeseriesStep = None,
        top: TimeseriesTop = 5,
    ) -> TimeseriesResponse:
        """Fleet-wide errors per step over the window: the top codes and an "other" line."""
        config = self.collector.config
        try:
            grid = queries.resolve_grid(window, step, config.bucket_width_s, config.retention_s)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        view = await self._view(grid.span_s)
        return queries.timeseries(view, grid, now=self.collector.now(), top=top)

    async def routes(self, window: RoutesWindow = None, limit: RoutesLimit = 20) -> RoutesResponse:
        """Requests, errors and error ratio per route and method over the window (0: all time),
        the routes with the most errors first."""
        config = self.collector.config
        try:
            window_s = queries.resolve_window(window, config.bucket_width_s, config.retention_s)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        view = await self._view(window_s, routes=True)
        return queries.routes(
            view, window_s, limit=limit, now=self.collector.now(), width=config.bucket_width_s
        )

    async def summary_csv(self) -> Response:
        """One row per error series: code, name, status, total, last 5 minutes, last hour."""
        view = await self._view(3600)
        rows = export.summary_rows(
            view, now=self.collector.now(), width=self.collector.config.bucket_width_s
        )
        return export.csv_response(
            export.render_csv(export.SUMMARY_HEADER, rows), "errors-summary.csv"
        )

    async def timeseries_csv(
        self,
        window: TimeseriesWindow = None,
        step: TimeseriesStep = None,
        top: TimeseriesTop = 5,
    ) -> Response:
        """``/timeseries`` as CSV: one row per step and line, oldest step first."""
        body = await self.timeseries(window, step, top)
        rows = export.timeseries_rows(body)
        return export.csv_response(
            export.render_csv(export.TIMESERIES_HEADER, rows), "errors-timeseries.csv"
        )

    async def routes_csv(
        self, window: RoutesWindow = None, limit: RoutesLimit = MAX_LIMIT
    ) -> Response:
        """``/routes`` as CSV: one row per route and method (every route by default)."""
        body = await self.routes(window, limit)
        return export.csv_response(
            export.render_csv(export.ROUTES_HEADER, export.routes_rows(body)), "errors-routes.csv"
        )

    def page(self) -> HTMLResponse:
        """The operator dashboard: one self-contained HTML page over the JSON endpoints."""
        return page_response()
