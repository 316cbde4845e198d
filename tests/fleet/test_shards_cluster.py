"""``redis_shards`` on a real 3-primary Redis Cluster, driven by the fleet benchmark's workers.

Each simulated worker is a process of its own (``benchmarks/fleet.py``) with its own store and
worker id. With 6 shards the fleet's scripts run on every primary, about evenly, and the
totals are exact; changing the shard count on a running fleet (1, then 6, then 2) loses and
double-counts nothing, for readers configured with any shard count.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
from benchmarks import fleet
from benchmarks._common import Context

from tests._servers import RedisServer, in_ci, redis_cluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WORKERS = 24


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if in_ci():
            pytest.fail("redis-server / redis-cli are not installed")
        pytest.skip("redis-server / redis-cli are not installed")
    with redis_cluster(3) as servers:
        yield servers


def _url(cluster: list[RedisServer]) -> str:
    return f"redis+cluster://127.0.0.1:{cluster[0].port}"


def _read(cluster: list[RedisServer], ns: str, shards: int) -> tuple[int, dict[int, int]]:
    """A reader of its own (this process, the working tree) configured with *shards*."""
    from fastapi_error_codes.metrics import MetricsConfig
    from fastapi_error_codes.metrics.stores.redis import RedisStore

    store = RedisStore(
        MetricsConfig(redis_url=_url(cluster), namespace=ns, redis_shards=shards, max_series=1000)
    )
    try:
        view = store.read()
        return view.total, view.by_code()
    finally:
        store.close()


def _clear(cluster: list[RedisServer], ns: str) -> None:
    from fastapi_error_codes.metrics import MetricsConfig
    from fastapi_error_codes.metrics.stores.redis import RedisStore

    store = RedisStore(MetricsConfig(redis_url=_url(cluster), namespace=ns, redis_shards=6))
    try:
        store.clear()
    finally:
        store.close()


def _flush(
    cluster: list[RedisServer], ns: str, shards: int, workers: int, flushes: int
) -> tuple[int, dict[int, int]]:
    """A fleet of new worker processes with *shards* flushes; what they had acknowledged."""
    config = fleet._config(_url(cluster), ns, redis_shards=shards)
    with fleet.Fleet(fleet.new_release(), workers, "busy", config) as workers_:
        workers_.run(0.05, flushes)
        return workers_.acknowledged()


def _add(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


def test_six_shards_spread_the_scripts_over_every_primary(cluster: list[RedisServer]) -> None:
    ctx = Context(scale="tiny", verbose=False)
    ns = fleet.namespace(ctx, "shards6")
    try:
        # cluster_run checks the totals against the acknowledged batches (exact, per code)
        out = fleet.cluster_run(
            ctx, cluster, fleet.new_release(), 6, WORKERS, flushes=4, interval=0.1, ns=ns
        )
        assert out["exact"] and out["errors_counted"] > 0
        usec = [p["script_usec"] for p in out["per_primary"]]
        calls = [p["script_calls"] for p in out["per_primary"]]
        assert all(c > 0 for c in calls), out["per_primary"]
        assert out["primaries_with_work"] == 3
        assert max(usec) <= 2 * min(usec), out["per_primary"]
    finally:
        _clear(cluster, ns)


def test_counts_survive_changing_the_shard_count(cluster: list[RedisServer]) -> None:
    ns = f"fect-shards-{uuid.uuid4().hex[:10]}"
    try:
        total_1, by_code_1 = _flush(cluster, ns, shards=1, workers=4, flushes=3)
        total_6, by_code_6 = _flush(cluster, ns, shards=6, workers=8, flushes=3)
        expected = (total_1 + total_6, _add(by_code_1, by_code_6))
        assert total_1 > 0 and total_6 > 0
        for shards in (6, 1, 3):
            assert _read(cluster, ns, shards) == expected, f"reader with redis_shards={shards}"

        total_2, by_code_2 = _flush(cluster, ns, shards=2, workers=4, flushes=3)
        expected = (expected[0] + total_2, _add(expected[1], by_code_2))
        for shards in (6, 1, 3, 2):
            assert _read(cluster, ns, shards) == expected, f"reader with redis_shards={shards}"
    finally:
        _clear(cluster, ns)
