"""Metrics stores: the in-process memory store and the fleet-wide Redis store."""

from __future__ import annotations

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


def create_store(config: MetricsConfig) -> MetricsStore:
    """Return the store the config selects: Redis when ``redis_url`` is set, else memory."""
    if config.redis_url:
        from .redis import RedisStore

        return RedisStore(config)
    return MemoryStore(config)
