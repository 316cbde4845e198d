"""ReadGate: reads on threads of its own, bounded, coalesced, briefly cached, failing fast.

The reads here are fakes that block on an event until the test lets them go, and count how
often, how many at once and on which threads they ran: nothing is timed but generous bounds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics import (
    DashboardAPI,
    ErrorMetricsCollector,
    MemoryStore,
    MetricsConfig,
    StoreUnavailable,
    setup_metrics,
)
from fastapi_error_codes.metrics.reads import (
    MAX_CACHED,
    ReadGate,
    ReadsBusy,
    ReadTimedOut,
)
from tests.metrics.conftest import MakeCollector

FAILED = "metrics store read failed"
RECOVERED = "reading the metrics store works again"
THREAD_PREFIX = "fastapi-error-codes-read"


class SlowRead:
    """A fake store read: blocks until released, counts calls, concurrency and threads."""

    def __init__(self, value: Any = "result", *, release: bool = False) -> None:
        self.value = value
        self.calls = 0
        self.running = 0
        self.peak = 0
        self.threads: set[str] = set()
        self.started = threading.Event()
        self.go = threading.Event()
        if release:
            self.go.set()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.current_thread().name)
        self.started.set()
        try:
            assert self.go.wait(10), "the test never released the read"
            if self.error is not None:
                raise self.error
            return self.value
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def gate_for(make_collector: MakeCollector) -> Iterator[Callable[..., ReadGate]]:
    """Factory: a gate over a fresh collector (``MetricsConfig.testing(**overrides)``)."""
    gates: list[ReadGate] = []

    def make(**overrides: Any) -> ReadGate:
        gate = ReadGate(make_collector(flush_interval_ms=60_000, **overrides))
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()


async def _gather(*calls: Any) -> list[Any]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def _release_when_started(read: SlowRead, delay: float = 0.05) -> None:
    while not read.started.is_set():
        await asyncio.sleep(0.005)
    await asyncio.sleep(delay)  # let the other requests arrive and join
    read.go.set()


# ---------------------------------------------------------------- coalescing
def test_identical_concurrent_reads_run_the_store_read_once(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for()
    read = SlowRead({"total": 7})

    async def storm() -> list[Any]:
        return await _gather(
            *(gate.read(("summary",), read) for _ in range(30)), _release_when_started(read)
        )

    results = asyncio.run(storm())[:30]
    assert results == [{"total": 7}] * 30
    assert read.calls == 1
    assert gate.stats.reads == 1
    assert gate.stats.joined + gate.stats.cache_hits == 29


def test_different_keys_are_different_reads(gate_for: Callable[..., ReadGate]) -> None:
    gate = gate_for(read_concurrency=2)
    a, b = SlowRead("a", release=True), SlowRead("b", release=True)

    async def both() -> list[Any]:
        return await _gather(gate.read(("recent", 5, None), a), gate.read(("recent", 6, None), b))

    assert asyncio.run(both()) == ["a", "b"]
    assert (a.calls, b.calls) == (1, 1)


def test_a_failure_is_shared_by_every_coalesced_request(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for()
    read = SlowRead()
    read.error = StoreUnavailable("redis down")

    async def storm() -> list[Any]:
        return await _gather(
            *(gate.read(("metrics", "text"), read) for _ in range(10)),
            _release_when_started(read),
        )

    errors = asyncio.run(storm())[:10]
    assert read.calls == 1
    assert all(e is read.error for e in errors)  # one outcome, shared
    assert gate.stats.failed == 1


# ---------------------------------------------------------------- the cache
def test_a_result_is_reused_only_while_the_local_version_is_unchanged(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for(read_cache_ms=60_000)
    collector = gate.collector
    calls = []

    def total() -> int:
        calls.append(1)
        return collector.read(window_s=0).total

    collector.read()  # this worker's first flush (its heartbeat) is behind us
    assert gate.call(("total",), total) == 0
    assert gate.call(("total",), total) == 0
    assert len(calls) == 1 and gate.stats.cache_hits == 1
    collector.record(301, "UserNotFound", 404, "x")  # this worker records: the cache is stale
    assert gate.call(("total",), total) == 1  # and a test that records then reads sees it
    assert len(calls) == 2
    # That read flushed (the version changed while it ran): it was not kept; the next is.
    assert gate.call(("total",), total) == 1
    assert gate.call(("total",), total) == 1
    assert len(calls) == 3
    collector.record(301, "UserNotFound", 404, "x")
    collector.flush()  # a flush changes the version too
    assert gate.call(("total",), total) == 2


def test_a_read_with_unflushed_records_is_never_cached(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for(read_cache_ms=60_000)
    collector = gate.collector
    collector.record(301, "UserNotFound", 404, "x")
    read = SlowRead("without the local record", release=True)  # a read that does not flush
    assert gate.call(("k",), read) == "without the local record"
    assert gate.call(("k",), read) == "without the local record"
    assert read.calls == 2


def test_the_cache_expires_and_can_be_off(gate_for: Callable[..., ReadGate]) -> None:
    short = gate_for(read_cache_ms=30)
    read = SlowRead(release=True)
    short.call(("k",), read)
    short.call(("k",), read)
    assert read.calls == 1
    time.sleep(0.06)
    short.call(("k",), read)
    assert read.calls == 2

    off = gate_for(read_cache_ms=0)
    read = SlowRead(release=True)
    for _ in range(3):
        off.call(("k",), read)
    assert read.calls == 3


def test_failures_are_not_cached_and_the_cache_is_bounded(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for(read_cache_ms=60_000)
    read = SlowRead(release=True)
    read.error = StoreUnavailable("down")
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            gate.call(("k",), read)
    assert read.calls == 2
    ok = SlowRead(release=True)
    for i in range(MAX_CACHED + 50):
        gate.call(("recent", i, None), ok)
    assert len(gate._cache) <= MAX_CACHED


# ---------------------------------------------------------------- the limiter
def test_at_most_read_concurrency_store_reads_ever_run_on_threads_of_the_gate(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for(read_concurrency=3, read_cache_ms=0)
    read = SlowRead()

    async def many() -> list[Any]:
        async def one(i: int) -> Any:
            for _ in range(400):  # retry refused reads until each got its turn
                try:
                    return await gate.read(("recent", i, None), read)
                except ReadsBusy:
                    await asyncio.sleep(0.01)
            raise AssertionError("never got a slot")

        async def release() -> None:
            await asyncio.sleep(0.1)
            read.go.set()

        return await _gather(*(one(i) for i in range(20)), release())

    results = asyncio.run(many())[:20]
    assert results == ["result"] * 20
    assert read.calls == 20
    assert read.peak <= 3
    assert gate.stats.peak <= 3
    assert read.threads and all(name.startswith(THREAD_PREFIX) for name in read.threads)
    assert len(read.threads) <= 3
    assert threading.main_thread().name not in read.threads


def test_a_read_is_refused_fast_when_every_slot_is_busy(
    gate_for: Callable[..., ReadGate],
) -> None:
    gate = gate_for(read_concurrency=2)
    slow = SlowRead()

    async def scenario() -> tuple[float, BaseException | None]:
        held = [asyncio.ensure_future(gate.read(("k", i), slow)) for i in range(2)]
        while gate.active < 2:
            await asyncio.sleep(0.005)
        t0 = time.monotonic()
        refused: BaseException | None = None
        try:
            await gate.read(("other",), SlowRead(release=True))
        except ReadsBusy as exc:
            refused = exc
        elapsed = time.monotonic() - t0
        slow.go.set()
        assert await asyncio.gather(*held) == ["result", "result"]
        return elapsed, refused

    elapsed, refused = asyncio.run(scenario())
    assert isinstance(refused, HTTPException)
    assert refused.status_code == 503
    assert refused.headers == {"Retry-After": "1"}
    assert elapsed < 1.0  # a tiny bounded wait (busy_wait_s), never a queue
    assert gate.stats.busy == 1
    assert gate.call(("other",), SlowRead("free again", release=True)) == "free again"


def test_the_blocking_form_is_refused_too(gate_for: Callable[..., ReadGate]) -> None:
    gate = gate_for(read_concurrency=1)
    slow = SlowRead()
    worker = threading.Thread(target=gate.call, args=(("a",), slow))
    worker.start()
    assert slow.started.wait(5)
    with pytest.raises(ReadsBusy):
        gate.call(("b",), SlowRead(release=True))
    slow.go.set()
    worker.join(5)


# ---------------------------------------------------------------- the deadline
def test_a_read_past_its_deadline_is_a_fast_failure_for_everyone_who_waits(
    gate_for: Callable[..., ReadGate], caplog: pytest.LogCaptureFixture
) -> None:
    gate = gate_for(redis_timeout_ms=50, read_cache_ms=60_000)  # deadline 0.1 s
    assert gate.deadline_s == pytest.approx(0.1)
    hung = SlowRead()

    async def scenario() -> list[Any]:
        first = await _gather(*(gate.read(("metrics", "text"), hung) for _ in range(5)))
        # The thread still hangs in the store: whoever asks meanwhile fails at once.
        t0 = time.monotonic()
        late = await _gather(gate.read(("metrics", "text"), hung))
        assert time.monotonic() - t0 < 0.5
        return first + late

    with caplog.at_level(logging.WARNING, logger="fastapi_error_codes.metrics"):
        outcomes = asyncio.run(scenario())
        assert all(isinstance(e, ReadTimedOut) for e in outcomes)
        assert isinstance(outcomes[0], StoreUnavailable)
        assert hung.calls == 1
        assert gate.stats.timed_out == 1
        hung.go.set()  # the store answers, too late for anyone: not a recovery
        deadline = time.monotonic() + 5
        while gate.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gate.active == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum(FAILED in m for m in messages) == 1
    assert not any(RECOVERED in m for m in messages)
    # The late answer is good data: kept for the rest of read_cache_ms, counted from its start.
    assert gate.call(("metrics", "text"), SlowRead("fresh", release=True)) == "result"
    assert gate.call(("metrics", "json"), SlowRead("fresh", release=True)) == "fresh"


# ---------------------------------------------------------------- logging
def test_a_failure_streak_is_logged_once_and_its_end_once(
    gate_for: Callable[..., ReadGate], caplog: pytest.LogCaptureFixture
) -> None:
    gate = gate_for(read_cache_ms=0)
    down = SlowRead(release=True)
    down.error = StoreUnavailable("Connection refused")
    up = SlowRead(release=True)
    with caplog.at_level(logging.WARNING, logger="fastapi_error_codes.metrics"):
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                gate.call(("k",), down)

        async def coalesced() -> None:
            slow = SlowRead()
            slow.error = StoreUnavailable("Connection refused")
            await _gather(
                *(gate.read(("j",), slow) for _ in range(10)), _release_when_started(slow)
            )

        asyncio.run(coalesced())
        for _ in range(3):
            gate.call(("k",), up)
        with pytest.raises(StoreUnavailable):
            gate.call(("k",), down)
    messages = [r.getMessage() for r in caplog.records]
    failed = [m for m in messages if FAILED in m]
    assert len(failed) == 2, failed  # the first streak, then the second one
    assert "StoreUnavailable: Connection refused" in failed[0]
    assert sum(RECOVERED in m for m in messages) == 1


# ---------------------------------------------------------------- after fork
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_a_fresh_gate(gate_for: Callable[..., ReadGate]) -> None:
    gate = gate_for(read_cache_ms=60_000)
    gate.call(("k",), SlowRead("parent", release=True))
    assert gate._executor is not None
    pid = os.fork()
    if pid == 0:  # the child: no thread, nothing cached, reads work
        code = 1
        try:
            fresh = gate._executor is None and not gate._cache and gate.active == 0
            value = gate.call(("k",), SlowRead("child", release=True))
            code = 0 if fresh and value == "child" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# ---------------------------------------------------------------- through the app
class CountingStore(MemoryStore):
    """A memory store that records on which threads it was read, and can fail reads."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__(config)
        self.read_threads: list[str] = []
        self.fail = False
        self.go = threading.Event()
        self.go.set()

    def read(self, window_s: int = 0) -> Any:
        self.read_threads.append(threading.current_thread().name)
        assert self.go.wait(10)
        if self.fail:
            raise StoreUnavailable("store down")
        return super().read(window_s)

    def recent_events(self, limit: int, error_code: int | None = None) -> Any:
        self.read_threads.append(threading.current_thread().name)
        assert self.go.wait(10)
        if self.fail:
            raise StoreUnavailable("store down")
        return super().recent_events(limit, error_code)


