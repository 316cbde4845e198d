"""ReadGate: a worker's fleet reads on a few threads of its own — bounded, coalesced, cached."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fastapi import HTTPException

from ..handlers import LOGGED_ATTR
from ._http import FailureStreak
from .stores import StoreUnavailable

if TYPE_CHECKING:
    from .collector import ErrorMetricsCollector

__all__ = ["MAX_CACHED", "ReadGate", "ReadStats", "ReadTimedOut", "ReadsBusy"]

_T = TypeVar("_T")

#: Most results one gate keeps (the oldest go first): query bounds allow many distinct keys.
MAX_CACHED = 256

#: How long a read waits for a free slot before it is refused (polled, never queued).
BUSY_WAIT_S = 0.05
_POLL_S = 0.005

_gates: weakref.WeakSet[ReadGate] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for gate in list(_gates):
        gate._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


class ReadsBusy(HTTPException):
    """Every read slot of this worker is taken by other reads: a fast 503 with Retry-After."""

    def __init__(self) -> None:
        """A 503 in the library's error body; the client may retry in a second."""
        super().__init__(
            status_code=503,
            detail="the metrics store is busy with other reads; try again shortly",
            headers={"Retry-After": "1"},
        )
        setattr(self, LOGGED_ATTR, True)  # a busy gate is no failure: no log line per request


class ReadTimedOut(StoreUnavailable):
    """A fleet read did not finish within the gate's deadline (its thread may still run)."""


class ReadStats:
    """Counters of one gate: store reads, joins, cache hits, refusals and the peak of reads."""

    __slots__ = ("busy", "cache_hits", "failed", "joined", "peak", "reads", "timed_out")

    def __init__(self) -> None:
        """Start with zero counts."""
        self.reads = 0  # store reads started (each on one of the gate's threads)
        self.joined = 0  # requests that shared a read already in flight
        self.cache_hits = 0  # requests answered from a result still valid
        self.busy = 0  # requests refused because every slot was taken
        self.timed_out = 0  # reads whose waiters gave up at the deadline
        self.failed = 0  # reads that raised
        self.peak = 0  # most store reads ever running at once


@dataclass
class _Flight:
    """One store read in progress: its shared outcome and when its waiters give up."""

    future: Future[Any]
    deadline: float  # time.monotonic()
    settled: bool = False  # its outcome is decided (under the gate's lock): result or deadline


@dataclass
class _Cached:
    value: Any
    version: object
    expires: float  # time.monotonic()


def _running_future() -> Future[Any]:
    # Marked running at once: a waiter that gives up (asyncio cancels what it wrapped) can
    # then never cancel the outcome the other waiters share.
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    return future


