"""A flood of random errors on the real local Redis: bounded series, stream and memory.

100,000 records with random codes, statuses, paths, methods and messages go straight into
an :class:`ErrorMetricsCollector`, and 1,000 more through a real FastAPI app (random unknown
paths, random methods, ``HTTPException`` with random statuses and details). Two workers (the
app's collector and the bare one) share one namespace, so the series cap is checked fleet-wide.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import redis
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes._bodies import JSON_KEYS
from fastapi_error_codes.metrics import ErrorMetricsCollector, RedisStore
from fastapi_error_codes.metrics.models import OVERFLOW_CODE
from tests._servers import stream_events
from tests.hardening._corpus import random_text

pytestmark = [pytest.mark.redis, pytest.mark.slow]

RECORDS = 100_000
APP_REQUESTS = 1_000
CHUNK = 10_000
MAX_SERIES = 300
MAX_EVENTS = 1_000
#: The stream is cut in whole entries (up to 100 events) once the cut moved by max_events / 16.
STREAM_SLACK = MAX_EVENTS // 16 + 100
#: Growth of the traced heap allowed between 20k and 100k records (flat: the buffer is
#: swapped out at each flush; a leak of even 16 bytes per record would be 1.3 MB).
MEMORY_SLACK = 512 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "BREW")
OVERFLOW = (OVERFLOW_CODE, OVERFLOW_CODE)


def _flood_app(config: Any, rng: random.Random) -> FastAPI:
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config)

    @app.api_route("/raise/{status}", methods=["GET", "POST", "PUT", "DELETE"])
    def raise_it(status: int, note: str = "") -> None:
        detail: Any = rng.choice([note, {"note": note, "n": rng.random()}, [note, 1], None])
        raise HTTPException(status_code=status, detail=detail)

    return app


def _drive_app(client: TestClient, rng: random.Random) -> int:
    """Send APP_REQUESTS hostile requests; every answer is an error in our body."""
    for i in range(APP_REQUESTS):
        method = rng.choice(METHODS)
        if i % 2:
            status = rng.choice([s for s in range(400, 600) if s not in (401, 407)])
            url = f"/raise/{status}"
            response = client.request(
                "GET" if method in ("HEAD", "OPTIONS") else rng.choice(["GET", "POST", "PUT"]),
                url,
                params={"note": random_text(rng)},
            )
            assert response.status_code == status
        else:
            url = f"/{quote(random_text(rng, 30), safe='')}-{rng.random()}"
            response = client.request(method, url)
            assert 400 <= response.status_code < 500
        if response.request.method != "HEAD":
            assert tuple(response.json()) == JSON_KEYS
    return APP_REQUESTS


class _Pools:
    """Random messages, details and paths, made before tracing starts (cheap to pick from)."""

    def __init__(self, rng: random.Random, size: int = 4096) -> None:
        self.messages = [random_text(rng, 40) for _ in range(size)]
        self.details = [
            {"attempt": rng.randint(0, 1 << 30), "why": random_text(rng, 20)} for _ in range(size)
        ]
        self.paths = [f"/r/{rng.randint(0, 1 << 40):x}" for _ in range(size)]


def _record_chunk(
    collector: ErrorMetricsCollector, rng: random.Random, pools: _Pools, n: int
) -> None:
    record = collector.record
    randint, choice = rng.randint, rng.choice
    messages, details, paths = pools.messages, pools.details, pools.paths
    for _ in range(n):
        code = randint(0, 9999)
        record(
            code,
            f"Flood{code}",
            randint(400, 599),
            choice(messages),
            choice(details),
            choice(paths),
            choice(METHODS),
        )


def test_flood_keeps_series_stream_and_memory_bounded(
    make_config: Callable[..., Any], redis_url: str
) -> None:
    rng = random.Random(20240608)
    config = make_config(max_series=MAX_SERIES, max_events=MAX_EVENTS, flush_interval_ms=60_000)
    started = time.monotonic()

    app = _flood_app(config, rng)
    with TestClient(app) as client:
        sent = _drive_app(client, rng)
    # The lifespan shutdown did the app worker's final flush.

    pools = _Pools(rng)
    collector = ErrorMetricsCollector(config)
    traced: dict[int, int] = {}
    try:
        done = 0
        while done < RECORDS:
            _record_chunk(collector, rng, pools, CHUNK)
            done += CHUNK
            assert collector.flush(timeout=10), collector.stats.last_error
            if done in (20_000, RECORDS):
                # Tracing starts at 20k: what is still traced at 100k is what the worker kept.
                gc.collect()
                if not tracemalloc.is_tracing():
                    tracemalloc.start()
                traced[done] = tracemalloc.get_traced_memory()[0]
        view = collector.read()
    finally:
        tracemalloc.stop()
        collector.close(timeout=5)

    # Totals are exact: nothing recorded was lost or counted twice.
    assert view.total == RECORDS + sent
    assert view.dropped == 0
    # The fleet holds max_series series plus the overflow, which carries every folded error.
    assert len(view.totals) == MAX_SERIES + 1
    assert view.totals[OVERFLOW] == view.series_folded > 0
    # Events not kept in the stream are counted, never silently gone.
    assert view.events_dropped >= RECORDS - 10 * MAX_EVENTS

    store = RedisStore(config)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hlen(store.keys["totals"]) == MAX_SERIES + 1
        for key in client.scan_iter(match=f"{store.prefix}:bucket:*"):
            assert client.hlen(key) <= MAX_SERIES + 1
        held = stream_events(client, store.keys["events"])
        assert MAX_EVENTS <= held <= MAX_EVENTS + STREAM_SLACK
    finally:
        client.close()
        store.close()

    growth = traced[RECORDS] - traced[20_000]
    assert growth < MEMORY_SLACK, f"traced heap grew by {growth} bytes from 20k to 100k records"
    assert time.monotonic() - started < 60


def test_names_of_folded_series_are_not_kept(make_config: Callable[..., Any]) -> None:
    config = make_config(max_series=5, flush_interval_ms=60_000)
    collector = ErrorMetricsCollector(config)
    try:
        for flush in range(4):
            for code in range(flush * 10, flush * 10 + 10):
                collector.record(code, f"Name{code}", 400, "x")
            assert collector.flush()
        view = collector.read()
    finally:
        collector.close(timeout=2)
    assert len(view.totals) == 6  # the series cap holds ...
    kept_codes = {code for code, _status in view.totals if code != OVERFLOW_CODE}
    assert set(view.names) <= kept_codes  # ... and names of folded codes are not kept