READ_URLS = [
    "/metrics",
    "/api/metrics/summary",
    "/api/metrics/recent",
    "/api/metrics/by-code/301",
    "/api/metrics/top-errors",
    "/api/metrics/timeseries",
]


@pytest.fixture
def store_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, CountingStore]]:
    config = MetricsConfig.testing(flush_interval_ms=60_000)
    store = CountingStore(config)
    real_init = ErrorMetricsCollector.__init__

    def with_store(self: ErrorMetricsCollector, cfg: Any = None, st: Any = None) -> None:
        real_init(self, cfg, store)

    monkeypatch.setattr(ErrorMetricsCollector, "__init__", with_store)
    app = FastAPI()
    setup_metrics(app, config)
    monkeypatch.undo()
    with TestClient(app) as client:
        yield client, store


def test_every_endpoint_reads_on_the_gate_threads_never_the_app_threadpool(
    store_app: tuple[TestClient, CountingStore],
) -> None:
    client, store = store_app
    app: Any = client.app
    assert app.state.metrics_dashboard.gate is app.state.metrics_read_gate  # one per collector
    for url in READ_URLS:
        assert client.get(url).status_code == 200, url
    assert store.read_threads
    assert all(name.startswith(THREAD_PREFIX) for name in store.read_threads), store.read_threads


