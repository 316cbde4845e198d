"""A PII corpus raised through a real app: no raw secret reaches Sentry, Redis or the dashboard.

The app is wired as users wire it: ``setup_exception_handler(app, metrics_config=...)`` with
Sentry on and the machine's Redis as the fleet store (a random namespace per test).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from fastapi_error_codes import (
    BaseAppException,
    ErrorRegistry,
    register_exception,
    setup_exception_handler,
)
from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration
from tests.metrics.sentry._helpers import capture_into
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport

pytestmark = pytest.mark.redis

registry = ErrorRegistry()

EMAIL = "corpus.person@example.net"
CARD = "5500-0000-0000-0004"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiY29ycHVzIn0.Y29ycHVzLXNpZ25hdHVyZQ"
SECRETS = {
    "detail_pw": "corpus-detail-pw-11",
    "nested_token": "corpus-nested-tok-22",
    "message_token": "corpus-msg-tok-33",
    "query_token": "corpus-qs-tok-44",
    "api_key": "corpus-hdr-key-55",
    "bearer": "corpus-hdr-bearer-66",
    "cookie": "corpus-cookie-77",
    "crumb": "corpus-crumb-88",
    "body_pw": "corpus-body-pw-99",
    "validation_pw": "corpus-val-pw-00",
    "unexpected": "corpus-unexpected-12",
    "path_token": "corpus-path-tok-34",
}
RAW = [*SECRETS.values(), EMAIL, CARD, CARD.replace("-", ""), JWT]


@register_exception(
    error_code=7503, message="Billing unavailable", status_code=503, registry=registry
)
class BillingUnavailable(BaseAppException):
    """A declared 5xx carrying PII in its detail and message."""


@register_exception(
    error_code=7404, message="Account not found", status_code=404, registry=registry
)
class AccountNotFound(BaseAppException):
    """A declared 4xx carrying PII."""


class Signup(BaseModel):
    email: str
    password: str = Field(min_length=64)


def make_app(config: MetricsConfig) -> FastAPI:
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config)

    @app.post("/billing")
    def billing(request: Request) -> None:
        sentry: SentryIntegration = request.app.state.metrics_sentry
        sentry.add_breadcrumb("billing", f"retry with token={SECRETS['crumb']}")
        raise BillingUnavailable(
            message=f"billing failed for {EMAIL} (token={SECRETS['message_token']})",
            detail={
                "customer": {"email": EMAIL, "password": SECRETS["detail_pw"]},
                "cards": [CARD],
                "auth": [{"kind": "jwt", "value": JWT}],
                "session": {"refreshToken": SECRETS["nested_token"]},
                "note": f"called with Authorization: Bearer {SECRETS['bearer']}",
            },
        )

    @app.get("/accounts/{email}")
    def account(email: str, token: str = "") -> None:
        raise AccountNotFound(detail={"email": email, "token": token, "card": CARD})

    @app.post("/signup")
    def signup(body: Signup) -> None:  # a short password: 422 with the input in the errors
        return None

    @app.get("/explode")
    def explode() -> None:
        secret = SECRETS["unexpected"]
        raise RuntimeError(f"vault said no to {EMAIL}: password={secret} jwt={JWT}")

    @app.get("/reset/{token}")
    def reset(token: str) -> None:
        raise AccountNotFound(message=f"reset link expired: /reset?token={token}")

    return app


def drive(client: TestClient) -> None:
    headers = {
        "X-Api-Key": SECRETS["api_key"],
        "Authorization": f"Bearer {SECRETS['bearer']}",
        "Cookie": f"session={SECRETS['cookie']}",
    }
    query = f"?token={SECRETS['query_token']}&email={EMAIL}"
    assert client.post("/billing" + query, headers=headers, json={"password": SECRETS["body_pw"]})
    assert client.get(f"/accounts/{EMAIL}{query}", headers=headers).status_code == 404
    response = client.post(
        "/signup" + query,
        headers=headers,
        json={"email": EMAIL, "password": SECRETS["validation_pw"]},
    )
    assert response.status_code == 422
    assert client.get("/explode" + query, headers=headers).status_code == 500
    assert client.get(f"/reset/{SECRETS['path_token']}", headers=headers).status_code == 404


def redis_dump(url: str, namespace: str) -> str:
    """Every key name and value of the namespace, as text."""
    import redis

    client = redis.Redis.from_url(url)
    parts: list[str] = []
    try:
        for key in client.scan_iter(match="{" + namespace + "}:*", count=1000):
            parts.append(repr(key))
            kind = client.type(key).decode()
            if kind == "hash":
                parts.append(repr(client.hgetall(key)))
            elif kind == "stream":
                parts.append(repr(client.xrange(key)))
            elif kind == "zset":
                parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
            elif kind == "list":
                parts.append(repr(client.lrange(key, 0, -1)))
            elif kind == "set":
                parts.append(repr(client.smembers(key)))
            else:
                parts.append(repr(client.get(key)))
    finally:
        client.close()
    return "\n".join(parts)


def _leaks(text: str) -> list[str]:
    return [raw for raw in RAW if raw in text]


@pytest.mark.filterwarnings("ignore::UserWarning")  # setup_metrics may warn: endpoints unprotected
def test_no_secret_reaches_sentry_redis_or_the_dashboard(
    make_config: Callable[..., MetricsConfig],
    redis_url: str,
    redis_namespace: str,
    transport: CapturingTransport,
) -> None:
    config = make_config(sentry_enabled=True, sentry_dsn=FAKE_DSN, flush_interval_ms=50)
    app = make_app(config)
    with TestClient(app, raise_server_exceptions=False) as client:
        capture_into(transport)
        drive(client)
        app.state.metrics_collector.flush(2.0)
        recent = client.get("/api/metrics/recent", params={"limit": 100})
        summary = client.get("/api/metrics/summary")
    assert recent.status_code == 200 and summary.status_code == 200

    # Sentry: the 5xx issues arrived (masked), the 4xx are breadcrumbs.
    events = transport.events
    codes = sorted(e["tags"]["error_code"] for e in events if "error_code" in e.get("tags", {}))
    assert codes == ["500", "7503"]
    assert _leaks(transport.dump()) == []

    # Redis: every error of the corpus was stored, and nothing raw with it.
    stored = redis_dump(redis_url, redis_namespace)
    assert "7503" in stored and "7404" in stored and "422" in stored
    assert _leaks(stored) == []

    # Dashboard: the events are there, masked.
    recent_text = json.dumps(recent.json())
    assert "Billing unavailable" in recent_text or "billing failed" in recent_text
    assert len(recent.json()) >= 5 or len(recent.json().get("events", [])) >= 5
    assert _leaks(recent_text) == []
    assert _leaks(summary.text) == []


def test_the_corpus_really_holds_secrets(transport: CapturingTransport) -> None:
    """Guards the test above: without masking, the corpus would leak (the app echoes it)."""
    app = make_app(MetricsConfig.testing(prometheus_enabled=False))
    seen: list[Any] = []
    from fastapi_error_codes.observers import add_error_observer

    add_error_observer(app, lambda request, error: seen.append((error.message, error.detail)))
    with TestClient(app, raise_server_exceptions=False) as client:
        drive(client)
    raw_text = repr(seen)
    for key in ("detail_pw", "nested_token", "message_token", "path_token"):
        assert SECRETS[key] in raw_text
    assert EMAIL in raw_text and CARD in raw_text and JWT in raw_text
