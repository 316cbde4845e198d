"""The Redis store on a real 3-node Redis Cluster, started by the test on loopback ports."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, RedisStore
from fastapi_error_codes.metrics.models import Batch
from tests._servers import RedisServer, redis_cluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    with redis_cluster(3) as servers:
        yield servers


def test_store_works_unchanged_on_a_cluster(cluster: list[RedisServer]) -> None:
    config = MetricsConfig.testing(
        redis_url=f"redis+cluster://127.0.0.1:{cluster[0].port}", flush_interval_ms=60_000
    )
    collectors = [ErrorMetricsCollector(config) for _ in range(3)]
    try:
        for i, collector in enumerate(collectors):
            for n in range(100):
                collector.record(300 + n % 5, f"E{300 + n % 5}", 404, f"worker {i}")
            assert collector.flush()
        view = collectors[0].read()
        assert view.total == 300
        assert view.by_code() == {c: 60 for c in range(300, 305)}
        assert view.workers == 3
        assert sum(sum(b.values()) for b in view.buckets.values()) == 300
        assert len(collectors[1].get_recent_events(limit=50)) == 50
        # the script cache is per node: flush it everywhere, the next batch reloads it
        store = collectors[0].store
        assert isinstance(store, RedisStore)
        for server in cluster:
            node = redis.Redis(port=server.port)
            node.script_flush()
            node.close()
        bucket = int(time.time()) - int(time.time()) % 60
        batch = Batch("extra", 1, {(bucket, 301, 404): 2}, {301: "E301"}, [])
        assert store.apply(batch)
        assert not store.apply(batch)
        assert store.read().total == 302
    finally:
        for collector in collectors:
            collector.close(timeout=1)
        cleaner = RedisStore(config)
        cleaner.clear()
        cleaner.close()


def test_a_sharded_store_watches_the_eviction_policy_of_every_primary(
    cluster: list[RedisServer],
) -> None:
    config = MetricsConfig.testing(
        redis_url=f"redis+cluster://127.0.0.1:{cluster[0].port}", redis_shards=6
    )
    store = RedisStore(config)
    home = store.client.get_node_from_key(store.keys["totals"])  # type: ignore[union-attr]
    other = next(s for s in cluster if s.port != home.port)
    node = redis.Redis(port=other.port)
    node.config_set("maxmemory-policy", "allkeys-lru")
    try:
        bucket = int(time.time()) - int(time.time()) % 60
        assert store.apply(Batch("w-1", 1, {(bucket, 301, 404): 1}, {301: "E301"}, []))
        assert store.eviction_policy == "allkeys-lru"  # not on the namespace's own node
    finally:
        node.config_set("maxmemory-policy", "noeviction")
        node.close()
        store.clear()
        store.close()
