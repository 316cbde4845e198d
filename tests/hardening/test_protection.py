"""Protection of /metrics and every dashboard endpoint: bearer token and custom dependencies.

Behaviour only: requests without, with wrong and with right credentials, attempts to get
around the check (other methods, trailing slashes, odd headers), and a spy on
``hmac.compare_digest`` to see the token is compared in constant time on every request.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes._bodies import JSON_KEYS
from fastapi_error_codes.metrics import MetricsConfig, setup_metrics

TOKEN = "hardening-token-0123456789abcdef"
OPS_KEY = "ops-key-for-the-custom-dependency"

#: Every endpoint with data the library adds: /metrics and the dashboard JSON.
ENDPOINTS = (
    "/metrics",
    "/api/metrics/summary",
    "/api/metrics/recent",
    "/api/metrics/recent?limit=5&error_code=301",
    "/api/metrics/by-code/301",
    "/api/metrics/top-errors",
    "/api/metrics/timeseries",
    "/api/metrics/routes",
    "/api/metrics/summary.csv",
    "/api/metrics/timeseries.csv",
    "/api/metrics/routes.csv",
)
#: The dashboard page: HTML without data of its own, which fetches the JSON above.
PAGE = "/api/metrics/"
#: A message recorded before the checks: it must never reach someone without credentials.
CANARY = "canary-message-7f3a9c"

WRONG_CREDENTIALS: dict[str, dict[str, Any]] = {
    "none": {},
    "empty": {"Authorization": ""},
    "scheme only": {"Authorization": "Bearer"},
    "blank token": {"Authorization": "Bearer    "},
    "basic": {"Authorization": f"Basic {TOKEN}"},
    "token without scheme": {"Authorization": TOKEN},
    "last char differs": {"Authorization": f"Bearer {TOKEN[:-1]}X"},
    "first char differs": {"Authorization": f"Bearer X{TOKEN[1:]}"},
    "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "longer": {"Authorization": f"Bearer {TOKEN}0"},
    "other case": {"Authorization": f"Bearer {TOKEN.upper()}"},
    "in another header": {"X-Auth-Token": TOKEN},
    "latin-1 bytes": {"Authorization": b"Bearer \xff\xfe\xe9t\xe9"},
    "huge": {"Authorization": "Bearer " + "A" * 8000},
}


def _app(config: MetricsConfig, **setup: Any) -> FastAPI:
    app = FastAPI()
    setup_exception_handler(app)
    setup_metrics(app, config, **setup)

    @app.get("/users/{user_id}")
    def user(user_id: int) -> None:
        raise HTTPException(status_code=404, detail="no such user" if user_id == 1 else CANARY)

    return app


def _assert_denied(response: Any, status: int = 401) -> None:
    assert response.status_code == status, response.text[:200]
    body = response.json()
    assert tuple(body) == JSON_KEYS
    assert body["status_code"] == status
    assert body["error_code"] == status
    assert TOKEN not in response.text and OPS_KEY not in response.text
    assert CANARY not in response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def _assert_page_without_data(response: Any, status: int = 401) -> None:
    """The page is either refused like the JSON, or served as a shell holding no data."""
    if response.status_code != 200:
        _assert_denied(response, status)
        return
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert CANARY not in response.text and TOKEN not in response.text


@pytest.fixture(scope="module")
def token_client() -> Iterator[TestClient]:
    app = _app(MetricsConfig.testing(auth_token=TOKEN))
    with TestClient(app) as client:
        assert client.get("/users/7").status_code == 404  # code 404, message CANARY
        yield client


def _url(url: str) -> str:
    # by-code of a code that was recorded, so the right token gets a 200
    return url.replace("/by-code/301", "/by-code/404").replace("error_code=301", "error_code=404")


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("credentials", list(WRONG_CREDENTIALS), ids=str)
def test_wrong_credentials_get_401_in_our_body(
    token_client: TestClient, url: str, credentials: str
) -> None:
    _assert_denied(token_client.get(_url(url), headers=WRONG_CREDENTIALS[credentials]))


@pytest.mark.parametrize("url", ENDPOINTS)
def test_the_right_token_gets_200(token_client: TestClient, url: str) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = token_client.get(_url(url), headers={"Authorization": f"{scheme} {TOKEN}"})
        assert response.status_code == 200, response.text[:200]


@pytest.mark.parametrize("credentials", list(WRONG_CREDENTIALS), ids=str)
def test_the_page_holds_no_data_without_credentials(
    token_client: TestClient, credentials: str
) -> None:
    _assert_page_without_data(token_client.get(PAGE, headers=WRONG_CREDENTIALS[credentials]))


@pytest.mark.parametrize("url", ["/metrics", "/api/metrics/summary"])
def test_no_way_around_the_check(token_client: TestClient, url: str) -> None:
    assert token_client.head(url).status_code in (401, 405)
    for other in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        response = token_client.request(other, url)
        assert response.status_code in (401, 405), (other, response.status_code)
        assert tuple(response.json()) == JSON_KEYS
    # Trailing slash and doubled slashes: never the data without the token.
    for variant in (url.rstrip("/") + "/" if not url.endswith("/") else url[:-1], "/" + url):
        response = token_client.get(variant, follow_redirects=True)
        assert response.status_code in (401, 404), (variant, response.status_code)
    assert token_client.get(url.upper()).status_code in (401, 404)


def test_the_app_s_own_routes_stay_open(token_client: TestClient) -> None:
    response = token_client.get("/users/1")
    assert response.status_code == 404
    assert response.json()["message"] == "no such user"


def test_the_token_is_compared_in_constant_time(
    token_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong = f"Bearer {TOKEN[:-1]}X"
    assert token_client.get("/metrics", headers={"Authorization": wrong}).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert token_client.get("/metrics", headers=right).status_code == 200
    # One constant-time comparison per request, of the given token against the configured one.
    as_bytes = [{x.encode() if isinstance(x, str) else bytes(x) for x in c} for c in calls]
    assert as_bytes == [{f"{TOKEN[:-1]}X".encode(), TOKEN.encode()}, {TOKEN.encode()}]


# --- a dependency of the app's own --------------------------------------------------------


def require_ops_key(x_ops_key: str | None = Header(default=None)) -> None:
    if x_ops_key is None or not hmac.compare_digest(x_ops_key, OPS_KEY):
        raise HTTPException(status_code=403, detail="operators only")


async def require_internal_network(request: Request) -> None:
    host = request.client.host if request.client else ""
    if host != "testclient":
        raise HTTPException(status_code=403, detail="internal network only")


@pytest.mark.parametrize("dependency", [require_ops_key, require_internal_network])
def test_custom_auth_dependency_guards_every_endpoint(dependency: Any) -> None:
    app = _app(MetricsConfig.testing(), auth_dependency=dependency)
    with TestClient(app) as client:
        client.get("/users/7")
        allowed = {"X-Ops-Key": OPS_KEY}
        for url in ENDPOINTS:
            url = _url(url)
            assert client.get(url, headers=allowed).status_code == 200, url
            if dependency is require_ops_key:
                _assert_denied(client.get(url), 403)
                _assert_denied(client.get(url, headers={"X-Ops-Key": OPS_KEY[:-1]}), 403)
        # A dependency of the app's own guards the page too.
        assert client.get(PAGE, headers=allowed).status_code == 200
        if dependency is require_ops_key:
            _assert_denied(client.get(PAGE), 403)
        assert client.get("/users/1").status_code == 404  # the app's routes: untouched
    if dependency is require_internal_network:
        with TestClient(app, client=("203.0.113.9", 4242)) as outside:
            for url in (*ENDPOINTS, PAGE):
                _assert_denied(outside.get(_url(url)), 403)


def test_token_and_dependency_are_both_required() -> None:
    app = _app(MetricsConfig.testing(auth_token=TOKEN), auth_dependency=require_ops_key)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    ops = {"X-Ops-Key": OPS_KEY}
    with TestClient(app) as client:
        client.get("/users/7")
        for url in ENDPOINTS:
            url = _url(url)
            _assert_denied(client.get(url, headers=ops), 401)
            _assert_denied(client.get(url, headers=bearer), 403)
            assert client.get(url, headers={**bearer, **ops}).status_code == 200
        _assert_denied(client.get(PAGE, headers=bearer), 403)
        _assert_page_without_data(client.get(PAGE, headers=ops))
        assert client.get(PAGE, headers={**bearer, **ops}).status_code == 200


def test_unprotected_only_without_token_and_dependency() -> None:
    app = _app(MetricsConfig.testing())
    with TestClient(app) as client:
        client.get("/users/7")
        for url in (*ENDPOINTS, PAGE):
            assert client.get(_url(url)).status_code == 200, url
