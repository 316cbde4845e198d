"""examples/app.py: every route answers its declared error, and /metrics counts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics import MetricsConfig
from tests._servers import free_port, repo_root, wait_for_port
from tests.examples._client import by_code, total
from tests.examples._registry import example


@pytest.fixture
def client() -> Iterator[TestClient]:
    # A fresh app per test (in-process store): nothing leaks between tests.
    app = example("app").create_app(MetricsConfig.testing())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# (method, path, headers, expected status, expected error code, expected error name)
ERRORS = [
    ("GET", "/users/7", {}, 404, 301, "UserNotFound"),
    ("GET", "/orders/7", {}, 404, 302, "OrderNotFound"),
    ("POST", "/orders/7/cancel", {}, 404, 302, "OrderNotFound"),
    ("POST", "/orders/2/cancel", {}, 409, 303, "OrderAlreadyShipped"),
    ("POST", "/orders?quantity=0", {}, 400, 460, "InvalidQuantity"),
    ("POST", "/orders?quantity=many", {}, 422, 422, "ValidationError"),
    ("POST", "/checkout", {}, 401, 201, "InvalidApiKey"),
    ("POST", "/checkout", {"X-API-Key": "example-key"}, 503, 520, "PaymentServiceUnavailable"),
    ("GET", "/boom", {}, 500, 500, "InternalServerError"),
    ("GET", "/no/such/route", {}, 404, 404, "NotFound"),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "code", "name"), ERRORS)
def test_route_answers_its_declared_error(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: int,
    name: str,
) -> None:
    response = client.request(method, path, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert (body["error_code"], body["error_name"], body["status_code"]) == (code, name, status)


def test_successful_routes(client: TestClient) -> None:
    assert client.get("/users/1").json() == {"id": 1, "name": "ada"}
    assert client.get("/orders/1").json() == {"id": 1, "status": "open"}
    assert client.post("/orders/1/cancel").json()["status"] == "cancelled"
    assert client.post("/orders?quantity=3").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert "/metrics" in client.get("/").json()["try"]


def test_at_least_five_declared_codes_and_metrics_count_them(client: TestClient) -> None:
    for method, path, headers, *_ in ERRORS:
        client.request(method, path, headers=headers)
    expected: dict[int, int] = {}
    for *_, code, _name in ERRORS:
        expected[code] = expected.get(code, 0) + 1
    declared = {c for c in expected if c not in (404, 422, 500)}
    assert len(declared) >= 5
    text = client.get("/metrics").text
    assert total(text) == len(ERRORS)
    assert by_code(text) == expected
    summary = client.get("/api/metrics/summary").json()
    assert summary["total_errors"] == len(ERRORS)
    top = client.get("/api/metrics/top-errors", params={"limit": 1}).json()
    assert top[0]["error_code"] == 302  # OrderNotFound was raised twice
    assert client.get("/api/metrics/by-code/303").json()["total"] == 1


def test_module_app_reads_the_environment() -> None:
    # The module-level app is built from FEC_* variables: without FEC_REDIS_URL it uses the
    # in-process store (this test process sets none).
    module = example("app")
    assert isinstance(module.app, FastAPI)
    collector = module.app.state.metrics_collector
    expected = "MemoryStore" if not os.environ.get("FEC_REDIS_URL") else "RedisStore"
    assert type(collector.store).__name__ == expected


def _uvicorn_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEC_")}
    env["PYTHONPATH"] = str(repo_root())
    return env


def test_make_run_command_serves_the_example_under_real_uvicorn(tmp_path: object) -> None:
    # What `make run` runs: python -m uvicorn examples.app:app (on a free port here).
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "examples.app:app"]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=repo_root(),
        env=_uvicorn_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = ""
    try:
        wait_for_port(port, timeout=20)
        base = f"http://127.0.0.1:{port}"
        # A fresh connection per request: uvicorn closes the connection of a request whose
        # exception reached the server (the 500 of /boom), and a reused one would break.
        with httpx.Client(base_url=base, timeout=5, headers={"Connection": "close"}) as http:
            assert http.get("/users/1").status_code == 200
            body = http.get("/users/7").json()
            assert body["error_code"] == 301
            assert http.get("/boom").status_code == 500
            text = http.get("/metrics").text
            assert total(text) == 2
            assert by_code(text) == {301: 1, 500: 1}
            assert http.get("/api/metrics/summary").json()["workers"] == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            output = proc.communicate(timeout=15)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate()[0].decode(errors="replace")
    # uvicorn runs the lifespan shutdown (the final flush), then re-raises SIGTERM with the
    # default handler: it dies "by the signal" after a clean shutdown.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, output
