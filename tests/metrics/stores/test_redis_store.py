"""RedisStore against a real Redis: key layout, exactness, NOSCRIPT, bounds, cleanup.

What every store must do alike (seq idempotency, caps, windows) is in test_contract.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from fastapi_error_codes.metrics import (
    BatchRejected,
    ErrorMetricsCollector,
    MetricsConfig,
    RedisStore,
    StoreUnavailable,
)
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
from tests._servers import free_port, stream_events

pytestmark = pytest.mark.redis


@pytest.fixture
def make_redis_store(
    make_config: Callable[..., MetricsConfig],
) -> Iterator[Callable[..., RedisStore]]:
    made: list[RedisStore] = []

    def make(**overrides: Any) -> RedisStore:
        made.append(RedisStore(make_config(**overrides)))
        return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def collectors() -> Iterator[list[ErrorMetricsCollector]]:
    made: list[ErrorMetricsCollector] = []
    yield made
    for collector in made:
        collector.close(timeout=1)


def _batch(seq: int, worker: str = "w1", **kw: Any) -> Batch:
    bucket = int(time.time()) - int(time.time()) % 60
    base: dict[str, Any] = {
        "worker_id": worker,
        "seq": seq,
        "counts": {(bucket, 301, 404): 3, (bucket, 500, 500): 1},
        "names": {301: "UserNotFound", 500: "InternalError"},
        "events": ['{"id":"e1","t":1.0,"c":301,"n":"UserNotFound","s":404,"m":"x"}'],
    }
    base.update(kw)
    return Batch(**base)


def test_key_layout_shares_the_namespace_hash_tag(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis, redis_namespace: str
) -> None:
    store = make_redis_store()
    assert store.apply(_batch(1))
    keys = sorted(k.decode() for k in client.scan_iter(match="{" + redis_namespace + "}:*"))
    tag = "{" + redis_namespace + "}"
    bucket = int(time.time()) - int(time.time()) % 60
    assert keys == sorted(
        [
            f"{tag}:bucket:{bucket}",
            f"{tag}:buffered",
            f"{tag}:events",
            f"{tag}:marks",
            f"{tag}:meta",
            f"{tag}:names",
            f"{tag}:since",
            f"{tag}:seq",
            f"{tag}:totals",
            f"{tag}:workers",
        ]
    )
    assert client.type(f"{tag}:totals") == b"hash"
    assert client.type(f"{tag}:events") == b"stream"
    assert client.type(f"{tag}:workers") == b"zset"
    assert client.hgetall(f"{tag}:totals") == {b"301:404": b"3", b"500:500": b"1"}
    assert client.hget(f"{tag}:seq", "w1") == b"1"
    assert client.hget(f"{tag}:meta", "schema") == b"1"
    ttl = client.ttl(f"{tag}:bucket:{bucket}")
    assert 0 < ttl <= 86400 + 60  # bucket hashes expire after the retention


def test_auth_refusals_have_a_meta_field_apart_from_refused_retries(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis, redis_namespace: str
) -> None:
    store = make_redis_store()
    tag = "{" + redis_namespace + "}"
    assert store.apply(_batch(1, sentry_skipped=2, refused=5, buffered=3))
    with pytest.raises(BatchRejected):  # a stale unsure retry: counted in the meta "refused"
        store.apply(_batch(9, worker="gone", age_ms=86_400_001, unsure=True, refused=100))
    meta = client.hgetall(f"{tag}:meta")
    assert (meta[b"auth_refused"], meta[b"refused"], meta[b"sentry_skipped"]) == (
        b"5",
        b"1",
        b"2",
    )
    assert client.hget(f"{tag}:buffered", "w1") == b"3"  # the ARGV after it: still in place
    assert store.read().refused == 5


def test_same_batch_applied_twice_counts_once(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    store = make_redis_store()
    batch = _batch(1)
    assert store.apply(batch) is True
    assert store.apply(batch) is False
    assert store.apply(_batch(1, counts={})) is False  # any batch with an old seq is refused
    assert store.read().totals == {(301, 404): 3, (500, 500): 1}
    assert store.apply(_batch(2))
    assert store.read().totals == {(301, 404): 6, (500, 500): 2}


def test_exact_fleet_totals_from_many_threads_and_workers(
    make_config: Callable[..., MetricsConfig], collectors: list[ErrorMetricsCollector]
) -> None:
    config = make_config(flush_interval_ms=20)
    workers = [ErrorMetricsCollector(config) for _ in range(3)]
    collectors.extend(workers)
    per_thread = 3000

    def work(i: int) -> None:
        collector = workers[i % 3]
        for n in range(per_thread):
            code = 300 + (i + n) % 5
            collector.record(code, f"E{code}", 400 + code % 3, "msg")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        assert w.flush()
    view = workers[0].read()
    assert view.total == 6 * per_thread
    assert view.by_code() == {c: 6 * per_thread // 5 for c in range(300, 305)}
    assert view.workers == 3


def test_script_flush_between_flushes(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    store = make_redis_store()
    assert store.apply(_batch(1))
    client.script_flush()
    assert store.apply(_batch(2))  # NOSCRIPT -> reloaded, applied once
    assert store.read().totals == {(301, 404): 6, (500, 500): 2}


def test_stream_stays_near_its_cap_in_events(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis, redis_namespace: str
) -> None:
    store = make_redis_store(max_events=200)
    event = '{"id":"e","t":1.0,"c":301,"n":"A","s":404,"m":"x"}'
    key = "{" + redis_namespace + "}:events"
    for seq in range(1, 21):
        store.apply(_batch(seq, events=[event] * 37))
        held = stream_events(client, key)
        # cut in whole entries once the cut moved by max_events / 16: never below the cap
        assert min(200, 37 * seq) <= held <= 200 + 200 // 16 + 37
    assert client.xlen(key) <= 200 // 37 + 3  # one entry per batch here, not one per event
    assert len(store.recent_events(1000)) == 200  # readers never see more than the cap


def test_series_cap_holds_inside_the_script_across_workers(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    store = make_redis_store(max_series=10)
    bucket = int(time.time()) - int(time.time()) % 60
    for w in range(4):  # four workers, each with 5 distinct new series
        counts = {(bucket, 100 * w + i, 400): 2 for i in range(5)}
        store.apply(_batch(1, worker=f"w{w}", counts=counts, names={}))
    view = store.read(window_s=60)
    assert view.total == 40
    assert len(view.totals) == 11  # the cap + the overflow series
    assert view.totals[(OVERFLOW_CODE, OVERFLOW_CODE)] == 20
    assert view.series_folded == 20
    assert sum(view.buckets[bucket].values()) == 40


def test_read_cost_does_not_grow_with_worker_churn(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis, redis_namespace: str
) -> None:
    store = make_redis_store()
    for w in range(200):
        store.apply(_batch(1, worker=f"w{w}"))
    view = store.read()
    assert view.workers == 200
    assert view.total == 200 * 4
    # workers not seen for a day are forgotten, with their idempotency seq
    tag = "{" + redis_namespace + "}"
    client.zadd(f"{tag}:workers", {"ancient": 1})
    client.hset(f"{tag}:seq", "ancient", 7)
    store.apply(_batch(2, worker="w0"))
    assert client.zscore(f"{tag}:workers", "ancient") is None
    assert client.hget(f"{tag}:seq", "ancient") is None


def test_old_buckets_count_in_totals_only(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis, redis_namespace: str
) -> None:
    store = make_redis_store(retention_s=120)
    old = int(time.time()) - 3600
    old -= old % 60
    store.apply(_batch(1, counts={(old, 301, 404): 5, (0, 302, 404): 1}))
    assert store.read().totals == {(301, 404): 5, (302, 404): 1}
    assert not client.exists("{" + redis_namespace + "}:bucket:" + str(old))


def test_clear_deletes_only_the_namespace(
    make_redis_store: Callable[..., RedisStore], client: redis.Redis, redis_namespace: str
) -> None:
    client.set("fect-unrelated-" + redis_namespace, "keep")
    try:
        store = make_redis_store()
        store.apply(_batch(1))
        store.clear()
        assert list(client.scan_iter(match="{" + redis_namespace + "}:*")) == []
        assert client.get("fect-unrelated-" + redis_namespace) == b"keep"
    finally:
        client.delete("fect-unrelated-" + redis_namespace)


def test_timeouts_and_retry_are_explicit(make_redis_store: Callable[..., RedisStore]) -> None:
    store = make_redis_store(redis_timeout_ms=250)
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.25
    assert kwargs["socket_connect_timeout"] == 0.25
    assert kwargs["retry"].get_retries() == 0


def test_a_clean_shutdown_retires_the_worker(make_config: Callable[..., MetricsConfig]) -> None:
    config = make_config(flush_interval_ms=60_000)
    first, second = ErrorMetricsCollector(config), ErrorMetricsCollector(config)
    try:
        first.record(301, "A", 404, "x")
        second.record(301, "A", 404, "x")
        assert first.flush() and second.flush()
        assert second.read().workers == 2
        first.close()
        view = second.read()
        assert view.workers == 1  # gone at once, not after the live window
        assert view.total == 2
    finally:
        first.close()
        second.close()


def test_redis_failures_reach_the_collector_as_the_librarys_own_errors() -> None:
    config = MetricsConfig.testing(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_ms=200
    )  # nothing listens there
    store = RedisStore(config)
    try:
        with pytest.raises(StoreUnavailable, match="ConnectionError"):
            store.apply(Batch("w1", 1, {(0, 1, 400): 1}, {}, []))
        with pytest.raises(StoreUnavailable):
            store.read(window_s=60)
        with pytest.raises(StoreUnavailable):
            store.recent_events(5)
        with pytest.raises(StoreUnavailable):
            store.retire("w1")
    finally:
        store.close()


def test_a_batch_redis_py_cannot_encode_is_rejected() -> None:
    store = RedisStore(MetricsConfig.testing(), client=fakeredis.FakeRedis())
    poison = Batch("w1", 1, {(0, 1, 400): 1}, {1: object()}, [])  # type: ignore[dict-item]
    with pytest.raises(BatchRejected, match="DataError"):
        store.apply(poison)
    assert store.apply(Batch("w1", 1, {(0, 1, 400): 1}, {1: "E1"}, []))  # nothing was applied


def test_reads_cannot_starve_the_flusher(make_redis_store: Callable[..., RedisStore]) -> None:
    """Reads have a pool of their own: with every read connection taken, a batch still lands."""
    store = make_redis_store(read_concurrency=2, redis_max_connections=4)
    reads = store.read_client.connection_pool
    assert reads is not store.client.connection_pool
    assert reads.max_connections == 3  # read_concurrency + 1
    held = [reads.get_connection() for _ in range(3)]  # a storm holds every read connection
    try:
        assert store.apply(_batch(1))
    finally:
        for connection in held:
            reads.release(connection)
    assert store.read().totals == {(301, 404): 3, (500, 500): 1}
