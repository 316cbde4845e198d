"""The fleet's clock is Redis's: skewed workers and long partitions never double-count.

Each test starts a redis-server of its own. Workers are collectors whose wall clock is skewed
by minutes or a day (their ``clock=``); a ReplyDroppingProxy loses replies after Redis applied
a batch, the case the seq check exists for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis
from benchmarks.relay import ReplyDroppingProxy

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, RedisStore
from tests._servers import RedisServer

pytestmark = pytest.mark.redis

DAY = 86400.0
SKEWS = {"exact": 0.0, "ahead-5m": 300.0, "behind-5m": -300.0, "ahead-25h": 25 * 3600.0}
SKEWS["behind-25h"] = -25 * 3600.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer().start()
    yield srv
    srv.close()


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    # AOF on, so that a restart keeps what was counted before the outage
    srv = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    yield srv
    srv.close()


def skewed(offset_s: float) -> Callable[[], float]:
    """A wall clock *offset_s* seconds off the real one."""
    return lambda: time.time() + offset_s


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def test_skewed_workers_count_exactly_in_the_right_windows(server: RedisServer) -> None:
    proxy = ReplyDroppingProxy(server.port)
    config = MetricsConfig.testing(
        redis_url=f"redis://127.0.0.1:{proxy.port}/0", flush_interval_ms=60_000
    )
    workers = {
        name: ErrorMetricsCollector(config, clock=skewed(skew)) for name, skew in SKEWS.items()
    }
    client = redis.Redis(port=server.port)
    try:
        for collector in workers.values():  # announce: the first round trip measures the offset
            collector.start()
            assert collector.flush()
        time.sleep(0.5)  # the flusher threads' own first clock sync must not meet a lost reply
        expected = 0
        for round_ in range(3):
            for i, (name, collector) in enumerate(workers.items()):
                for _ in range(10 + i):
                    collector.record(300 + i, name, 500, "x")
                expected += 10 + i
                if round_ == 1:  # Redis applies the batch, the reply is lost, it is retried
                    proxy.drop_next_reply()
                    assert not collector.flush()
                assert collector.flush()
        assert proxy.dropped == len(workers)
        view = RedisStore(config.replace(redis_url=server.url)).read(window_s=3600)
        assert view.total == expected  # no double count, nothing lost
        assert view.dropped == 0
        assert view.workers == len(workers)  # each one live by Redis's clock
        # Every error is filed in the bucket of Redis's "now" (or the one before, if the test
        # crossed a bucket boundary), never a day or five minutes away.
        now = redis_now(client)
        current = int(now) - int(now) % 60
        assert set(view.buckets) <= {current, current - 60}
        assert sum(sum(cells.values()) for cells in view.buckets.values()) == expected
        # Their events carry Redis's time too.
        events = workers["ahead-25h"].get_recent_events(100)
        assert events and all(abs(e.timestamp.timestamp() - now) < 60 for e in events)
    finally:
        for collector in workers.values():
            collector.close(timeout=1)
        client.close()
        proxy.close()


def test_a_worker_a_day_ahead_prunes_no_one(server: RedisServer) -> None:
    """The old failure: its flush forgot every other worker's seq; a lost reply then doubled."""
    proxy = ReplyDroppingProxy(server.port)
    config = MetricsConfig.testing(
        redis_url=f"redis://127.0.0.1:{proxy.port}/0", flush_interval_ms=60_000
    )
    honest = [ErrorMetricsCollector(config) for _ in range(3)]
    ahead = ErrorMetricsCollector(config, clock=skewed(25 * 3600))
    client = redis.Redis(port=server.port)
    try:
        for collector in honest:
            collector.record(301, "A", 404, "x")
            assert collector.flush()
        ahead.record(302, "B", 404, "x")
        assert ahead.flush()
        time.sleep(0.5)  # the flusher threads' own first clock sync must not meet a lost reply
        seq_key = "{" + config.namespace + "}:seq"
        assert client.hlen(seq_key) == 4  # nobody was forgotten
        for collector in honest:
            for _ in range(50):
                collector.record(301, "A", 404, "x")
            proxy.drop_next_reply()
            assert not collector.flush()
            assert collector.flush()  # the retry: refused by the seq check
        totals = RedisStore(config.replace(redis_url=server.url)).read().totals
        assert totals == {(301, 404): 3 + 150, (302, 404): 1}
    finally:
        for collector in [*honest, ahead]:
            collector.close(timeout=1)
        client.close()
        proxy.close()


