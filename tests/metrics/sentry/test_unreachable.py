"""A Sentry that cannot be reached never slows or fails a request; flush keeps its timeout."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration
from tests.metrics.sentry.conftest import CapturingTransport, reset_sentry
from tests.metrics.sentry.test_sentry import make_app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _integration(port: int, **init_options: Any) -> SentryIntegration:
    config = MetricsConfig.testing(
        sentry_enabled=True, sentry_dsn=f"http://publickey@127.0.0.1:{port}/1"
    )
    integration = SentryIntegration(config, init_options=init_options)
    integration.initialize()
    return integration


def _median_latency(integration: SentryIntegration, n: int = 40) -> float:
    times = []
    with TestClient(make_app(integration)) as client:
        for i in range(n + 5):
            start = time.perf_counter()
            assert client.get("/unavailable").status_code == 503
            if i >= 5:  # warm-up excluded
                times.append(time.perf_counter() - start)
    assert max(times) < 1.0  # no request ever waits for the network
    return statistics.median(times)


@pytest.mark.parametrize("where", ["closed", "blackhole"])
def test_requests_keep_their_latency(where: str, blackhole: int) -> None:
    # Reference: the same capture work (event building, masking) with a transport that
    # "sends" instantly. An unreachable Sentry must not add network time on top of it.
    reference = _median_latency(_integration(_free_port(), transport=CapturingTransport()))
    reset_sentry()
    port = _free_port() if where == "closed" else blackhole
    integration = _integration(port)
    unreachable = _median_latency(integration)
    # Generous (shared CI machines are noisy): blocking on the network would cost seconds.
    assert unreachable < reference * 2 + 0.05, (reference, unreachable)
    assert integration.failures == 0


@pytest.mark.parametrize("timeout", [0.3, 1.0])
def test_flush_returns_within_its_timeout_when_nothing_listens(timeout: float) -> None:
    integration = _integration(_free_port())
    for i in range(5):
        integration.capture_event(5003, "Unavailable", f"event {i}", status_code=503)
    start = time.perf_counter()
    result = integration.flush(timeout=timeout)
    elapsed = time.perf_counter() - start
    assert isinstance(result, bool)
    assert elapsed < timeout + 0.25


def test_flush_reports_false_when_the_server_hangs(blackhole: int) -> None:
    integration = _integration(blackhole)
    integration.capture_event(5003, "Unavailable", "stuck", status_code=503)
    start = time.perf_counter()
    assert integration.flush(timeout=0.5) is False
    assert time.perf_counter() - start < 0.75
