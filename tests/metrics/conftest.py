"""Fixtures of the monitoring tests: collectors on the memory store, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig

MakeCollector = Callable[..., ErrorMetricsCollector]


@pytest.fixture
def make_collector() -> Iterator[MakeCollector]:
    """Factory: a collector on ``MetricsConfig.testing(**overrides)``, closed after the test.

    ``store=`` passes a store of the test's own (a test double) instead of a new memory store.
    """
    made: list[ErrorMetricsCollector] = []

    def make(store: Any = None, clock: Any = None, **overrides: Any) -> ErrorMetricsCollector:
        config = MetricsConfig.testing(**overrides)
        collector = ErrorMetricsCollector(config, store=store, clock=clock)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.close(timeout=1)


@pytest.fixture
def collector(make_collector: MakeCollector) -> ErrorMetricsCollector:
    """A collector whose background flusher stays idle: the test flushes when it wants."""
    return make_collector(flush_interval_ms=60_000)
