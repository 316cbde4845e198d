"""Rows 10 and 11: one request in process, through httpx's ASGI transport, us against FastAPI.

The same small app is built several ways and driven by ``httpx.AsyncClient`` over
``httpx.ASGITransport`` (no network, no server): N requests one after the other per sample,
the variants in interleaved rounds (A B C, then C B A, ...), figures are medians over rounds.
Wall time is the figure the aims are stated in; the process's CPU time of the same samples is
kept beside it (on a shared machine it is the steadier of the two).

- ``fastapi``: a bare FastAPI app; its error route raises ``HTTPException(404, "Item not
  found")``, answered by FastAPI's default handler.
- ``off``: ``setup_exception_handler(app)``; its error route raises a declared error (a
  ``BaseAppException`` subclass registered with ``@register_exception``), answered by the
  library's handler; every request gets its request id (``X-Request-ID``, made when missing).
- ``on``: the same with metrics on (``metrics_config=MetricsConfig(...)``, the memory store,
  ``/metrics`` and the dashboard on, request counting on).
- ``on, library routes first``: ``on`` with the library's routes put back before the app's
  after the build, as they were matched before commit 18d6c9f (which moves them behind the
  app's routes at build time): what that move saves.

Row 10 is the error path (``GET /missing/{id}``, a 404 body), row 11 a 2xx (``GET
/items/{id}``). Every response's status is checked, the bodies of a sample of them, and with
metrics on the requests (and errors) counted must equal the requests sent.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from . import prototypes
from ._common import Context, Result, interleaved, median, ratio

MESSAGE = "Item not found"
CODE = 4190


_declared_error: list[type[Exception]] = []


def _declared() -> type[Exception]:
    """The declared error of the bench app (declared once per process)."""
    if not _declared_error:
        from fastapi_error_codes import BaseAppException, register_exception

        @register_exception(error_code=CODE, message=MESSAGE, status_code=404)
        class BenchItemNotFound(BaseAppException):
            """404: the item does not exist."""

        _declared_error.append(BenchItemNotFound)
    return _declared_error[0]


def make_app(kind: str) -> tuple[Any, Any]:
    """The bench app as *kind* builds it, and its collector (None without metrics)."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI()
    collector = None
    before = 0
    if kind == "fastapi":

        @app.get("/missing/{item_id}")
        async def missing_plain(item_id: int) -> None:
            raise HTTPException(status_code=404, detail=MESSAGE)

    else:
        from fastapi_error_codes import setup_exception_handler

        error = _declared()
        config = None
        if kind != "off":
            from fastapi_error_codes.metrics import MetricsConfig

            config = MetricsConfig(sentry_enabled=False, count_requests=True)
        setup_exception_handler(app, metrics_config=config)
        before = len(app.router.routes) - (2 if config is not None else 0)  # /metrics, dashboard
        if config is not None:
            collector = app.state.metrics_collector

        @app.get("/missing/{item_id}")
        async def missing(item_id: int) -> None:
            raise error()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    if kind != "fastapi":
        prototypes.adjust_app(app)
    if kind == "on_routes_first" and move_library_routes_first(app, before) != 2:
        raise AssertionError("expected /metrics and the dashboard's router")
    return app, collector


def move_library_routes_first(app: Any, before: int) -> int:
    """Build *app*, then put the library's routes back before the app's; how many moved.

    *before*: how many routes (FastAPI's ``/docs`` and the like) preceded the library's.

    ``setup_metrics`` adds ``/metrics`` and the dashboard's router when it is called, usually
    before the app's own routes; since commit 18d6c9f it moves them behind the app's routes
    when the app is built. This variant undoes that, to measure what the move saves: every
    request of the app is then first matched against them, as before that commit.
    """
    from fastapi_error_codes.metrics.setup import _is_own_endpoint

    app.middleware_stack = app.build_middleware_stack()  # built now: not rebuilt later
    dashboard = getattr(app.state, "metrics_dashboard", None)
    router = getattr(dashboard, "router", None)

    def ours(route: Any) -> bool:
        if router is not None and getattr(route, "original_router", None) is router:
            return True
        return _is_own_endpoint(getattr(route, "endpoint", None))

    routes = app.router.routes
    own = [r for r in routes if ours(r)]
    others = [r for r in routes if not ours(r)]
    routes[:] = others[:before] + own + others[before:]
    changed = getattr(app.router, "_mark_routes_changed", None)
    if callable(changed):
        changed()
    return len(own)


async def _drive(client: Any, paths: list[str], status: int, check_every: int) -> None:
    for i, path in enumerate(paths):
        response = await client.get(path)
        if response.status_code != status:
            raise AssertionError(f"{path}: {response.status_code} {response.text[:200]}")
        if i % check_every == 0:
            _check_body(response.json(), status, path)


def _check_body(body: dict[str, Any], status: int, path: str) -> None:
    if status == 200:
        ok = body == {"item_id": int(path.rsplit("/", 1)[1])}
    elif "error_code" in body:  # ours
        ok = body["error_code"] == CODE and body["message"] == MESSAGE and len(body) == 6
    else:  # FastAPI's
        ok = body == {"detail": MESSAGE}
    if not ok:
        raise AssertionError(f"{path}: unexpected body {body}")


