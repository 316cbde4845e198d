"""GET {dashboard_prefix}/: one self-contained HTML page, protected like the JSON endpoints."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig
from fastapi_error_codes.metrics.setup import setup_metrics

TOKEN = "dashboard-test-token-0123456789"


def _client(**overrides: object) -> TestClient:
    app = FastAPI()
    config = MetricsConfig.testing(flush_interval_ms=60_000, **overrides)
    setup_exception_handler(app, metrics_config=config)
    return TestClient(app)


@pytest.fixture(scope="module")
def page() -> tuple[str, dict[str, str]]:
    with _client() as client:
        response = client.get("/api/metrics/")
    assert response.status_code == 200
    return response.text, dict(response.headers)


def test_served_as_utf8_html(page: tuple[str, dict[str, str]]) -> None:
    html, headers = page
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


def test_same_bytes_as_the_package_data_file(page: tuple[str, dict[str, str]]) -> None:
    html, _ = page
    data = resources.files("fastapi_error_codes.metrics.dashboard") / "static" / "dashboard.html"
    assert data.read_text(encoding="utf-8") == html


def test_no_reference_to_any_other_host(page: tuple[str, dict[str, str]]) -> None:
    html, _ = page
    assert not re.search(r"https?://", html, flags=re.IGNORECASE)
    assert not re.search(r"""["'(]\s*//[^/\s]""", html), "a protocol-relative URL"
    # Nothing is loaded by markup: no external scripts, styles, images, frames or fonts.
    assert not re.search(r"<script[^>]*\bsrc=", html, flags=re.IGNORECASE)
    assert not re.search(r"<(iframe|img|object|embed|audio|video|source)\b", html, re.IGNORECASE)
    assert "@import" not in html
    assert "url(" not in html
    for value in re.findall(r"""\b(?:href|src|action)\s*=\s*["']([^"']*)""", html):
        assert value.startswith("data:"), value
    # The script talks to the JSON endpoints only, by paths relative to the page.
    fetched = re.findall(r"""api\(\s*[`'"]([^`'"]+)""", html)
    assert {f.split("?")[0] for f in fetched} == {
        "summary",
        "timeseries",
        "top-errors",
        "recent",
        "routes",
    }
    # The CSV downloads: the same JSON endpoints' CSV twins, fetched (token in a header).
    exports = re.findall(r"""\[\s*[`'"]([a-z-]+\.csv)[?`'"]""", html)
    assert set(exports) == {"summary.csv", "timeseries.csv", "routes.csv"}


def _function_body(html: str, name: str) -> str:
    """The text of the script's ``function name(...) {...}``, up to the next function."""
    start = html.index(f"function {name}(")
    end = html.find("\n  function ", start + 1)
    return html[start:end]


def _fields(code: str, variable: str) -> set[str]:
    return set(re.findall(rf"\b{variable}\.([a-z_][a-z0-9_]*)", code))


def test_the_script_reads_only_fields_the_endpoints_serve(
    page: tuple[str, dict[str, str]],
) -> None:
    """Every field the page reads exists in the JSON it fetches (e.g. /recent's ``events``)."""
    html, _ = page
    app = FastAPI()
    setup_exception_handler(app, metrics_config=MetricsConfig.testing(flush_interval_ms=60_000))
    app.state.metrics_collector.record(301, "UserNotFound", 404, "x", path="/u/{id}", method="GET")
    with TestClient(app) as client:
        answers = {
            name: client.get(f"/api/metrics/{name}").json()
            for name in ("summary", "timeseries", "top-errors?limit=10", "recent?limit=25")
        }
        client.get("/nowhere")  # one request by route: a row in /routes
        routes = client.get("/api/metrics/routes").json()
    recent = answers["recent?limit=25"]
    read = {
        "recent": (_fields(_function_body(html, "refresh"), "recent"), recent),
        "event": (_fields(_function_body(html, "renderRecent"), "e"), recent["events"][0]),
        "top row": (
            _fields(_function_body(html, "renderTop"), "r"),
            answers["top-errors?limit=10"][0],
        ),
        "routes": (_fields(html, "rt"), routes),
        "route row": (_fields(_function_body(html, "renderRoutes"), "r"), routes["routes"][0]),
        "route error": (
            _fields(_function_body(html, "renderRoutes"), "t"),
            routes["routes"][0]["top_errors"][0],
        ),
        "summary": (_fields(html, "sm"), answers["summary"]),
        "timeseries": (_fields(html, "ts"), answers["timeseries"]),
    }
    assert read["recent"][0] == {"events"}  # /recent is {"events", "count", "timestamp"}
    assert {"request_id", "sentry_url"} <= read["event"][0]
    for what, (fields, body) in read.items():
        assert fields, what
        assert fields <= set(body), (what, fields - set(body))


