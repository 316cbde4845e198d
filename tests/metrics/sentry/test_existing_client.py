"""An app's own Sentry setup is reused, never replaced: its options stay, our hooks are chained.

The real sentry-sdk with the capturing transport of ``conftest.py``. The app calls
``sentry_sdk.init`` itself before the library's integration starts (``setup_metrics`` in the
lifespan startup, or ``SentryIntegration.initialize``); the client, its options and its
integrations stay the app's, and our masking, tagging and duplicate silencing ride along.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest
import sentry_sdk
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration

from fastapi_error_codes import BaseAppException
from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration, setup_metrics
from fastapi_error_codes.metrics.pii import EMAIL_MASK
from fastapi_error_codes.metrics.sentry import integration as sentry_module
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport

MakeSentry = Callable[..., SentryIntegration]

EMAIL = "app.owner@example.com"
RELEASE = "myapp@1.2.3"
#: The app's DSN and ours differ: neither key may ever reach a log line.
APP_KEY = "apppublickey0123456789"
OUR_KEY = "ourpublickey9876543210"
APP_DSN = f"https://{APP_KEY}@app-sentry.invalid/777"
OUR_DSN = f"https://{OUR_KEY}@our-sentry.invalid/42"

LOGGER = "fastapi_error_codes"


class PaymentDown(BaseAppException):
    """A declared 5xx whose message holds PII."""


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no conflict reported yet (they are reported once per process)."""
    monkeypatch.setattr(sentry_module, "_warned", set())
    yield


def app_init(transport: CapturingTransport, **options: Any) -> Any:
    """``sentry_sdk.init`` as the app calls it, sending into *transport*; returns the client."""
    base: dict[str, Any] = {
        "dsn": FAKE_DSN,
        "transport": transport,
        "traces_sample_rate": 0.25,
        "release": RELEASE,
        "environment": "prod",
    }
    sentry_sdk.init(**{**base, **options})
    return sentry_sdk.get_client()


def metrics_config(**overrides: Any) -> MetricsConfig:
    """Sentry on, with no endpoints (they are not what these tests are about)."""
    base: dict[str, Any] = {
        "sentry_enabled": True,
        "sentry_dsn": FAKE_DSN,
        "prometheus_enabled": False,
        "dashboard_enabled": False,
    }
    return MetricsConfig.testing(**{**base, **overrides})


def make_app(config: MetricsConfig) -> FastAPI:
    """An app wired by ``setup_metrics``, with a route raising a declared 5xx."""
    app = FastAPI()
    setup_metrics(app, config)

    @app.get("/pay")
    def pay() -> None:
        raise PaymentDown(
            error_code=5031, status_code=503, message=f"payment backend down for {EMAIL}"
        )

    return app


def error_events(transport: CapturingTransport) -> list[dict[str, Any]]:
    """The error events sent (transactions left out: the app samples a quarter of them)."""
    return [e for e in transport.events if e.get("type") != "transaction"]


def conflict_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """WARNING records of our logger whose message contains *text*."""
    return [
        r
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and text in r.getMessage()
    ]


# --- the app's client is reused as it is ------------------------------------------------------