def _measure(
    ctx: Context, kinds: dict[str, str], path: str, status: int, n: int, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, int]]:
    """Wall and CPU µs per request of each variant (interleaved); requests sent to each."""
    import httpx

    if prototypes.wanted():
        ctx.log(f"prototypes applied (benchmark-only): {', '.join(prototypes.install())}")

    loop = asyncio.new_event_loop()
    apps = {label: make_app(kind) for label, kind in kinds.items()}
    clients = {
        label: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        for label, (app, _) in apps.items()
    }
    paths = [path.format(i % 50) for i in range(n)]
    sent = dict.fromkeys(kinds, 0)
    cpu: dict[str, list[float]] = {label: [] for label in kinds}

    def sample(label: str) -> Callable[[], float]:
        def one() -> float:
            gc.collect()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            loop.run_until_complete(_drive(clients[label], paths, status, max(1, n // 20)))
            wall, used = time.perf_counter() - wall0, time.process_time() - cpu0
            sent[label] += n
            cpu[label].append(used / n * 1e6)
            return wall / n * 1e6

        return one

    try:
        wall = interleaved({label: sample(label) for label in kinds}, repeats)
        for label in kinds:
            cpu[label] = cpu[label][1:]  # the warm-up round's
        _check_counts(apps, sent, status)
    finally:
        for client in clients.values():
            loop.run_until_complete(client.aclose())
        loop.close()
        for _app, collector in apps.values():
            if collector is not None:
                collector.close(timeout=5)
    return wall, cpu, sent


def _check_counts(apps: dict[str, tuple[Any, Any]], sent: dict[str, int], status: int) -> None:
    """With metrics on, every request sent is counted (and every error recorded)."""
    for label, (_app, collector) in apps.items():
        if collector is None:
            continue
        if not collector.flush(timeout=10):
            raise AssertionError(f"{label}: the collector did not flush")
        view = collector.store.read()
        responses = sum(view.requests.values())
        if responses != sent[label]:
            raise AssertionError(f"{label}: {responses} responses counted, {sent[label]} sent")
        by_route = sum(view.route_errors.values())
        if status >= 400 and (view.total != sent[label] or by_route != sent[label]):
            raise AssertionError(
                f"{label}: {view.total} errors and {by_route} by route counted, {sent[label]} sent"
            )


def _sizes(ctx: Context) -> tuple[int, int]:
    """Requests per sample and rounds (the issue's figure was 5 rounds of 3,000)."""
    return ctx.pick(3_000, 1_000, 20), ctx.pick(max(5, ctx.repeats), 5, 1)


def _paired(us: list[float], peer: list[float]) -> float:
    """Median over rounds of us/peer, each pair measured back to back in one round."""
    return median([a / b for a, b in zip(us, peer, strict=True)])


def _results(
    row: int,
    what: str,
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    peer: str,
    peer_name: str,
    aims: dict[str, float],
    extra: dict[str, Any],
    context: tuple[str, ...] = (),
) -> list[Result]:
    out: list[Result] = []
    applied = prototypes.applied()
    if applied:
        what = f"{what} [prototypes: {', '.join(applied)}]"
    for label in (*aims, *context):
        bound = aims.get(label)
        for clock, figures in (("wall", wall), ("CPU", cpu)):
            r = _paired(figures[label], figures[peer])
            headline = clock == "wall" and bound is not None
            out.append(
                Result(
                    row=row,
                    what=f"{what}, {label} vs {peer_name} ({clock} time)",
                    unit="us/request",
                    us=median(figures[label]),
                    peer=median(figures[peer]),
                    peer_name=peer_name,
                    ratio=r,
                    aim=f"<= {bound:.2f}" if headline else "- (context)",
                    met=r <= bound if headline and bound is not None else None,
                    note="ratio = median of per-round paired ratios" if headline else "",
                    samples={label: figures[label], peer: figures[peer]},
                    extra={
                        "variant": label,
                        "clock": clock,
                        **(extra if headline else {}),
                        "ratio_of_medians": ratio(median(figures[label]), median(figures[peer])),
                    },
                )
            )
    return out


def run_error(ctx: Context) -> list[Result]:
    """Row 10: a declared error answered by us (metrics off, on) vs FastAPI's HTTPException."""
    n, repeats = _sizes(ctx)
    ctx.log(f"row 10: in-process error path, {repeats} rounds of {n} requests")
    kinds = {
        "fastapi": "fastapi",
        "metrics off": "off",
        "metrics on": "on",
        "metrics on, library routes first (before 18d6c9f)": "on_routes_first",
    }
    wall, cpu, sent = _measure(ctx, kinds, "/missing/{}", 404, n, repeats)
    extra = {"requests_per_round": n, "rounds": repeats, "sent": sent, "cpu_us": cpu}
    return _results(
        10,
        "in process, one declared error (404) answered",
        wall,
        cpu,
        "fastapi",
        "FastAPI HTTPException, default handler",
        {"metrics off": 1.05, "metrics on": 1.10},
        extra,
        context=("metrics on, library routes first (before 18d6c9f)",),
    )


def run_ok(ctx: Context) -> list[Result]:
    """Row 11: a 2xx with metrics on (request counting on) vs the bare app."""
    n, repeats = _sizes(ctx)
    ctx.log(f"row 11: in-process 2xx, {repeats} rounds of {n} requests")
    kinds = {
        "bare": "fastapi",
        "metrics on": "on",
        "handlers only": "off",
        "metrics on, library routes first (before 18d6c9f)": "on_routes_first",
    }
    wall, cpu, sent = _measure(ctx, kinds, "/items/{}", 200, n, repeats)
    extra = {"requests_per_round": n, "rounds": repeats, "sent": sent, "cpu_us": cpu}
    return _results(
        11,
        "in process, one 2xx",
        wall,
        cpu,
        "bare",
        "the bare FastAPI app",
        {"metrics on": 1.03},
        extra,
        context=("handlers only", "metrics on, library routes first (before 18d6c9f)"),
    )
