"""examples/with_sentry.py: importable without a DSN, and captures masked events with one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from examples import with_sentry as example
from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration
from tests.metrics.sentry._helpers import capture_into
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport


def test_importable_and_runs_without_a_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    app = example.create_app()
    with TestClient(app) as client:
        response = client.post(
            "/checkout", json={"email": "a@b.co", "card_number": "4111111111111111", "amount": 13}
        )
        assert response.status_code == 503
        assert response.json()["error_code"] == 341
        assert client.get("/mask", params={"text": "mail a@b.co"}).json() == {
            "masked": "mail ***@***.***"
        }
    sentry: SentryIntegration = app.state.metrics_sentry
    assert not sentry.enabled
    assert isinstance(example.app, type(app))


def test_with_a_dsn_events_are_masked_and_grouped(
    monkeypatch: pytest.MonkeyPatch, transport: CapturingTransport
) -> None:
    monkeypatch.setenv("SENTRY_DSN", FAKE_DSN)
    app = example.create_app()
    assert example.metrics_config().sentry_dsn == FAKE_DSN
    with TestClient(app, raise_server_exceptions=False) as client:
        capture_into(transport)
        body = {"email": "ada@example.com", "card_number": "4111 1111 1111 1111", "amount": 13}
        assert client.post("/checkout", json=body).status_code == 503
        body["amount"] = 20000
        assert client.post("/checkout", json=body).status_code == 402
        assert client.get("/crash").status_code == 500
    declared, crash = transport.events
    assert declared["tags"]["error_code"] == "341"
    assert declared["fingerprint"] == ["fastapi-error-codes", "341"]
    assert crash["tags"]["error_code"] == "500"
    assert (
        crash["exception"]["values"][-1]["value"] == "sync failed for ***@***.*** with Bearer ***"
    )
    dump = transport.dump()
    for raw in ("ada@example.com", "4111 1111 1111 1111", "abc.def.ghi"):
        assert raw not in dump


def test_example_config_is_valid_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    config = example.metrics_config()
    assert isinstance(config, MetricsConfig)
    assert not config.sentry_enabled and config.sentry_dsn is None
    assert "iban" in config.pii_patterns
