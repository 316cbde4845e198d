"""Metrics stores: the in-process memory store and the fleet-wide Redis store."""

from __future__ import annotations

from .base import MetricsStore
from .memory import MemoryStore

__all__ = ["MemoryStore", "MetricsStore", "create_store"]

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import MetricsConfig


def create_store(config: MetricsConfig) -> MetricsStore:
    """Return the store the config selects: Redis when ``redis_url`` is set, else memory."""
    if config.redis_url:
        from .redis import RedisStore

        return RedisStore(config)
    return MemoryStore(config)
