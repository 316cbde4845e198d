"""Faults of Redis under a real app: error responses keep their latency, nothing acknowledged is
lost, and each failure streak is logged once.

For every fault the test measures the p99 of error responses with no fault, then under the
fault, in the same run, and bounds the second generously by the first (a shared 2-core
machine). After the fault is removed the fleet total must be exact.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, RedisStore
from tests._servers import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REQUESTS = 150
FAILED = "flush to the metrics store failed"
RECOVERED = "flushing to the metrics store works again"


@dataclass
class Rig:
    server: RedisServer
    namespace: str
    client: TestClient
    collector: ErrorMetricsCollector
    raw: redis.Redis
    undo: list[Callable[[], None]] = field(default_factory=list)

    def key(self, name: str) -> str:
        return "{" + self.namespace + "}:" + name


def _p99(client: TestClient) -> float:
    times = []
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        assert client.get("/fail").status_code == 409
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[int(len(times) * 0.99) - 1]


def _redis_down(rig: Rig) -> None:
    rig.server.stop()
    rig.undo.append(rig.server.start)


def _redis_slow(rig: Rig) -> None:
    # DEBUG SLEEP blocks the server past the client's 200 ms socket timeout
    sleeper = threading.Thread(
        target=lambda: redis.Redis(port=rig.server.port).execute_command("DEBUG", "SLEEP", "1.5")
    )
    sleeper.start()
    time.sleep(0.05)
    rig.undo.append(sleeper.join)


def _wrong_type(rig: Rig) -> None:
    rig.raw.delete(rig.key("events"))
    rig.raw.set(rig.key("events"), "planted")
    rig.undo.append(lambda: rig.raw.delete(rig.key("events")))


def _script_flush(rig: Rig) -> None:
    rig.raw.script_flush()


def _pool_exhausted(rig: Rig) -> None:
    store = rig.collector.store
    assert isinstance(store, RedisStore)
    pool = store.client.connection_pool
    held = []
    while True:
        try:
            held.append(pool.get_connection())
        except redis.ConnectionError:
            break

    def release() -> None:
        for connection in held:
            pool.release(connection)

    rig.undo.append(release)


FAULTS: dict[str, tuple[Callable[[Rig], None], bool]] = {
    # name: (inject, whether flushes fail while it lasts)
    "redis killed and restarted": (_redis_down, True),
    "redis slower than the timeout": (_redis_slow, True),
    "a key of the wrong type": (_wrong_type, True),
    "script cache flushed": (_script_flush, False),
    "connection pool exhausted": (_pool_exhausted, True),
}


@pytest.fixture
def rig() -> Iterator[Rig]:
    server = RedisServer(
        "--enable-debug-command", "yes", "--appendonly", "yes", "--appendfsync", "always"
    ).start()
    namespace = f"fect-fault-{uuid.uuid4().hex[:8]}"
    config = MetricsConfig.testing(
        redis_url=server.url,
        namespace=namespace,
        flush_interval_ms=50,
        redis_timeout_ms=200,
        redis_max_connections=4,
    )
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config)

    @app.get("/fail")
    def fail() -> None:
        raise HTTPException(status_code=409, detail="conflict")

    raw = redis.Redis(port=server.port)
    try:
        with TestClient(app) as client:
            yield Rig(server, namespace, client, app.state.metrics_collector, raw)
    finally:
        raw.close()
        server.close()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_requests_keep_their_latency_and_counts_survive(
    rig: Rig, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    inject, fails = FAULTS[fault]
    baseline = _p99(rig.client)
    assert rig.collector.flush()
    with caplog.at_level("WARNING", logger="fastapi_error_codes.metrics"):
        inject(rig)
        under_fault = _p99(rig.client)
        time.sleep(0.3)  # several flush attempts while the fault lasts
        for undo in rig.undo:
            undo()
        deadline = time.monotonic() + 15
        while not rig.collector.flush() and time.monotonic() < deadline:
            time.sleep(0.05)
    # requests never waited on Redis: generous, since the machine is shared
    assert under_fault < max(3 * baseline, baseline + 0.05), (baseline, under_fault)
    view = rig.collector.read()
    assert view.totals == {(409, 409): 2 * REQUESTS}  # nothing lost, nothing doubled
    assert view.dropped == 0
    messages = [r.getMessage() for r in caplog.records]
    failed = [m for m in messages if FAILED in m]
    if fails:
        assert rig.collector.stats.flush_failures >= 1
        assert len(failed) == 1, failed  # one warning per failure streak, not one per attempt
        assert sum(RECOVERED in m for m in messages) == 1
    else:
        assert failed == []
