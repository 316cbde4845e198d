"""examples/with_metrics.py, with_prometheus.py and with_dashboard.py, driven like a user would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics import MetricsConfig
from tests.examples._client import by_code, total
from tests.examples._registry import example

TOKEN = "a-metrics-token-of-32-characters"


@pytest.mark.parametrize("name", ["app", "with_metrics", "with_prometheus", "with_dashboard"])
def test_each_example_exposes_an_app_for_uvicorn(name: str) -> None:
    # `uvicorn examples.<name>:app` needs a module-level FastAPI app.
    module = example(name)
    assert isinstance(module.app, FastAPI)


# --- with_metrics ------------------------------------------------------------------------


@pytest.fixture
def metrics_client() -> Iterator[TestClient]:
    app = example("with_metrics").create_app(MetricsConfig.testing(pii_patterns=["email"]))
    with TestClient(app) as client:
        yield client


def test_with_metrics_counts_and_masks(metrics_client: TestClient) -> None:
    assert metrics_client.post("/products/1/buy").json() == {"product_id": 1, "bought": 1}
    missing = metrics_client.post("/products/9/buy", params={"email": "ann@example.com"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, 310)
    for _ in range(2):
        sold_out = metrics_client.post("/products/2/buy")
        assert (sold_out.status_code, sold_out.json()["error_code"]) == (409, 311)
    stats = metrics_client.get("/stats").json()
    assert stats["total_errors"] == 3
    assert stats["by_code"] == {"310": 1, "311": 2}
    assert stats["by_status"] == {"404": 1, "409": 2}
    assert stats["names"] == {"310": "ProductNotFound", "311": "OutOfStock"}
    # The stored event is masked: the address never reaches the store.
    stored = next(e for e in stats["recent"] if e["code"] == 310)
    assert "ann@example.com" not in str(stored["detail"])
    # The response body itself still shows what the app put there.
    assert missing.json()["detail"]["email"] == "ann@example.com"


def test_with_metrics_module_config_is_the_development_preset() -> None:
    metrics = example("with_metrics").METRICS
    assert metrics.redis_url is None
    assert "email" in metrics.pii_patterns


# --- with_prometheus ---------------------------------------------------------------------


def test_with_prometheus_exports_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEC_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("FEC_REDIS_URL", raising=False)
    app = example("with_prometheus").create_app()
    with TestClient(app) as client:
        assert client.get("/reports/daily").json()["error_code"] == 250
        timeout = client.get("/reports/daily", params={"key": "secret-key"})
        assert (timeout.status_code, timeout.json()["error_code"]) == (504, 530)
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert total(response.text) == 2
        assert by_code(response.text) == {250: 1, 530: 1}
        # The exporter renders the same text outside a request.
        assert "fastapi_errors_total 2.0" in app.state.exporter.generate_metrics()
        # The dashboard is switched off in this example (and that 404 is counted too).
        assert client.get("/api/metrics/summary").status_code == 404
        assert by_code(client.get("/metrics").text) == {250: 1, 530: 1, 404: 1}


def test_with_prometheus_token_protects_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEC_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("FEC_REDIS_URL", raising=False)
    app = example("with_prometheus").create_app()
    with TestClient(app) as client:
        denied = client.get("/metrics")
        assert denied.status_code == 401
        assert denied.json()["error_code"] == 401
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        assert "fastapi_errors_total" in allowed.text


def test_with_prometheus_speaks_openmetrics_when_asked() -> None:
    app = example("with_prometheus").create_app(MetricsConfig.testing(dashboard_enabled=False))
    with TestClient(app) as client:
        client.get("/reports/x")
        response = client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        assert response.text.rstrip().endswith("# EOF")


# --- with_dashboard ----------------------------------------------------------------------


@pytest.fixture
def dashboard_client() -> Iterator[TestClient]:
    app = example("with_dashboard").create_app(MetricsConfig.testing(prometheus_enabled=False))
    with TestClient(app) as client:
        yield client


KEY = {"X-Dashboard-Key": "letmein"}  # examples/with_dashboard.py DASHBOARD_KEY


def test_with_dashboard_endpoints(dashboard_client: TestClient) -> None:
    assert KEY["X-Dashboard-Key"] == example("with_dashboard").DASHBOARD_KEY
    c = dashboard_client
    for _ in range(3):
        assert c.get("/reports/q1").json()["error_code"] == 320
    too_large = c.get("/reports/q1", params={"days": 90})
    assert (too_large.status_code, too_large.json()["error_code"]) == (400, 480)

    summary = c.get("/api/metrics/summary", headers=KEY).json()
    assert summary["total_errors"] == 4
    assert summary["error_counts"] == {"320": 3, "480": 1}
    assert summary["last_5m"] == 4
    top = c.get("/api/metrics/top-errors", headers=KEY).json()
    assert [(t["error_code"], t["count"]) for t in top] == [(320, 3), (480, 1)]
    answer = c.get("/api/metrics/recent", params={"limit": 2}, headers=KEY).json()
    assert answer["count"] == 2
    recent = answer["events"]
    assert recent[0]["error_code"] == 480  # newest first
    by_code = c.get("/api/metrics/by-code/320", headers=KEY).json()
    assert (by_code["count"], by_code["error_name"]) == (3, "ReportNotFound")
    assert c.get("/metrics").status_code == 404  # Prometheus is off in this example


def test_with_dashboard_dependency_guards_every_endpoint(dashboard_client: TestClient) -> None:
    for path in ("summary", "recent", "top-errors", "by-code/320"):
        denied = dashboard_client.get(f"/api/metrics/{path}")
        assert denied.status_code == 403, path
        assert denied.json()["error_code"] == 403
        wrong = dashboard_client.get(f"/api/metrics/{path}", headers={"X-Dashboard-Key": "no"})
        assert wrong.status_code == 403, path


def test_with_dashboard_page_reads_the_endpoints(dashboard_client: TestClient) -> None:
    page = dashboard_client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for needle in ("/api/metrics/summary", "/api/metrics/top-errors", "X-Dashboard-Key"):
        assert needle in page.text
    # The endpoints appear in the OpenAPI schema under the "metrics" tag; the page does not.
    schema = dashboard_client.get("/openapi.json").json()
    assert "/" not in schema["paths"]
    assert schema["paths"]["/api/metrics/summary"]["get"]["tags"] == ["metrics"]
