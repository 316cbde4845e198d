"""deploy/gunicorn.conf.py: the settings gunicorn reads, and what its hooks do (and don't)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from tests.deploy._files import DEPLOY, ROOT, gunicorn_settings

CONF = DEPLOY / "gunicorn.conf.py"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in list(os.environ):
        if name.startswith(("FEC_", "GUNICORN_")) or name in ("WEB_CONCURRENCY", "BIND"):
            monkeypatch.delenv(name)
    return gunicorn_settings()


def test_defaults(settings: dict[str, Any]) -> None:
    assert settings["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert settings["workers"] == 4
    assert settings["bind"] == "0.0.0.0:8000"
    assert settings["preload_app"] is True  # the library is fork-safe
    # Room for the final flush in the lifespan shutdown: store (5 s) + Sentry (2 s).
    assert settings["graceful_timeout"] >= 10
    assert settings["control_socket_disable"] is True
    # No post_fork: the collector resets itself after fork and starts its thread lazily.
    assert "post_fork" not in settings


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    monkeypatch.setenv("GUNICORN_PRELOAD", "0")
    monkeypatch.setenv("GUNICORN_MAX_REQUESTS", "1000")
    settings = gunicorn_settings()
    assert settings["workers"] == 2
    assert settings["preload_app"] is False
    assert (settings["max_requests"], settings["max_requests_jitter"]) == (1000, 100)


def test_gunicorn_accepts_the_config_and_imports_the_app() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEC_")}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(CONF), "examples.app:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def info(self, msg: str, *args: Any) -> None:
        self.records.append(("info", msg % args))

    def warning(self, msg: str, *args: Any) -> None:
        self.records.append(("warning", msg % args))


def test_when_ready_warns_about_workers_without_redis(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _Log()
    settings["when_ready"](SimpleNamespace(log=log, num_workers=4))
    ((level, message),) = log.records
    assert level == "warning" and "FEC_REDIS_URL" in message
    log.records.clear()
    settings["when_ready"](SimpleNamespace(log=log, num_workers=1))
    assert log.records == []  # one worker on the in-process store is fine
    monkeypatch.setenv("FEC_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings["when_ready"](SimpleNamespace(log=log, num_workers=4))
    ((level, message),) = log.records
    assert level == "info" and "share the Redis store" in message


class _Collector:
    def __init__(self, fail: bool = False) -> None:
        self.closed: list[float] = []
        self.fail = fail

    def close(self, timeout: float = 5.0) -> bool:
        self.closed.append(timeout)
        if self.fail:
            raise RuntimeError("store gone")
        return True


def _worker(pid: int, collector: _Collector) -> SimpleNamespace:
    app = SimpleNamespace(state=SimpleNamespace(metrics_collector=collector))
    return SimpleNamespace(pid=pid, wsgi=app)


def test_worker_exit_is_only_a_fallback_inside_the_worker(settings: dict[str, Any]) -> None:
    worker_exit = settings["worker_exit"]
    collector = _Collector()
    # gunicorn may call the hook in the master for a worker that is gone: do nothing there.
    worker_exit(None, _worker(os.getpid() + 1, collector))
    assert collector.closed == []
    # In the worker: close() (idempotent; a no-op after the lifespan's final flush).
    worker_exit(None, _worker(os.getpid(), collector))
    assert collector.closed == [2.0]
    # A worker without the app loaded, or an app without metrics: nothing to do.
    worker_exit(None, SimpleNamespace(pid=os.getpid(), wsgi=None))


def test_worker_exit_never_raises(
    settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gunicorn.error"):
        settings["worker_exit"](None, _worker(os.getpid(), _Collector(fail=True)))
    assert "fallback flush in worker_exit failed" in caplog.text