def test_a_worker_a_day_behind_is_not_pruned_by_the_others(server: RedisServer) -> None:
    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    behind = ErrorMetricsCollector(config, clock=skewed(-25 * 3600))
    others = [ErrorMetricsCollector(config) for _ in range(2)]
    client = redis.Redis(port=server.port)
    try:
        behind.record(301, "A", 404, "x")
        assert behind.flush()
        for collector in others:
            collector.record(302, "B", 404, "x")
            assert collector.flush()
        assert client.hexists("{" + config.namespace + "}:seq", behind.worker_id)
        view = RedisStore(config).read()
        assert view.workers == 3
        # Retiring uses Redis's clock too: the worker leaves the live set, the others stay.
        behind.close(timeout=1)
        assert RedisStore(config).read().workers == 2
    finally:
        for collector in [behind, *others]:
            collector.close(timeout=1)
        client.close()


def _age_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the flusher's monotonic clock jump, as after a partition of *seconds*."""
    import fastapi_error_codes.metrics.flusher as flusher_mod

    real = time.monotonic
    monkeypatch.setattr(flusher_mod.time, "monotonic", lambda: real() + seconds)


def _forget_worker_in_redis(client: redis.Redis, namespace: str, worker_id: str) -> None:
    """Make Redis last have seen *worker_id* 25 h ago (by its own clock), as after a partition."""
    seconds, _micros = client.time()
    client.zadd("{" + namespace + "}:workers", {worker_id: (seconds - 25 * 3600) * 1000})


def test_a_retry_after_a_longer_partition_than_the_forget_window_is_refused(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ReplyDroppingProxy(server.port)
    config = MetricsConfig.testing(
        redis_url=f"redis://127.0.0.1:{proxy.port}/0", flush_interval_ms=60_000
    )
    partitioned = ErrorMetricsCollector(config)
    other = ErrorMetricsCollector(config.replace(redis_url=server.url))
    client = redis.Redis(port=server.port)
    try:
        partitioned.record(301, "A", 404, "x")
        assert partitioned.flush()
        time.sleep(0.5)  # the flusher thread's own first clock sync must not meet a lost reply
        for _ in range(50):
            partitioned.record(301, "A", 404, "x")
        proxy.drop_next_reply()
        assert not partitioned.flush()  # applied; the worker cannot know
        # 25 h pass without Redis: everyone else's flush forgets the silent worker's seq.
        _forget_worker_in_redis(client, config.namespace, partitioned.worker_id)
        other.record(302, "B", 404, "x")
        assert other.flush()
        assert not client.hexists("{" + config.namespace + "}:seq", partitioned.worker_id)
        _age_by(monkeypatch, 25 * 3600)
        partitioned.flush()  # the retry is refused, not applied a second time
        assert partitioned.flusher.pending_count == 0
        partitioned.record(301, "A", 404, "after")
        assert partitioned.flush()
        view = RedisStore(config.replace(redis_url=server.url)).read()
        assert view.totals == {(301, 404): 52, (302, 404): 1}  # 1 + 50 once + 1
        assert view.dropped == 50  # the refused retry is counted as dropped
    finally:
        partitioned.close(timeout=1)
        other.close(timeout=1)
        client.close()
        proxy.close()


def test_a_batch_that_never_reached_redis_is_applied_after_a_long_outage(
    aof_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused at every attempt: the outcome is known (not applied), so no refusal."""
    server = aof_server
    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    worker = ErrorMetricsCollector(config)
    try:
        worker.record(301, "A", 404, "x")
        assert worker.flush()
        for _ in range(20):
            worker.record(301, "A", 404, "x")
        server.stop()
        assert not worker.flush()
        assert not worker.flush()
        server.start()
        client = redis.Redis(port=server.port)
        _forget_worker_in_redis(client, config.namespace, worker.worker_id)
        client.hdel("{" + config.namespace + "}:seq", worker.worker_id)
        client.close()
        _age_by(monkeypatch, 25 * 3600)
        assert worker.flush()
        view = RedisStore(config).read()
        assert view.totals == {(301, 404): 21}
        assert view.dropped == 0
    finally:
        worker.close(timeout=1)


def test_a_skewed_worker_serves_the_right_windows(server: RedisServer) -> None:
    """The dashboard's "last 5 minutes" is computed by Redis's clock, not the reader's."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from fastapi_error_codes.metrics import DashboardAPI

    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    writer = ErrorMetricsCollector(config)
    reader = ErrorMetricsCollector(config, clock=skewed(25 * 3600))
    try:
        for _ in range(7):
            writer.record(301, "A", 404, "x")
        assert writer.flush()
        app = FastAPI()
        app.include_router(DashboardAPI(reader).router, prefix="/m")
        with TestClient(app) as client:
            summary = client.get("/m/summary").json()
            assert summary["total_errors"] == 7
            assert summary["last_5m"] == 7
            assert summary["last_1h"] == 7
            assert client.get("/m/by-code/301").json()["last_5m"] == 7
    finally:
        writer.close(timeout=1)
        reader.close(timeout=1)
