"""A scrape storm while Redis is slow: the app's own endpoints keep answering.

A redis-server of the test's own sits behind a proxy that holds every reply back longer than
the client's timeout. A real FastAPI app with ``setup_metrics`` and a ``def`` endpoint of its
own gets 50 concurrent ``/metrics`` clients (httpx over ASGI, in one event loop, as uvicorn
would run them) while a client of the app's own endpoint keeps asking. Asserted structurally:
the app's endpoint keeps answering, at most ``read_concurrency`` store reads ever run at once
(and never on the app's threadpool), every scrape is a 200 or our 503, and the failure is
logged once, its end once. Timing bounds are sanity bounds only (a shared machine).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from benchmarks.relay import DelayingProxy
from fastapi import FastAPI

from fastapi_error_codes.metrics import MetricsConfig, setup_metrics
from tests._servers import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

STORM = 50
READ_CONCURRENCY = 2
STORM_S = 4.0
FAILED = "metrics store read failed"
RECOVERED = "reading the metrics store works again"


@dataclass
class ReadProbe:
    """Counts the store reads running at once and the threads they run on."""

    running: int = 0
    peak: int = 0
    calls: int = 0
    threads: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.calls += 1
                self.running += 1
                self.peak = max(self.peak, self.running)
                self.threads.add(threading.current_thread().name)
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        return counted


@dataclass
class Rig:
    app: FastAPI
    proxy: DelayingProxy
    probe: ReadProbe


@pytest.fixture
def rig() -> Iterator[Rig]:
    server = RedisServer().start()
    proxy = DelayingProxy(server.port, delay_s=1.5)  # longer than the client's timeout
    config = MetricsConfig(
        redis_url=proxy.url,
        namespace=f"fect-storm-{uuid.uuid4().hex[:8]}",
        redis_timeout_ms=1000,
        flush_interval_ms=60_000,
        read_concurrency=READ_CONCURRENCY,
    )
    app = FastAPI()
    components = setup_metrics(app, config)

    @app.get("/own")
    def own() -> dict[str, bool]:  # a plain def endpoint: it needs the app's threadpool
        return {"ok": True}

    collector = components["collector"]
    store: Any = collector.store
    probe = ReadProbe()
    store.read = probe.wrap(store.read)
    store.recent_events = probe.wrap(store.recent_events)
    try:
        yield Rig(app, proxy, probe)
    finally:
        proxy.delay_s = 0.0
        collector.close(timeout=2)
        app.state.metrics_read_gate.close()
        proxy.close()
        server.close()


async def _storm(app: FastAPI) -> tuple[list[tuple[int, float, Any]], list[float], int]:
    """50 scrapers and one client of the app's own endpoint, for STORM_S seconds."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        stop = time.monotonic() + STORM_S
        scrapes: list[tuple[int, float, Any]] = []
        own: list[float] = []

        async def scraper() -> None:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                response = await client.get("/metrics", headers={"Accept": "text/plain"})
                body = response.json() if response.status_code == 503 else response.text
                scrapes.append((response.status_code, time.monotonic() - t0, body))
                if response.status_code == 503:
                    assert response.headers["retry-after"] in {"1", "5"}
                    await asyncio.sleep(0.05)  # a scraper that retries at once, nearly

        async def own_client() -> int:
            await asyncio.sleep(0.3)  # the storm is on: every scraper has asked
            answered = 0
            while time.monotonic() < stop:
                t0 = time.monotonic()
                response = await client.get("/own")
                assert response.status_code == 200
                own.append(time.monotonic() - t0)
                answered += 1
                await asyncio.sleep(0.01)
            return answered

        *_, answered = await asyncio.gather(*(scraper() for _ in range(STORM)), own_client())
        return scrapes, own, answered


async def _until_metrics_answer(app: FastAPI, timeout: float) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        deadline = time.monotonic() + timeout
        status = 0
        while time.monotonic() < deadline:
            status = (await client.get("/metrics")).status_code
            if status == 200:
                break
            await asyncio.sleep(0.2)
        return status


def test_a_scrape_storm_on_a_slow_redis_leaves_the_app_answering(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fastapi_error_codes.metrics"):
        scrapes, own, answered = asyncio.run(_storm(rig.app))
        storm_messages = [r.getMessage() for r in caplog.records]
        rig.proxy.delay_s = 0.0  # Redis is fast again
        assert asyncio.run(_until_metrics_answer(rig.app, timeout=20)) == 200
    messages = [r.getMessage() for r in caplog.records]

    # The app's own endpoint kept answering all through the storm.
    assert answered >= 50, answered  # reads holding the threadpool: about 15
    assert max(own) < 1.0, sorted(own)[-5:]  # sanity: a threadpool held by reads gives >= 1.5 s

    # The store was never read by more than read_concurrency threads, all of them the gate's.
    assert rig.probe.calls >= 1
    assert rig.probe.peak <= READ_CONCURRENCY, rig.probe.peak
    assert all(name.startswith("fastapi-error-codes-read") for name in rig.probe.threads)
    gate = rig.app.state.metrics_read_gate
    assert gate.stats.peak <= READ_CONCURRENCY
    assert gate.stats.reads < len(scrapes) / 5  # the storm was coalesced, not multiplied

    # Every scrape was answered: our 503 (fast: within the read deadline) or a 200.
    assert len(scrapes) >= STORM
    statuses = {status for status, _, _ in scrapes}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses
    for status, seconds, body in scrapes:
        assert seconds < gate.deadline_s + 2.0, seconds  # sanity bound, not a benchmark
        if status == 503:
            assert body["status_code"] == 503 and body["error_code"], body

    # One warning for the whole failure streak, one line when it ended.
    assert sum(FAILED in m for m in storm_messages) == 1, storm_messages
    assert sum(FAILED in m for m in messages) == 1
    assert sum(RECOVERED in m for m in messages) == 1
