"""Monitoring in apps as people build them: mounted apps, another /metrics, path clashes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from fastapi_error_codes import BaseAppException, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig, PrometheusExporter, setup_metrics

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Gone(BaseAppException):
    """A declared error, raised by hand."""


def config(**overrides: object) -> MetricsConfig:
    return MetricsConfig.testing(flush_interval_ms=60_000, **overrides)  # type: ignore[arg-type]


def sub_app() -> FastAPI:
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    def item(item_id: int) -> None:
        raise Gone(error_code=7410, status_code=410, message="gone")

    return sub


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


# --- mounted apps ------------------------------------------------------------------------------


def test_an_error_of_a_mounted_app_is_counted_once_under_its_full_route() -> None:
    app = FastAPI()
    setup_metrics(app, config())
    app.mount("/admin", sub_app())
    with TestClient(app) as client:
        assert client.get("/admin/items/1").status_code == 410
        summary = client.get("/api/metrics/summary").json()
        (event,) = client.get("/api/metrics/recent").json()["events"]
    assert summary["total_errors"] == 1
    assert event["path"] == "/admin/items/{item_id}"


def test_a_mounted_app_with_metrics_of_its_own_shares_the_outer_collector() -> None:
    sub = sub_app()
    setup_exception_handler(sub, metrics_config=config())
    sub_collector = sub.state.metrics_collector
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config())
    app.mount("/admin", sub)
    with TestClient(app) as client:
        for item in (1, 2):
            assert client.get(f"/admin/items/{item}").status_code == 410
        outer = client.get("/api/metrics/summary").json()
        inner = client.get("/admin/api/metrics/summary").json()
        inner_metrics = client.get("/admin/metrics").text
        (event, _) = client.get("/api/metrics/recent").json()["events"]
    # One collector: the mounted app's endpoints serve the outer one's data.
    assert sub.state.metrics_collector is app.state.metrics_collector
    assert sub.state.metrics_read_gate is app.state.metrics_read_gate
    assert sub_collector is not app.state.metrics_collector
    assert outer["total_errors"] == inner["total_errors"] == 2
    assert samples(inner_metrics, "fastapi_errors_total") == {(): 2.0}
    assert event["path"] == "/admin/items/{item_id}"


def test_the_own_endpoints_of_a_mounted_app_are_not_counted_as_app_errors() -> None:
    sub = sub_app()
    setup_metrics(sub, config(auth_token=TOKEN))
    app = FastAPI()
    setup_metrics(app, config(auth_token=TOKEN))
    app.mount("/admin", sub)
    with TestClient(app) as client:
        assert client.get("/admin/metrics").status_code == 401
        assert client.get("/admin/api/metrics/summary").status_code == 401
        summary = client.get("/api/metrics/summary", headers=AUTH).json()
        text = client.get("/metrics", headers=AUTH).text
    assert summary["total_errors"] == 0
    # Refused, they count in the outer collector's self-health series.
    assert samples(text, "fastapi_errors_refused_total") == {(): 2.0}


# --- refused requests ----------------------------------------------------------------------------


def test_refused_requests_to_the_librarys_endpoints_are_counted_apart() -> None:
    app = FastAPI()
    setup_metrics(app, config(auth_token=TOKEN))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        bad = {"Authorization": "Bearer " + "x" * 32}
        assert client.get("/api/metrics/summary", headers=bad).status_code in (401, 403)
        assert client.get("/api/metrics/summary", headers=AUTH).json()["total_errors"] == 0
        text = client.get("/metrics", headers=AUTH).text
    assert samples(text, "fastapi_errors_refused_total") == {(): 2.0}


# --- paths ------------------------------------------------------------------------------------


def test_a_metrics_path_under_the_dashboard_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="collides with the dashboard"):
        MetricsConfig(metrics_path="/api/metrics")
    with pytest.raises(ValueError, match="collides with the dashboard"):
        MetricsConfig(metrics_path="/api/metrics/summary")


@pytest.mark.parametrize("order", ["route first", "route after"])
def test_an_app_route_at_the_metrics_path_stops_the_startup(order: str) -> None:
    app = FastAPI()

    def own_metrics() -> str:
        return "mine"

    if order == "route first":
        app.get("/metrics")(own_metrics)
    setup_metrics(app, config())
    if order == "route after":
        app.get("/metrics")(own_metrics)
    with (
        pytest.raises(
            ValueError, match=r"/metrics is also served by the app's route 'own_metrics'"
        ),
        TestClient(app),
    ):
        pass


def test_an_app_route_on_a_dashboard_path_stops_the_startup() -> None:
    app = FastAPI()
    setup_metrics(app, config())

    @app.get("/api/metrics/by-code/latest")
    def latest() -> None:
        return None

    with pytest.raises(ValueError, match=r"by-code/\{error_code\} is also served"), TestClient(app):
        pass


def test_the_instrumentator_metrics_is_detected_and_named() -> None:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = FastAPI()
    setup_metrics(app, config())
    Instrumentator(registry=_fresh_registry()).instrument(app).expose(app)
    with pytest.raises(ValueError, match="metrics_path='/error-metrics'"), TestClient(app):
        pass


def _fresh_registry() -> object:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


@pytest.fixture
def in_default_registry() -> Iterator[list[PrometheusExporter]]:
    added: list[PrometheusExporter] = []
    yield added
    for exporter in added:
        REGISTRY.unregister(exporter._fleet)  # type: ignore[arg-type]


def test_both_metrics_side_by_side_through_the_apps_registry(
    in_default_registry: list[PrometheusExporter],
) -> None:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = FastAPI()
    components = setup_metrics(app, config(prometheus_enabled=False))
    exporter = PrometheusExporter(components["collector"], registry=REGISTRY)
    in_default_registry.append(exporter)
    Instrumentator().instrument(app).expose(app)
    app.mount("/shop", sub_app())
    with TestClient(app) as client:
        client.get("/shop/items/1")
        text = client.get("/metrics").text
    assert samples(text, "fastapi_errors_total") == {(): 1.0}
    assert any(name.startswith("http_request") for name in _names(text))


def _names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_the_dashboard_can_stay_out_of_the_public_schema() -> None:
    app = FastAPI()
    setup_metrics(app, config(include_in_schema=False))
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert client.get("/api/metrics/summary").status_code == 200
    assert not [p for p in paths if p.startswith("/api/metrics") or p == "/metrics"]


# --- logs ----------------------------------------------------------------------------------------


def test_a_request_storm_logs_one_line_per_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    setup_metrics(app, config())
    app.mount("/admin", sub_app())

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.DEBUG), TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(50):
            client.get("/admin/items/1")
            client.get("/crash")
    ours = [r for r in caplog.records if r.name.startswith("fastapi_error_codes")]
    assert len(ours) == 100
    assert sum(r.levelno == logging.INFO for r in ours) == 50  # the 410s
    assert not [r for r in ours if r.exc_info]  # the server logs the re-raised 500s' tracebacks


def test_an_outage_of_the_store_logs_once_not_per_scrape(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    down = config(redis_url=f"redis://127.0.0.1:{_closed_port()}/0", redis_timeout_ms=50)
    setup_metrics(app, down)
    with caplog.at_level(logging.DEBUG), TestClient(app) as client:
        for _ in range(20):
            assert client.get("/metrics").status_code == 503
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # One line per failure streak (reads, flushes), plus the once-per-process "unprotected".
    assert sum("metrics store read failed" in m for m in loud) == 1
    assert sum("flush to the metrics store failed" in m for m in loud) <= 1
    assert all("read failed" in m or "flush" in m or "without protection" in m for m in loud)
    assert not [r for r in caplog.records if r.exc_info is not None]


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_catch_all_route_after_the_setup_shadows_nothing() -> None:
    app = FastAPI()
    setup_metrics(app, config())

    @app.get("/{full_path:path}")
    def spa(full_path: str) -> str:
        return "index.html"

    @app.websocket("/metrics")
    async def live(websocket: object) -> None:
        return None

    with TestClient(app) as client:
        assert "fastapi_errors_total" in client.get("/metrics").text
        assert client.get("/app/settings").json() == "index.html"


def test_a_catch_all_route_before_the_setup_stops_the_startup() -> None:
    app = FastAPI()

    @app.get("/{full_path:path}")
    def spa(full_path: str) -> str:
        return "index.html"

    setup_metrics(app, config())
    clash = r"/metrics is also served by the app's route 'spa'"
    with pytest.raises(ValueError, match=clash), TestClient(app):
        pass


def test_a_mounted_apps_lifespan_run_by_the_outer_one_starts_nothing_twice() -> None:
    from contextlib import asynccontextmanager
    from typing import Any

    sub = sub_app()
    setup_metrics(sub, config())
    own_collector = sub.state.metrics_collector

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with sub.router.lifespan_context(sub):  # a common way to run a sub-app's lifespan
            yield

    app = FastAPI(lifespan=lifespan)
    setup_metrics(app, config())
    app.mount("/admin", sub)
    with TestClient(app):
        assert not own_collector.flusher.running  # adopted and closed: not started again
        assert app.state.metrics_collector.flusher.running


# --- routing order ------------------------------------------------------------------------------


def test_the_apps_routes_are_matched_before_the_librarys() -> None:
    app = FastAPI()
    setup_metrics(app, config())  # before the app's routes, as most apps call it

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/{path:path}")
    def spa(path: str) -> str:  # an SPA fallback added last
        return "index.html"

    with TestClient(app) as client:
        assert client.get("/items/1").json() == {"item_id": 1}
        assert client.get("/metrics").text.startswith("# HELP")
        assert client.get("/api/metrics/summary").json()["total_errors"] == 0
        assert client.get("/somewhere/else").json() == "index.html"
    paths = [getattr(r, "path", None) for r in app.router.routes]
    # the app's route first, the library's next, the catch-all that could shadow them last
    assert paths.index("/items/{item_id}") < paths.index("/metrics")
    assert paths.index("/metrics") < paths.index("/{path:path}")