def test_inserts_text_never_markup(page: tuple[str, dict[str, str]]) -> None:
    html, _ = page
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in html, sink
    assert "textContent" in html
    # The token goes into a header from sessionStorage, with same-origin credentials.
    assert "credentials: 'same-origin'" in html
    assert "sessionStorage" in html
    assert "'Bearer ' + token" in html
    assert "localStorage" not in html


def test_csp_allows_only_the_inline_script_and_style(page: tuple[str, dict[str, str]]) -> None:
    html, headers = page
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    for tag in ("script", "style"):
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        assert len(bodies) == 1
        digest = base64.b64encode(hashlib.sha256(bodies[0].encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp


def test_page_is_not_in_the_openapi_schema() -> None:
    with _client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert "/api/metrics/" not in paths
    assert "/api/metrics/timeseries" in paths


def test_without_slash_redirects_to_the_page() -> None:
    with _client() as client:
        response = client.get("/api/metrics", follow_redirects=False)
    assert response.status_code in (307, 308)
    assert response.headers["location"].endswith("/api/metrics/")


def test_custom_prefix() -> None:
    with _client(dashboard_prefix="/ops/errors") as client:
        assert client.get("/ops/errors/").headers["content-type"].startswith("text/html")
        assert client.get("/ops/errors/timeseries").status_code == 200


def test_same_protection_as_the_json_endpoints() -> None:
    with _client(auth_token=TOKEN) as client:
        # The page itself holds no data and a browser cannot send a bearer token when it
        # opens a page: it is served, and its token field sends the token on every fetch.
        shell = client.get("/api/metrics/")
        assert shell.status_code == 200
        assert TOKEN not in shell.text
        for path in (
            "/api/metrics/timeseries",
            "/api/metrics/summary",
            "/api/metrics/recent",
            "/api/metrics/top-errors",
            "/api/metrics/by-code/404",
            "/api/metrics/routes",
            "/api/metrics/summary.csv",
            "/api/metrics/timeseries.csv",
            "/api/metrics/routes.csv",
        ):
            denied = client.get(path)
            assert denied.status_code == 401, path
            assert denied.json()["status_code"] == 401
            wrong = client.get(path, headers={"Authorization": "Bearer " + "x" * 31})
            assert wrong.status_code == 401, path
            allowed = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert allowed.status_code == 200, path  # by-code: a count of 0 until seen


def _session_cookie(request: Request) -> None:
    if request.cookies.get("session") != "ok":
        raise HTTPException(status_code=403, detail="no session")


def test_user_dependency_protects_the_page() -> None:
    """A session-cookie dependency: the page and its fetches (same-origin credentials) pass."""
    app = FastAPI()
    setup_exception_handler(app)
    setup_metrics(app, MetricsConfig.testing(), auth_dependency=_session_cookie)
    with TestClient(app) as client:
        assert client.get("/api/metrics/").status_code == 403
        client.cookies.set("session", "ok")
        assert client.get("/api/metrics/").status_code == 200
        assert client.get("/api/metrics/timeseries").status_code == 200


def test_dashboard_disabled_serves_no_page() -> None:
    with _client(dashboard_enabled=False) as client:
        assert client.get("/api/metrics/").status_code == 404