class ReadGate:
    """Runs one collector's fleet reads on threads of its own, never the app's threadpool.

    - at most ``read_concurrency`` reads run at once (one thread each, created lazily);
    - a read identical to one in flight (same *key*) joins it and shares its outcome;
    - a result is reused for ``read_cache_ms`` while ``collector.local_version`` is unchanged,
      so whoever records and then reads sees their own records;
    - when every slot is taken the read is refused at once (:class:`ReadsBusy`, a 503), and
      waiters give up after ``2 * redis_timeout_ms`` (:class:`ReadTimedOut`);
    - a failing store is logged once per failure streak, not once per request.
    """

    def __init__(
        self, collector: ErrorMetricsCollector, *, busy_wait_s: float = BUSY_WAIT_S
    ) -> None:
        """Gate *collector*'s reads per its config; *busy_wait_s* bounds the wait for a slot."""
        config = collector.config
        self.collector = collector
        self.concurrency = config.read_concurrency
        self.cache_s = config.read_cache_ms / 1000
        self.deadline_s = 2 * config.redis_timeout_ms / 1000
        self.busy_wait_s = busy_wait_s
        self._reset()
        _gates.add(self)

    def _reset(self) -> None:
        """Start empty: no thread, no read in flight, nothing cached (also after a fork)."""
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._executor: ThreadPoolExecutor | None = None
        self._flights: dict[Hashable, _Flight] = {}
        self._cache: dict[Hashable, _Cached] = {}
        self._active = 0
        self.stats = ReadStats()
        self.streak = FailureStreak()

    @property
    def active(self) -> int:
        """Store reads running right now."""
        return self._active

    async def read(self, key: Hashable, fn: Callable[[], _T]) -> _T:
        """``fn()`` for *key*: a valid cached result, a read in flight, or a new read on a slot."""
        flight = self._begin(key, fn)
        if flight is None:
            give_up = time.monotonic() + self.busy_wait_s
            while flight is None:
                if time.monotonic() >= give_up:
                    raise self._refuse()
                await asyncio.sleep(_POLL_S)
                flight = self._begin(key, fn)
        future = flight.future
        if not future.done():
            try:
                value = await asyncio.wait_for(
                    asyncio.wrap_future(future), max(0.0, flight.deadline - time.monotonic())
                )
            except asyncio.TimeoutError:
                self._expire(flight)
            else:
                return cast(_T, value)
            if not future.done():  # another thread is handing over its outcome right now
                return cast(_T, await asyncio.wrap_future(future))
        return cast(_T, future.result())

    def call(self, key: Hashable, fn: Callable[[], _T]) -> _T:
        """The blocking form of :meth:`read`, for code without an event loop."""
        give_up = time.monotonic() + self.busy_wait_s
        flight = self._begin(key, fn)
        while flight is None:
            left = give_up - time.monotonic()
            if left <= 0:
                raise self._refuse()
            with self._freed:
                self._freed.wait(left)
            flight = self._begin(key, fn)
        try:
            return cast(_T, flight.future.result(max(0.0, flight.deadline - time.monotonic())))
        except FutureTimeout:
            self._expire(flight)
        return cast(_T, flight.future.result())

    def close(self) -> None:
        """Let the gate's idle threads end (reads in flight finish); the next read starts anew."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._cache.clear()
        if executor is not None:
            executor.shutdown(wait=False)

    # ------------------------------------------------------------------ internals
    def _refuse(self) -> ReadsBusy:
        with self._lock:
            self.stats.busy += 1
        return ReadsBusy()

    def _version(self) -> object | None:
        """This worker's local version, when nothing of it waits to be flushed; else None."""
        collector = self.collector
        try:
            version = collector.local_version
            clean = collector.buffered == 0
        except RuntimeError:  # the hot path grew the buffer while it was being counted
            return None
        return version if clean else None

    def _begin(self, key: Hashable, fn: Callable[[], Any]) -> _Flight | None:
        """A flight for *key* (done already on a cache hit); None when every slot is taken."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                if cached.expires > now and cached.version == self.collector.local_version:
                    self.stats.cache_hits += 1
                    done: Future[Any] = _running_future()
                    done.set_result(cached.value)
                    return _Flight(done, now, settled=True)
                del self._cache[key]
            flight = self._flights.get(key)
            if flight is not None:
                self.stats.joined += 1
                return flight
            if self._active >= self.concurrency:
                return None
            flight = _Flight(_running_future(), now + self.deadline_s)
            self._flights[key] = flight
            self._active += 1
            self.stats.reads += 1
            self.stats.peak = max(self.stats.peak, self._active)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="fastapi-error-codes-read"
                )
            executor = self._executor
        try:
            executor.submit(self._run, key, fn, flight)
        except RuntimeError as exc:  # the interpreter is shutting down
            self._finish(key, flight, None, exc, None, now)
        return flight

    def _run(self, key: Hashable, fn: Callable[[], Any], flight: _Flight) -> None:
        """On a gate thread: run the read and hand its outcome to every waiter."""
        started = time.monotonic()
        value: Any = None
        error: BaseException | None = None
        version: object | None = None
        try:
            version = self._version()
            value = fn()
            # Cache only what reflects every local record: nothing unflushed before and after,
            # and no record or flush while it ran.
            if version is not None and self._version() != version:
                version = None
        except BaseException as exc:  # whatever it is, every waiter gets it
            error, version = exc, None
        self._finish(key, flight, value, error, version, started)

    def _finish(
        self,
        key: Hashable,
        flight: _Flight,
        value: Any,
        error: BaseException | None,
        version: object | None,
        started: float,
    ) -> None:
        with self._lock:
            self._active -= 1
            if self._flights.get(key) is flight:
                del self._flights[key]
            if error is not None:
                self.stats.failed += 1
            elif version is not None and self.cache_s > 0:
                self._cache.pop(key, None)
                self._cache[key] = _Cached(value, version, started + self.cache_s)
                self._trim(time.monotonic())
            self._freed.notify_all()
            if flight.settled:
                return  # the waiters gave up at the deadline: that failure was reported then
            flight.settled = True
        # Logged before the waiters wake: the log is in order with what they answer.
        if error is None:
            self.streak.succeeded()
            flight.future.set_result(value)
        else:
            self.streak.failed(error)
            flight.future.set_exception(error)

    def _trim(self, now: float) -> None:
        """Drop expired results, then the oldest beyond :data:`MAX_CACHED` (under the lock)."""
        cache = self._cache
        for key in [k for k, c in cache.items() if c.expires <= now]:
            del cache[key]
        while len(cache) > MAX_CACHED:
            del cache[next(iter(cache))]

    def _expire(self, flight: _Flight) -> None:
        """The deadline passed: every waiter of *flight* (and whoever joins it) gets a 503."""
        with self._lock:
            if flight.settled:
                return  # it finished meanwhile
            flight.settled = True
            self.stats.timed_out += 1
        error = ReadTimedOut(f"no answer from the metrics store within {self.deadline_s:g} s")
        self.streak.failed(error)
        flight.future.set_exception(error)
