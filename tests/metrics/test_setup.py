"""setup_metrics through real FastAPI apps: errors raised show up in /metrics and the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fastapi_error_codes import (
    BaseAppException,
    ErrorRegistry,
    register_exception,
    setup_exception_handler,
)
from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, setup_metrics

registry = ErrorRegistry()


@register_exception(error_code=8301, message="User not found", status_code=404, registry=registry)
class SetupUserNotFound(BaseAppException):
    """A declared 404."""


@register_exception(error_code=8409, message="Conflict", status_code=409, registry=registry)
class SetupConflict(BaseAppException):
    """A declared 409."""


def make_app(config: MetricsConfig | None = None, *, both: bool = False) -> FastAPI:
    app = FastAPI()
    config = config or MetricsConfig.testing(flush_interval_ms=60_000)
    setup_exception_handler(app, metrics_config=config)
    if both:
        setup_metrics(app, config)

    @app.get("/users/{user_id}")
    def get_user(user_id: int) -> dict[str, int]:
        if user_id == 0:
            raise HTTPException(status_code=403, detail="forbidden")
        raise SetupUserNotFound(detail={"user_id": user_id})

    @app.post("/orders")
    def create_order(quantity: int) -> dict[str, int]:
        raise SetupConflict()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as c:
        yield c


def by_code(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "fastapi_errors_by_code":
                out[(s.labels["error_code"], s.labels["status_code"])] = s.value
            if s.name == "fastapi_errors_total":
                out[("total", "")] = s.value
    return out


def test_errors_raised_in_a_real_app_show_up_everywhere(client: TestClient) -> None:
    for user_id in (1, 2, 3):
        assert client.get(f"/users/{user_id}").status_code == 404
    assert client.get("/users/0").status_code == 403
    assert client.post("/orders?quantity=1").status_code == 409
    assert client.post("/orders?quantity=abc").status_code == 422
    assert client.get("/nowhere").status_code == 404
    assert client.get("/boom").status_code == 500
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    values = by_code(metrics.text)
    assert values[("total", "")] == 8
    assert values[("8301", "404")] == 3
    assert values[("8409", "409")] == 1
    assert sum(v for (code, _), v in values.items() if code != "total") == 8
    summary = client.get("/api/metrics/summary").json()
    assert summary["total_errors"] == 8
    assert summary["error_counts"]["8301"] == 3
    assert summary["status_counts"]["404"] == 4
    answer = client.get("/api/metrics/recent", params={"limit": 8}).json()
    assert answer["count"] == 8
    recent = answer["events"]
    assert len(recent) == 8
    user_event = next(e for e in recent if e["error_code"] == 8301)
    assert user_event["path"] == "/users/{user_id}"  # the route template, not the raw path
    assert user_event["method"] == "GET"
    assert user_event["error_name"] == "SetupUserNotFound"
    unmatched = next(e for e in recent if e["status_code"] == 404 and e["error_code"] != 8301)
    assert unmatched["path"] is None  # no route: raw paths never become stored text
    assert "secret internals" not in str(recent)


def test_metrics_endpoint_is_not_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/metrics" not in paths
    assert "/api/metrics/summary" in paths


def test_both_setup_calls_do_not_double_count() -> None:
    with TestClient(make_app(both=True)) as client:
        client.get("/users/1")
        assert client.get("/api/metrics/summary").json()["total_errors"] == 1


def test_setup_metrics_alone_installs_the_handlers() -> None:
    app = FastAPI()
    components = setup_metrics(app, MetricsConfig.testing())
    assert set(components) == {"collector", "exporter", "sentry", "dashboard"}
    assert app.state.metrics_collector is components["collector"]

    @app.get("/x")
    def x() -> None:
        raise SetupConflict()

    with TestClient(app) as client:
        body = client.get("/x").json()
        assert body["error_code"] == 8409
        assert client.get("/api/metrics/summary").json()["total_errors"] == 1
    assert setup_metrics(app) == components  # a second call returns the same components


def test_recording_failure_never_changes_the_response(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("collector broke")

    monkeypatch.setattr(ErrorMetricsCollector, "record", broken)
    with TestClient(make_app()) as client:
        response = client.get("/users/7")
        assert response.status_code == 404
        assert response.json()["error_code"] == 8301


def test_disabled_adds_no_routes_and_no_observer() -> None:
    app = make_app(MetricsConfig.disabled())
    with TestClient(app) as client:
        assert client.get("/users/1").status_code == 404
        assert client.get("/metrics").status_code == 404
    from fastapi_error_codes.observers import get_error_observers

    assert get_error_observers(app) == []


def test_auth_token_protects_metrics_and_dashboard() -> None:
    token = "s3cret-token-of-enough-length"
    app = make_app(MetricsConfig.testing(auth_token=token))
    with TestClient(app) as client:
        for path in ("/metrics", "/api/metrics/summary"):
            denied = client.get(path)
            assert denied.status_code == 401
            assert denied.headers["www-authenticate"].startswith("Bearer")
            assert denied.json()["status_code"] == 401
            wrong = client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200


def test_lifespan_shutdown_does_the_final_flush() -> None:
    app = make_app()
    with TestClient(app) as client:
        client.get("/users/1")
        collector = app.state.metrics_collector
        assert collector.buffered == 1  # flush interval is a minute: still local
    assert collector.store.read().total == 1  # the lifespan shutdown flushed it


def test_unprotected_fleet_endpoints_warn_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi_error_codes.metrics import setup as setup_mod

    monkeypatch.setattr(setup_mod, "_warned_unprotected", False)
    config = MetricsConfig.testing(redis_url="redis://127.0.0.1:1/0")
    with caplog.at_level("WARNING", logger="fastapi_error_codes.metrics"):
        for _ in range(3):
            setup_metrics(FastAPI(), config)
        setup_metrics(FastAPI(), MetricsConfig.testing())  # in-process store: no warning
        setup_metrics(FastAPI(), config.replace(auth_token="t" * 16))
    warnings = [r for r in caplog.records if "without protection" in r.getMessage()]
    assert len(warnings) == 1


def test_an_app_may_run_its_lifespan_twice() -> None:
    app = make_app()
    with TestClient(app) as client:
        client.get("/users/1")
        assert client.get("/api/metrics/summary").json()["total_errors"] == 1
    with TestClient(app) as client:
        client.get("/users/2")
        client.get("/users/3")
        assert client.get("/api/metrics/summary").json()["total_errors"] == 3
    collector = app.state.metrics_collector
    assert collector.buffered == 0
    assert not collector.flusher.running  # the second shutdown stopped the second flusher


def test_errors_of_the_librarys_own_endpoints_are_not_counted() -> None:
    app = FastAPI()
    token = "t" * 32
    setup_exception_handler(app, metrics_config=MetricsConfig.testing(auth_token=token))

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("boom")

    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/api/metrics/recent?limit=0", headers=auth).status_code == 422
        assert client.get("/fail").status_code == 500
        summary = client.get("/api/metrics/summary", headers=auth).json()
    assert summary["error_counts"] == {"500": 1}


def test_a_failing_record_is_counted_as_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ErrorMetricsCollector, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("record broke")

    monkeypatch.setattr(ErrorMetricsCollector, "record", broken)
    app = FastAPI()
    setup_exception_handler(app, metrics_config=MetricsConfig.testing())

    @app.get("/x")
    def x() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/x").status_code == 500  # the response is unchanged
        assert client.get("/x").status_code == 500
    view = app.state.metrics_collector.read()
    assert (view.total, view.dropped) == (0, 2)  # not counted, but not silently lost either


def test_routes_of_included_routers_are_recorded_with_their_prefix() -> None:
    """FastAPI 0.137+ keeps the unprefixed route in scope["route"]; the template has both."""
    from fastapi import APIRouter

    inner = APIRouter(prefix="/users")

    @inner.get("/{user_id}")
    def get_user(user_id: int) -> dict[str, int]:
        raise SetupUserNotFound(detail={"user_id": user_id})

    outer = APIRouter()
    outer.include_router(inner, prefix="/v2")
    app = FastAPI()
    setup_exception_handler(app, metrics_config=MetricsConfig.testing(flush_interval_ms=60_000))
    app.include_router(outer, prefix="/api")
    with TestClient(app) as client:
        assert client.get("/api/v2/users/7").status_code == 404
        (event,) = client.get("/api/metrics/recent").json()["events"]
    assert event["path"] == "/api/v2/users/{user_id}"
