"""The stores under contract: memory, Redis on the local server, and Redis on fakeredis.

``make_store`` runs a test once per kind (ids ``[memory]``, ``[redis]``, ``[fakeredis]``,
``[redis-shards]``: the local server with ``redis_shards=3``, so workers write to different
shards and every read merges them).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest

from fastapi_error_codes.metrics import MemoryStore, MetricsConfig, MetricsStore, RedisStore
from tests.conftest import delete_namespace

KINDS = ("memory", "redis", "fakeredis", "redis-shards")


@pytest.fixture
def open_store(request: pytest.FixtureRequest) -> Iterator[Callable[..., MetricsStore]]:
    """Factory ``open_store(kind, **config_overrides)``: a store in a fresh namespace.

    Stores are closed afterwards; on the real Redis only their own namespaces are deleted.
    """
    opened: list[MetricsStore] = []
    namespaces: list[str] = []

    def open_(kind: str, **overrides: Any) -> MetricsStore:
        namespace = f"fect-{uuid.uuid4().hex[:12]}"
        config = MetricsConfig.testing(**{"namespace": namespace, **overrides})
        store: MetricsStore
        if kind == "memory":
            store = MemoryStore(config)
        elif kind == "fakeredis":
            store = RedisStore(config, client=fakeredis.FakeRedis())
        elif kind in ("redis", "redis-shards"):
            url = request.getfixturevalue("redis_url")  # skips (fails in CI) without Redis
            namespaces.append(config.namespace)
            shards = 3 if kind == "redis-shards" else config.redis_shards
            store = RedisStore(config.replace(redis_url=url, redis_shards=shards))
        else:
            raise ValueError(f"unknown store kind {kind!r}; one of {KINDS}")
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    if namespaces:
        url = request.getfixturevalue("redis_url")
        for namespace in namespaces:
            delete_namespace(url, namespace)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        "fakeredis",
        pytest.param("redis-shards", marks=pytest.mark.redis),
    ],
)
def make_store(
    request: pytest.FixtureRequest, open_store: Callable[..., MetricsStore]
) -> Callable[..., MetricsStore]:
    """Factory ``make(**config_overrides) -> store`` of this test's kind of store."""
    kind: str = request.param
    if kind in ("redis", "redis-shards"):
        request.getfixturevalue("redis_url")  # skip in setup, not half-way through the test
    return functools.partial(open_store, kind)


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    """A plain redis-py client on the local Redis (skips, or fails in CI, without it)."""
    import redis

    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()