def test_the_apps_client_and_options_are_kept_and_our_errors_reach_it(
    transport: CapturingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_init(transport)
    options_before = {
        key: client.options[key]
        for key in ("dsn", "traces_sample_rate", "release", "environment", "sample_rate")
    }
    integrations_before = dict(client.integrations)
    app = make_app(metrics_config())
    with caplog.at_level(logging.WARNING, logger=LOGGER), TestClient(app) as http:
        assert app.state.metrics_sentry.initialized
        assert sentry_sdk.get_client() is client
        response = http.get("/pay")
    assert response.status_code == 503
    assert sentry_sdk.get_client() is client
    assert {key: client.options[key] for key in options_before} == options_before
    assert options_before["traces_sample_rate"] == 0.25
    assert options_before["release"] == RELEASE
    assert options_before["environment"] == "prod"
    assert dict(client.integrations) == integrations_before
    assert conflict_warnings(caplog, "already initialised") == []  # same DSN, no environment

    (event,) = error_events(transport)
    assert event["tags"]["error_code"] == "5031"
    assert event["tags"]["status_code"] == "503"
    assert event["fingerprint"] == ["fastapi-error-codes", "5031"]
    assert event["exception"]["values"][-1]["type"] == "PaymentDown"
    assert EMAIL_MASK in event["exception"]["values"][-1]["value"]
    assert event["release"] == RELEASE
    assert event["environment"] == "prod"
    assert EMAIL not in transport.dump()


def test_the_apps_own_captures_are_masked_too(transport: CapturingTransport) -> None:
    app_init(transport)
    SentryIntegration(metrics_config()).initialize()
    sentry_sdk.capture_message(f"signup failed for {EMAIL}")
    (event,) = error_events(transport)
    assert event["message"] == f"signup failed for {EMAIL_MASK}"
    assert EMAIL not in transport.dump()


# --- conflicts are reported once, without secrets ----------------------------------------------


def test_another_dsn_is_reported_once_without_its_keys(
    transport: CapturingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_init(transport, dsn=APP_DSN)
    config = metrics_config(sentry_dsn=OUR_DSN)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = SentryIntegration(config)
        first.initialize()
        first.initialize()
        for _ in range(2):  # two apps, each started
            with TestClient(make_app(config)) as http:
                assert http.get("/pay").status_code == 503
    (record,) = conflict_warnings(caplog, "another DSN")
    text = record.getMessage()
    assert "already initialised by the app" in text
    assert "the app's client is used" in text
    assert "MetricsConfig.sentry_dsn is ignored" in text
    assert "app-sentry.invalid" in text and "777" in text
    for secret in (APP_KEY, OUR_KEY, APP_DSN, OUR_DSN):
        assert secret not in text
    assert all(
        APP_KEY not in r.getMessage() and OUR_KEY not in r.getMessage() for r in caplog.records
    )
    assert sentry_sdk.get_client() is client
    assert client.options["dsn"] == APP_DSN
    assert len(error_events(transport)) == 2  # one per app: both reached the app's client


def test_another_environment_is_reported_once_and_the_apps_wins(
    transport: CapturingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_init(transport)
    config = metrics_config(sentry_environment="staging")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(2):
            integration = SentryIntegration(config)
            integration.initialize()
            integration.initialize()
    (record,) = conflict_warnings(caplog, "environment")
    text = record.getMessage()
    assert "already initialised by the app" in text
    assert "'prod'" in text and "'staging'" in text
    assert "MetricsConfig.sentry_environment" in text
    assert conflict_warnings(caplog, "another DSN") == []  # same DSN: nothing to say
    assert client.options["environment"] == "prod"
    integration.capture_event(5031, "PaymentDown", "down", status_code=503)
    (event,) = error_events(transport)
    assert event["environment"] == "prod"


def test_the_same_environment_is_no_conflict(
    transport: CapturingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    app_init(transport)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        SentryIntegration(metrics_config(sentry_environment="prod")).initialize()
    assert conflict_warnings(caplog, "already initialised") == []


# --- our hooks are chained once per client -------------------------------------------------------


def test_hooks_are_chained_once_per_client(
    transport: CapturingTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"before_send": 0, "before_breadcrumb": 0, "masked": 0}
    mask_event = sentry_module.scrub.mask_event

    def counting_mask_event(event: Any, masker: Any) -> dict[str, Any]:
        calls["masked"] += 1
        return mask_event(event, masker)

    monkeypatch.setattr(sentry_module.scrub, "mask_event", counting_mask_event)

    def before_send(event: Any, hint: Any) -> Any:
        calls["before_send"] += 1
        event.setdefault("extra", {})["added_by_app"] = f"contact {EMAIL}"
        return event

    def before_breadcrumb(crumb: Any, hint: Any) -> Any:
        calls["before_breadcrumb"] += 1
        return crumb

    client = app_init(transport, before_send=before_send, before_breadcrumb=before_breadcrumb)
    first = SentryIntegration(metrics_config())
    first.initialize()
    hooks = {key: client.options[key] for key in ("before_send", "before_breadcrumb")}
    first.initialize()
    second = SentryIntegration(metrics_config())
    second.initialize()
    second.initialize()
    assert first.initialized and second.initialized
    assert {key: client.options[key] for key in hooks} == hooks  # not wrapped again

    sentry_sdk.add_breadcrumb(category="app", message=f"login {EMAIL}")
    second.capture_event(5031, "PaymentDown", "down", status_code=503)
    assert calls == {"before_send": 1, "before_breadcrumb": 1, "masked": 1}
    (event,) = error_events(transport)
    assert event["extra"]["added_by_app"] == f"contact {EMAIL_MASK}"  # the app's hook ran first
    (crumb,) = [c for c in event["breadcrumbs"]["values"] if c.get("category") == "app"]
    assert crumb["message"] == f"login {EMAIL_MASK}"
    assert EMAIL not in transport.dump()


def test_a_forked_worker_reuses_the_apps_client_without_chaining_again(
    transport: CapturingTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def before_send(event: Any, hint: Any) -> Any:
        calls.append("app")
        return event

    client = app_init(transport, before_send=before_send)
    integration = SentryIntegration(metrics_config())
    integration.initialize()
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 100_000)  # as seen in a forked worker
    assert not integration.initialized
    integration.initialize()
    assert integration.initialized
    assert sentry_sdk.get_client() is client
    integration.capture_event(5031, "PaymentDown", "down", status_code=503)
    assert calls == ["app"]
    assert len(error_events(transport)) == 1


# --- MetricsConfig.sentry_options, when the library initialises Sentry itself -----------------


def test_sentry_options_reach_the_client(make_sentry: MakeSentry) -> None:
    make_sentry(sentry_options={"traces_sample_rate": 0.5, "release": "x@1"})
    options = sentry_sdk.get_client().options
    assert options["traces_sample_rate"] == 0.5
    assert options["release"] == "x@1"
    assert options["dsn"] == FAKE_DSN


def test_sentry_options_through_setup_metrics(transport: CapturingTransport) -> None:
    config = metrics_config(
        sentry_options={"traces_sample_rate": 0.5, "release": "x@1", "transport": transport}
    )
    app = make_app(config)
    with TestClient(app) as http:
        assert http.get("/pay").status_code == 503
    options = sentry_sdk.get_client().options
    assert (options["traces_sample_rate"], options["release"]) == (0.5, "x@1")
    (event,) = error_events(transport)
    assert event["release"] == "x@1"
    assert event["tags"]["error_code"] == "5031"
    assert EMAIL not in transport.dump()


def test_init_options_override_sentry_options_and_hooks_are_chained(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    seen: list[str] = []

    def before_send(event: Any, hint: Any) -> Any:
        seen.append("sentry_options")
        event["extra"] = {"note": f"mail {EMAIL}"}
        return event

    integration = make_sentry(
        init_options={"release": "from-init-options@2"},
        sentry_options={"release": "from-config@1", "before_send": before_send},
    )
    assert sentry_sdk.get_client().options["release"] == "from-init-options@2"
    integration.capture_event(1, "E", "m")
    (event,) = error_events(transport)
    assert seen == ["sentry_options"]
    assert event["extra"]["note"] == f"mail {EMAIL_MASK}"  # masking has the final word


def test_the_apps_integrations_are_kept_and_ours_fill_the_gaps(make_sentry: MakeSentry) -> None:
    theirs = FastApiIntegration(transaction_style="url")
    make_sentry(sentry_options={"integrations": [theirs]})
    client = sentry_sdk.get_client()
    assert client.get_integration(FastApiIntegration) is theirs
    starlette = client.get_integration(StarletteIntegration)
    assert starlette is not None
    assert starlette.failed_request_status_codes == set()  # ours: 5xx capture stays ours


def test_the_apps_starlette_integration_is_not_replaced(make_sentry: MakeSentry) -> None:
    theirs = StarletteIntegration(failed_request_status_codes={502})
    make_sentry(sentry_options={"integrations": [theirs]})
    client = sentry_sdk.get_client()
    assert client.get_integration(StarletteIntegration) is theirs
    assert client.get_integration(FastApiIntegration) is not None


# --- best-effort ------------------------------------------------------------------------------


def test_a_client_that_cannot_be_hooked_is_left_alone_never_raised(
    transport: CapturingTransport,
) -> None:
    client = app_init(transport)
    frozen = MappingProxyType(dict(client.options))
    client.options = frozen  # our hooks cannot be chained onto it
    integration = SentryIntegration(metrics_config())
    integration.initialize()
    assert not integration.initialized  # never capture through a client we could not mask
    assert integration.failures == 1
    assert sentry_sdk.get_client() is client
    assert client.options is frozen
    assert integration.capture_event(5031, "PaymentDown", "down") is None
