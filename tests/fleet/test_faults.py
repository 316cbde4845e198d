"""Faults against private redis-server processes: lost replies, outages, restarts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from benchmarks.relay import ReplyDroppingProxy

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, RedisStore
from tests._servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def server() -> Iterator[RedisServer]:
    # AOF on, so that a restart keeps what was counted before the outage
    srv = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    yield srv
    srv.close()


def test_lost_reply_is_retried_without_double_counting(server: RedisServer) -> None:
    proxy = ReplyDroppingProxy(server.port)
    config = MetricsConfig.testing(
        redis_url=f"redis://127.0.0.1:{proxy.port}/0", flush_interval_ms=60_000
    )
    collector = ErrorMetricsCollector(config)
    try:
        collector.record(301, "A", 404, "warm-up")  # loads the script first
        assert collector.flush()
        for _ in range(10):
            collector.record(301, "A", 404, "x")
        proxy.drop_next_reply()
        assert not collector.flush()  # Redis ran the script; the reply never arrived
        assert proxy.dropped == 1
        assert collector.flush()  # the same batch again: refused by the seq check
        direct = RedisStore(config.replace(redis_url=server.url))
        assert direct.read().totals == {(301, 404): 11}
        direct.close()
    finally:
        collector.close(timeout=1)
        proxy.close()


def test_outage_then_restart_keeps_totals_exact(server: RedisServer) -> None:
    config = MetricsConfig.testing(
        redis_url=server.url, flush_interval_ms=50, redis_timeout_ms=200, max_events=100
    )
    collector = ErrorMetricsCollector(config)
    try:
        slowest: list[float] = []

        def record_many(n: int) -> None:
            worst = 0.0
            for i in range(n):
                t0 = time.perf_counter()
                collector.record(300 + i % 3, "E", 500, "during outage")
                worst = max(worst, time.perf_counter() - t0)
            slowest.append(worst)

        record_many(300)
        assert collector.flush()
        server.stop()
        threads = [threading.Thread(target=record_many, args=(500,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.3)  # several failed flushes while Redis is down
        assert collector.stats.flush_failures >= 1
        assert not collector.flush(timeout=1)
        server.start()
        deadline = time.monotonic() + 10
        while not collector.flush() and time.monotonic() < deadline:
            time.sleep(0.05)
        view = collector.read()
        expected = Counter(300 + i % 3 for n in (300, 500, 500) for i in range(n))
        assert view.total == 1300  # nothing lost, nothing doubled
        assert view.by_code() == dict(expected)
        assert view.dropped == 0
        # the hot path never waited on Redis (generous: a shared 2-core machine)
        assert max(slowest) < 0.1
    finally:
        collector.close(timeout=2)


def test_final_flush_waits_for_a_short_outage(server: RedisServer) -> None:
    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    collector = ErrorMetricsCollector(config)
    collector.record(301, "A", 404, "x")
    server.stop()
    threading.Timer(0.5, server.start).start()
    assert collector.close(timeout=5)
    store = RedisStore(config)
    try:
        assert store.read().total == 1
    finally:
        store.close()


def test_app_requests_are_unaffected_by_an_outage(server: RedisServer) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from fastapi_error_codes import setup_exception_handler

    app = FastAPI()
    config = MetricsConfig.testing(redis_url=server.url, redis_timeout_ms=300)
    setup_exception_handler(app, metrics_config=config)
    with TestClient(app) as client:

        def timed_404s(n: int) -> float:
            worst = 0.0
            for _ in range(n):
                t0 = time.perf_counter()
                assert client.get("/missing").status_code == 404
                worst = max(worst, time.perf_counter() - t0)
            return worst

        timed_404s(50)
        server.stop()
        worst_during = timed_404s(200)
        down = client.get("/metrics")
        assert down.status_code == 503
        assert down.json()["status_code"] == 503
        assert down.headers["retry-after"] == "5"
        assert client.get("/api/metrics/summary").status_code == 503
        server.start()
        deadline = time.monotonic() + 10
        total = None
        while time.monotonic() < deadline:
            response = client.get("/api/metrics/summary")
            if response.status_code == 200:
                total = response.json()["error_counts"].get("404")
                if total == 250:
                    break
            time.sleep(0.1)
        assert total == 250  # every 404 answered during the outage is counted, once
        # requests never waited for the dead Redis (generous bound for a shared machine)
        assert worst_during < 0.25


def test_wrong_type_key_refuses_the_batch_before_any_write(server: RedisServer) -> None:
    import redis

    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    collector = ErrorMetricsCollector(config)
    raw = redis.Redis(port=server.port)
    try:
        collector.record(301, "A", 404, "x")
        assert collector.flush()
        raw.delete("{fastapi_errors}:events")
        raw.set("{fastapi_errors}:events", "planted")  # a string where the stream belongs
        for _ in range(4):
            collector.record(301, "A", 404, "x")
        assert not collector.flush()
        assert "WRONGTYPE" in (collector.stats.last_error or "")
        # nothing of the refused batch was written, and its seq was not marked applied
        assert raw.hget("{fastapi_errors}:totals", "301:404") == b"1"
        assert raw.hget("{fastapi_errors}:seq", collector.worker_id) == b"1"
        raw.delete("{fastapi_errors}:events")
        assert collector.flush()
        assert collector.read().totals == {(301, 404): 5}
    finally:
        collector.close(timeout=1)
        raw.close()


def test_slow_redis_reply_after_timeout_is_not_counted_twice() -> None:
    import redis

    server = RedisServer("--enable-debug-command", "yes").start()
    config = MetricsConfig.testing(
        redis_url=server.url, flush_interval_ms=60_000, redis_timeout_ms=200
    )
    collector = ErrorMetricsCollector(config)
    try:
        collector.record(301, "A", 404, "warm-up")
        assert collector.flush()
        for _ in range(9):
            collector.record(301, "A", 404, "x")
        sleeper = threading.Thread(
            target=lambda: redis.Redis(port=server.port).execute_command("DEBUG", "SLEEP", "1")
        )
        sleeper.start()
        time.sleep(0.1)
        t0 = time.perf_counter()
        assert not collector.flush()  # timed out; Redis runs the script after its sleep
        assert time.perf_counter() - t0 < 0.9
        sleeper.join()
        assert collector.flush()
        assert collector.read().totals == {(301, 404): 10}
    finally:
        collector.close(timeout=1)
        server.close()


def test_exhausted_connection_pool_fails_the_flush_not_the_request(server: RedisServer) -> None:
    config = MetricsConfig.testing(
        redis_url=server.url, flush_interval_ms=60_000, redis_max_connections=2
    )
    collector = ErrorMetricsCollector(config)
    store = collector.store
    assert isinstance(store, RedisStore)
    pool = store.client.connection_pool
    held = [pool.get_connection(), pool.get_connection()]
    try:
        t0 = time.perf_counter()
        collector.record(301, "A", 404, "x")
        assert time.perf_counter() - t0 < 0.05
        assert not collector.flush()
        assert "connections" in (collector.stats.last_error or "").lower()
        for connection in held:
            pool.release(connection)
        held = []
        assert collector.flush()
        assert collector.read().total == 1
    finally:
        for connection in held:
            pool.release(connection)
        collector.close(timeout=1)
