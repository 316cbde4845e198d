"""Hostile names, messages, details and paths through a real app, on both stores.

``/metrics`` must still parse with prometheus_client's own parsers (text and OpenMetrics),
every label value must be cut to ``max_text_length``, and nothing the dashboard JSON returns
may carry a secret from the corpus (e-mails, ``password=...``, bearer tokens, JWTs) — also
when the secret sits in a 10 kB text right at the cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from fastapi_error_codes import BaseAppException, setup_exception_handler
from fastapi_error_codes._bodies import JSON_KEYS
from fastapi_error_codes.metrics import MetricsConfig
from fastapi_error_codes.metrics.pii import TRUNCATION_MARKER
from tests.hardening._corpus import (
    AWKWARD,
    EMAIL,
    JWT,
    LEAKY_TEXTS,
    PASSWORD,
    SECRETS,
    big_text,
    leaked,
    straddling,
)

CAP = 256  # max_text_length: small, so that the corpus crosses it often
LIMIT = CAP - len(TRUNCATION_MARKER)

#: Error names: class names of undeclared BaseAppException subclasses (NUL is not allowed).
HOSTILE_NAMES = [a for a in AWKWARD if "\x00" not in a] + [big_text(10_000, "N")]

#: Messages and details: awkward text, leaky text, 10 kB text, secrets right at the cut.
HOSTILE_TEXTS = [
    *AWKWARD,
    *LEAKY_TEXTS,
    big_text(10_000),
    *(straddling(s, at) for s in SECRETS for at in (LIMIT - 3, LIMIT, LIMIT + 2, CAP)),
    f"{big_text(5_000)} password={PASSWORD} {big_text(5_000)}",
]


def _hostile_app(config: MetricsConfig) -> FastAPI:
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config)
    classes = [type(name, (BaseAppException,), {}) for name in HOSTILE_NAMES]

    @app.get("/named/{i}")
    def named(i: int) -> None:
        text = HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)]
        raise classes[i % len(classes)](
            error_code=7000 + i, message=text, status_code=400 + i % 100, detail={"t": text}
        )

    @app.post("/http/{i}")
    def http(i: int) -> None:
        text = HOSTILE_TEXTS[i]
        detail: Any = text if i % 2 else {"note": text, "nested": [{"why": text}], text: 1}
        raise HTTPException(status_code=400 + i % 5, detail=detail)

    @app.get("/users/{user_id}")
    def user(user_id: int) -> None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")

    return app


@pytest.fixture(params=["memory", "redis"])
def config(request: pytest.FixtureRequest) -> MetricsConfig:
    overrides = {"max_text_length": CAP, "max_events": 1000, "flush_interval_ms": 60_000}
    if request.param == "memory":
        return MetricsConfig.testing(**overrides)
    make_config: Callable[..., MetricsConfig] = request.getfixturevalue("make_config")
    return make_config(**overrides)


@pytest.fixture
def client(config: MetricsConfig) -> Iterator[TestClient]:
    app = _hostile_app(config)
    with TestClient(app) as c:
        for i in range(max(len(HOSTILE_NAMES), len(HOSTILE_TEXTS))):
            answer = c.get(f"/named/{i}")
            assert answer.status_code == 400 + i % 100
            assert tuple(answer.json()) == JSON_KEYS
        for i in range(len(HOSTILE_TEXTS)):
            assert c.post(f"/http/{i}").status_code == 400 + i % 5
        # Secrets in paths and query strings: unknown routes, validation errors.
        for secret in SECRETS:
            assert c.get(f"/reset/{secret}", params={"password": PASSWORD}).status_code == 404
            assert c.get(f"/users/{secret}", params={"token": secret}).status_code == 422
            assert c.get(f"/users/1?email={EMAIL}&jwt={JWT}").status_code == 404
        yield c


def _label_values(families: Any) -> list[str]:
    return [v for f in families for s in f.samples for v in s.labels.values()]


def test_metrics_parse_and_label_values_are_cut(client: TestClient) -> None:
    text = client.get("/metrics").text
    families = list(parse_text(text))
    by_name = {f.name: f for f in families}
    values = _label_values(families)
    assert values and all(len(v) <= CAP for v in values)
    names = {s.labels["error_name"] for s in by_name["fastapi_errors_by_code"].samples}
    assert {n[:CAP] for n in HOSTILE_NAMES} <= names
    total = by_name["fastapi_errors"].samples[0].value
    assert total == sum(s.value for s in by_name["fastapi_errors_by_status"].samples)

    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    om_families = list(parse_openmetrics(om.text))
    assert sorted(_label_values(om_families)) == sorted(values)
    assert not leaked(text)


def test_dashboard_json_never_shows_a_secret(client: TestClient) -> None:
    answers: dict[str, Any] = {}
    for url in (
        "/api/metrics/summary",
        "/api/metrics/recent?limit=1000",
        "/api/metrics/top-errors?limit=100",
        "/api/metrics/timeseries?top=20",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        answers[url] = response.json()
    codes = {e["error_code"] for e in answers["/api/metrics/recent?limit=1000"]["events"]}
    for code in sorted(codes):
        url = f"/api/metrics/by-code/{code}?limit=1000"
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        answers[url] = response.json()
    problems = {url: found for url, data in answers.items() if (found := leaked(data))}
    assert not problems

    events = answers["/api/metrics/recent?limit=1000"]["events"]
    assert len(events) >= len(HOSTILE_TEXTS) * 2
    for event in events:
        assert len(event["message"]) <= CAP
        assert event["path"] in (None, "/named/{i}", "/http/{i}", "/users/{user_id}")
        for text in _strings(event["detail"]):
            assert len(text) <= CAP


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)