def test_a_failing_store_is_a_503_per_request_and_one_warning_per_streak(
    store_app: tuple[TestClient, CountingStore], caplog: pytest.LogCaptureFixture
) -> None:
    client, store = store_app
    store.fail = True
    with caplog.at_level(logging.INFO, logger="fastapi_error_codes"):
        for _ in range(3):
            for url in READ_URLS:
                response = client.get(url)
                assert response.status_code == 503, url
                assert response.headers["retry-after"] == "5"
                assert response.json()["status_code"] == 503
        store.fail = False
        for url in READ_URLS:
            assert client.get(url).status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "fastapi_error_codes.metrics"]
    assert sum(FAILED in m for m in messages) == 1, messages
    assert sum(RECOVERED in m for m in messages) == 1, messages
    # The error handler answers each 503 without a log line of its own (it would be one
    # ERROR with a traceback per scrape): the streak's warning says it all.
    assert not [r for r in caplog.records if r.name == "fastapi_error_codes.errors"]


def test_a_dashboard_made_by_hand_has_a_gate_of_its_own(collector: ErrorMetricsCollector) -> None:
    dashboard = DashboardAPI(collector, prefix="/ops")
    assert isinstance(dashboard.gate, ReadGate) and dashboard.gate.collector is collector
    app = FastAPI()
    app.include_router(dashboard.router)
    collector.record(301, "UserNotFound", 404, "x")
    with TestClient(app) as client:
        assert client.get("/ops/summary").json()["total_errors"] == 1
        collector.record(301, "UserNotFound", 404, "x")  # read after record: never stale
        assert client.get("/ops/summary").json()["total_errors"] == 2
    dashboard.gate.close()


def test_when_every_slot_is_busy_an_endpoint_answers_503_at_once(
    store_app: tuple[TestClient, CountingStore],
) -> None:
    client, store = store_app
    app: Any = client.app
    gate = app.state.metrics_read_gate
    assert gate.concurrency == 2
    store.go.clear()  # reads hang in the store until the test lets them go

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            # Two different reads take both slots; a third identical to one of them joins it.
            held = [
                asyncio.ensure_future(http.get(url))
                for url in ("/api/metrics/recent?limit=1", "/api/metrics/recent?limit=2")
            ]
            while gate.active < 2:
                await asyncio.sleep(0.005)
            joined = asyncio.ensure_future(http.get("/api/metrics/recent?limit=1"))
            refused = await http.get("/api/metrics/summary")  # a third read: no slot
            store.go.set()
            return list(await asyncio.gather(*held)), await joined, refused

    held, joined, refused = asyncio.run(scenario())
    assert [r.status_code for r in held] == [200, 200]
    assert joined.status_code == 200 and joined.json()["count"] == held[0].json()["count"]
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["status_code"] == 503
    assert gate.stats.busy == 1 and gate.stats.joined >= 1
