"""examples/fleet.py: several workers (here: two apps in one process) share one Redis."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.examples._client import by_code, total


def _import_fleet(monkeypatch: pytest.MonkeyPatch, url: str, namespace: str) -> ModuleType:
    # examples.fleet builds its app at import and refuses to without FEC_REDIS_URL.
    monkeypatch.setenv("FEC_REDIS_URL", url)
    monkeypatch.setenv("FEC_NAMESPACE", namespace)
    sys.modules.pop("examples.fleet", None)
    return importlib.import_module("examples.fleet")


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The module, imported against a Redis URL nothing listens on (never contacted here)."""
    module = _import_fleet(monkeypatch, "redis://127.0.0.1:1/0", "fect-unused")
    yield module
    module.app.state.metrics_collector.close(timeout=0)


def test_importing_without_redis_fails_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FEC_REDIS_URL", raising=False)
    sys.modules.pop("examples.fleet", None)
    with pytest.raises(RuntimeError, match="needs FEC_REDIS_URL"):
        importlib.import_module("examples.fleet")
    sys.modules.pop("examples.fleet", None)


def test_fleet_refuses_to_start_without_redis(fleet: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="FEC_REDIS_URL"):
        fleet.fleet_config({})
    with pytest.raises(RuntimeError, match="FEC_REDIS_URL"):
        fleet.create_fleet_app({"FEC_NAMESPACE": "x"})


def test_gunicorn_command_line(fleet: ModuleType) -> None:
    argv = fleet.gunicorn_argv(workers=3, bind="127.0.0.1:9000")
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert argv[argv.index("--config") + 1] == str(fleet.GUNICORN_CONF)
    assert Path(argv[argv.index("--config") + 1]).is_file()
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--worker-class") + 1] == "uvicorn_worker.UvicornWorker"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:9000"
    assert argv[-1] == "examples.fleet:app"


@pytest.mark.redis
def test_every_worker_answers_with_fleet_totals(
    fleet: ModuleType, redis_url: str, redis_namespace: str
) -> None:
    env = {
        "FEC_REDIS_URL": redis_url,
        "FEC_NAMESPACE": redis_namespace,
        "FEC_FLUSH_INTERVAL_MS": "50",
    }
    worker_a = fleet.create_fleet_app(env)
    worker_b = fleet.create_fleet_app(env)
    with (
        TestClient(worker_a, raise_server_exceptions=False) as a,
        TestClient(worker_b, raise_server_exceptions=False) as b,
    ):
        for _ in range(3):
            assert a.get("/users/9").json()["error_code"] == 301
        for _ in range(2):
            assert b.post("/orders/2/cancel").json()["error_code"] == 303
        assert b.get("/boom").status_code == 500
        # A worker flushes its own buffer before answering and reads the shared store; the
        # others' errors arrive within their flush interval (50 ms here). Then both answer
        # with all six errors, whichever one Prometheus happens to reach.
        for client in (a, b):
            deadline = time.monotonic() + 5  # generous on a busy machine
            text = client.get("/metrics").text
            while total(text) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
                text = client.get("/metrics").text
            assert total(text) == 6
            assert by_code(text) == {301: 3, 303: 2, 500: 1}
        summary = a.get("/api/metrics/summary").json()
        assert summary["workers"] == 2
        assert summary["total_errors"] == 6


@pytest.mark.redis
def test_module_app_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_namespace: str
) -> None:
    module = _import_fleet(monkeypatch, redis_url, redis_namespace)
    try:
        assert isinstance(module.app, FastAPI)
        collector = module.app.state.metrics_collector
        assert type(collector.store).__name__ == "RedisStore"
        assert collector.config.namespace == redis_namespace
    finally:
        # Close now: otherwise the atexit fallback would flush into the namespace after the
        # fixture deleted it.
        module.app.state.metrics_collector.close(timeout=2)
