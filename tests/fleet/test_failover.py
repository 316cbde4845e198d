"""Sentinel failover under load: with redis_min_replicas nothing is lost or counted twice.

A master, a replica and a Sentinel of the test's own. Replication is stalled (a relay on the
replication link holds back what the master sends) while a worker keeps recording and
flushing, then the master is killed and Sentinel promotes the replica, which never received
the master's last writes. With
``redis_min_replicas=1`` a batch counts as flushed only once the replica confirmed it, so the
unconfirmed ones are sent again to the new master: the fleet total is exact and never goes
down: reads come from the replica, so they never see what a failover loses (Prometheus would
read a drop as a counter reset and count everything again).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from benchmarks.relay import StallingLink

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, RedisStore
from fastapi_error_codes.metrics.stores import StoreUnavailable
from tests._servers import RedisServer, free_port, wait_for_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@dataclass
class Group:
    master: RedisServer
    replica: RedisServer
    link: StallingLink
    sentinel_port: int
    url: str


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (redis.RedisError, StoreUnavailable):
            pass
        time.sleep(0.05)
    raise TimeoutError(what)


@pytest.fixture
def group() -> Iterator[Group]:
    master = RedisServer("--repl-diskless-sync-delay", "0").start()
    link = StallingLink(master.port)
    replica = RedisServer(
        "--replicaof", "127.0.0.1", str(link.port), "--replica-announce-ip", "127.0.0.1"
    ).start()
    port = free_port()
    conf = os.path.join(master.dir, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(
            f"port {port}\nbind 127.0.0.1\ndir {master.dir}\n"
            f"sentinel monitor fecfail 127.0.0.1 {master.port} 1\n"
            "sentinel down-after-milliseconds fecfail 400\n"
            "sentinel failover-timeout fecfail 2000\n"
        )
    sentinel = subprocess.Popen(
        ["redis-server", conf, "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        probe = redis.Redis(port=master.port)
        _wait(
            lambda: probe.info("replication").get("slave0", {}).get("state") == "online",
            10,
            "replica online",
        )
        probe.close()
        yield Group(master, replica, link, port, f"redis+sentinel://127.0.0.1:{port}/fecfail/0")
    finally:
        link.close()
        sentinel.terminate()
        sentinel.wait(10)
        for server in (replica, master):
            server.close()


def _master_port(group: Group) -> int:
    client = redis.Redis(port=group.sentinel_port)
    try:
        _host, port = client.execute_command("SENTINEL", "get-master-addr-by-name", "fecfail")
        return int(port)
    finally:
        client.close()


def test_failover_with_min_replicas_loses_nothing_and_counts_nothing_twice(
    group: Group,
) -> None:
    config = MetricsConfig.testing(
        redis_url=group.url,
        flush_interval_ms=50,
        redis_timeout_ms=300,
        redis_min_replicas=1,
        max_events=100,
    )
    collector = ErrorMetricsCollector(config)
    recorded = 0
    stop = threading.Event()
    totals_seen: list[int] = []

    def load() -> None:
        nonlocal recorded
        while not stop.is_set():
            for _ in range(20):
                collector.record(301, "UserNotFound", 404, "x")
                recorded += 1
            time.sleep(0.01)  # ~2,000 errors/s

    def scrape() -> None:  # a reader of its own, like Prometheus
        reader = RedisStore(config)
        try:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # the failover window: a 503 for the scraper
                    totals_seen.append(reader.read().total)
                time.sleep(0.05)
        finally:
            reader.close()

    threads = [threading.Thread(target=load), threading.Thread(target=scrape)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # steady state: batches confirmed by the replica
        assert collector.stats.flushes > 0
        assert group.master.proc is not None
        group.link.stalled.set()  # replication stalls
        time.sleep(1.0)
        os.kill(group.master.proc.pid, signal.SIGKILL)  # the master dies with unreplicated data
        group.master.proc.wait(5)
        assert group.link.held > 0
        _wait(lambda: _master_port(group) == group.replica.port, 30, "Sentinel failover")
        time.sleep(1.0)  # load on the promoted master (it has no replica: WAIT must not jam)
        stop.set()
        for t in threads:
            t.join(10)
        deadline = time.monotonic() + 20
        while not collector.flush() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert collector.buffered == 0
        reader = RedisStore(config)
        _wait(lambda: reader.read() is not None, 20, "the promoted master answers reads")
        view = reader.read()
        reader.close()
        assert view.total == recorded  # nothing lost, nothing counted twice
        assert view.dropped == 0
        # The fleet total never went down: no phantom counter reset for Prometheus.
        assert totals_seen == sorted(totals_seen)
    finally:
        stop.set()
        collector.close(timeout=1)


def test_a_master_cut_off_from_its_replicas_confirms_nothing(group: Group) -> None:
    """Fewer replicas are accepted only from a new master, never from one that lost them."""
    config = MetricsConfig.testing(
        redis_url=group.url, flush_interval_ms=60_000, redis_timeout_ms=300, redis_min_replicas=1
    )
    collector = ErrorMetricsCollector(config)
    try:
        collector.record(301, "UserNotFound", 404, "x")
        assert collector.flush()  # confirmed by the replica
        group.replica.stop()  # the master is left without its replica (same replication id)
        collector.record(301, "UserNotFound", 404, "x")
        assert not collector.flush()  # applied on the master, but not confirmed: kept
        assert collector.flusher.pending_count == 1
        assert "0 of the 1 replicas" in (collector.stats.last_error or "")
    finally:
        collector.close(timeout=0.5)
