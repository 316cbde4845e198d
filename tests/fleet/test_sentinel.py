"""The Redis store through Redis Sentinel: a master and a sentinel of the test's own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig
from tests._servers import RedisServer, free_port, wait_for_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def sentinel_url() -> Iterator[str]:
    master = RedisServer().start()
    port = free_port()
    conf = os.path.join(master.dir, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(
            f"port {port}\nbind 127.0.0.1\ndir {master.dir}\n"
            f"sentinel monitor fecmaster 127.0.0.1 {master.port} 1\n"
        )
    proc = subprocess.Popen(
        ["redis-server", conf, "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield f"redis+sentinel://127.0.0.1:{port}/fecmaster/0"
    finally:
        proc.terminate()
        proc.wait(10)
        master.close()


def test_store_through_sentinel(sentinel_url: str) -> None:
    config = MetricsConfig.testing(redis_url=sentinel_url, flush_interval_ms=60_000)
    collector = ErrorMetricsCollector(config)
    try:
        for _ in range(7):
            collector.record(301, "UserNotFound", 404, "x")
        assert collector.flush()
        assert collector.read().totals == {(301, 404): 7}
    finally:
        collector.close(timeout=1)
