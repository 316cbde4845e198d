"""What the store says about itself: bad entries, eviction risk, fleet-wide health series.

Each test starts a redis-server of its own and reads through real FastAPI apps, as a scraper
behind a Service would: any worker may answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from benchmarks.relay import ReplyDroppingProxy
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fastapi_error_codes import BaseAppException, ErrorRegistry, register_exception
from fastapi_error_codes.metrics import MetricsConfig, setup_metrics
from tests._servers import RedisServer

pytestmark = pytest.mark.redis

registry = ErrorRegistry()


@register_exception(error_code=8601, message="Gone", status_code=410, registry=registry)
class HealthGone(BaseAppException):
    """A declared 410."""


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer().start()
    yield srv
    srv.close()


def make_app(config: MetricsConfig) -> FastAPI:
    app = FastAPI()
    setup_metrics(app, config)

    @app.get("/gone")
    def gone() -> None:
        raise HealthGone()

    return app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_malformed_entries_are_skipped_and_counted_never_a_503(server: RedisServer) -> None:
    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    tag = "{" + config.namespace + "}"
    with TestClient(make_app(config), raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get("/gone").status_code == 410
        assert client.get("/metrics").status_code == 200  # flushed
        raw = redis.Redis(port=server.port)
        raw.hset(f"{tag}:totals", "8601:500", "not-a-number")  # a non-integer count
        raw.hset(f"{tag}:totals", "garbage", "5")  # a field that is no series
        raw.hset(f"{tag}:meta", "created_ms", "yesterday")
        raw.hset(f"{tag}:names", "8602", b"\xff\xfe bad utf-8")
        raw.hset(f"{tag}:names", "x", "a name without a code")
        raw.xadd(f"{tag}:events", {"e": "{not json"})
        raw.xadd(f"{tag}:events", {"e": '{"valid json": "but not an event"}'})
        raw.close()

        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        found = samples(metrics.text)
        assert found[("fastapi_errors_total", ())] == 3  # the good entries are served
        assert found[("fastapi_errors_store_malformed", ())] == 4
        for path in ("summary", "top-errors", "by-code/8601"):
            response = client.get(f"/api/metrics/{path}")
            assert response.status_code == 200, (path, response.text)
        assert client.get("/api/metrics/summary").json()["total_errors"] == 3
        recent = client.get("/api/metrics/recent")
        assert recent.status_code == 200
        assert [e["error_code"] for e in recent.json()["events"]] == [8601, 8601, 8601]


def test_an_evicting_policy_is_warned_about_and_exported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = RedisServer("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru").start()
    try:
        config = MetricsConfig.testing(redis_url=srv.url, flush_interval_ms=60_000)
        with (
            caplog.at_level(logging.WARNING, "fastapi_error_codes"),
            TestClient(make_app(config), raise_server_exceptions=False) as client,
        ):
            client.get("/gone")
            found = samples(client.get("/metrics").text)
        assert found[("fastapi_errors_store_evictable", (("policy", "allkeys-lru"),))] == 1
        warnings = [r for r in caplog.records if "maxmemory-policy allkeys-lru" in r.message]
        assert len(warnings) == 1
        assert "noeviction" in warnings[0].message
    finally:
        srv.close()


def test_noeviction_is_quiet(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    config = MetricsConfig.testing(redis_url=server.url, flush_interval_ms=60_000)
    with (
        caplog.at_level(logging.INFO, "fastapi_error_codes"),
        TestClient(make_app(config), raise_server_exceptions=False) as client,
    ):
        client.get("/gone")
        found = samples(client.get("/metrics").text)
    assert found[("fastapi_errors_store_evictable", (("policy", ""),))] == 0
    assert not [r for r in caplog.records if "maxmemory" in r.message]


def test_every_series_is_the_fleets_whichever_worker_answers(server: RedisServer) -> None:
    """Two workers behind one scrape target: the health counters never jump or go back."""
    proxy = ReplyDroppingProxy(server.port)
    flaky = MetricsConfig.testing(
        redis_url=f"redis://127.0.0.1:{proxy.port}/0", flush_interval_ms=60_000
    )
    steady = flaky.replace(redis_url=server.url)
    try:
        with (
            TestClient(make_app(flaky), raise_server_exceptions=False) as a,
            TestClient(make_app(steady), raise_server_exceptions=False) as b,
        ):
            a.get("/gone")
            b.get("/gone")
            assert b.get("/metrics").status_code == 200  # each scrape flushes its worker first
            assert a.get("/metrics").status_code == 200
            collector = a.app.state.metrics_collector  # type: ignore[attr-defined]
            for _ in range(3):  # three failed flushes on worker A
                a.get("/gone")
                proxy.drop_next_reply()
                assert not collector.flush()
            seen = []
            for _ in range(3):  # scraped through a Service: A, B, A, B, ...
                for worker in (a, b):
                    response = worker.get("/metrics")
                    assert response.status_code == 200
                    seen.append(samples(response.text))
            failures = [s[("fastapi_errors_flush_failures_total", ())] for s in seen]
            assert failures == [3.0] * len(seen)  # the fleet's sum, the same from every worker
            totals = [s[("fastapi_errors_total", ())] for s in seen]
            assert totals == [5.0] * len(seen)
            assert all(s[("fastapi_errors_buffered", ())] == 0 for s in seen)
            assert all(s[("fastapi_errors_workers", ())] == 2 for s in seen)
            names = {name for s in seen for name, _labels in s}
            assert not {n for n in names if n.startswith("fastapi_errors_worker_")}
    finally:
        proxy.close()
