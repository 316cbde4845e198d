"""Metrics stores: the in-process memory store and the fleet-wide Redis store."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import BatchRejected, MetricsStore, StoreError, StoreUnavailable
from .memory import MemoryStore

__all__ = [
    "BatchRejected",
    "MemoryStore",
    "MetricsStore",
    "StoreError",
    "StoreUnavailable",
    "create_store",
]

if TYPE_CHECKING:
    from ..config import MetricsConfig


def create_store(
    config: MetricsConfig, *, clock: Callable[[], float] | None = None
) -> MetricsStore:
    """Return the store the config selects: Redis when ``redis_url`` is set, else memory.

    *clock* is the worker's wall clock the Redis store measures its offset with.
    """
    if config.redis_url:
        from .redis import RedisStore

        return RedisStore(config, clock=clock)
    return MemoryStore(config)
