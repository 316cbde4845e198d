"""ErrorMetricsCollector: one worker's error metrics — the hot path, its flusher, fleet reads.

The collector ties three parts together and is what the rest of the library holds:
:class:`~fastapi_error_codes.metrics.buffer.LocalBuffer` (``record()``, the hot path),
:class:`~fastapi_error_codes.metrics.flusher.Flusher` (batches into the store, exactly once)
and the store itself, which every read goes through, so single-process and fleet mode share
one code path. After ``fork`` every collector in the child starts as a new worker.

The data models are importable from here too, as in the original fastapi-error-code
(``from fastapi_error_codes.metrics.collector import ErrorEvent, MetricsSnapshot, TimeBucket``).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from .buffer import LocalBuffer
from .config import MetricsConfig
from .flusher import Flusher, FlushStats
from .models import ErrorEvent, FleetView, MetricsSnapshot, TimeBucket
from .stores import MetricsStore, create_store
from .wire import decode_event

__all__ = [
    "CollectorStats",
    "ErrorEvent",
    "ErrorMetricsCollector",
    "MetricsSnapshot",
    "TimeBucket",
]

#: The health figures of a collector (its flusher's).
CollectorStats = FlushStats

_collectors: weakref.WeakSet[ErrorMetricsCollector] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for collector in list(_collectors):
        collector._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _record_disabled(*args: Any, **kwargs: Any) -> str:
    """``record()`` of a disabled collector: counts nothing, costs one call."""
    return ""


def _count_disabled(*args: Any, **kwargs: Any) -> None:
    """``count_request()`` of a disabled collector: counts nothing."""


class ErrorMetricsCollector:
    """Counts errors in a per-worker buffer and flushes them, pre-aggregated, into a store."""

    def __init__(
        self,
        config: MetricsConfig | None = None,
        store: MetricsStore | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Collect per *config* into *store* (default: the store ``config`` selects).

        *clock* is this worker's wall clock (default ``time.time``); errors are filed by the
        store's clock all the same (the offset is measured), and tests pass a skewed one.
        """
        self.config = cfg = config or MetricsConfig()
        self.store: MetricsStore = store if store is not None else create_store(cfg, clock=clock)
        self._owns_store = store is None
        self.buffer = LocalBuffer(cfg, on_roll=self._ensure_started, clock=clock)
        self.flusher = Flusher(cfg, self.buffer, self.store)
        if not cfg.enabled:
            self.record = _record_disabled  # type: ignore[method-assign]
            self.count_request = _count_disabled  # type: ignore[method-assign]
        else:
            # The hot paths are the buffer's own bound methods, set on the instance: no extra
            # call per error or request. A subclass (or a test) that replaces one keeps its own.
            if type(self).record is _DELEGATING_RECORD:
                self.record = self.buffer.record  # type: ignore[method-assign]
            if type(self).count_request is _DELEGATING_COUNT:
                self.count_request = self.buffer.count_request  # type: ignore[method-assign]
        _collectors.add(self)

    def record(
        self,
        error_code: int,
        error_name: str,
        status_code: int,
        message: str,
        detail: Any = None,
        path: str | None = None,
        method: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> str:
        """Count one error and keep its raw event; returns the event id. No I/O, one lock."""
        return self.buffer.record(
            error_code, error_name, status_code, message, detail, path, method, request_id, trace_id
        )

    def count_request(
        self,
        route: str,
        method: str,
        status: int,
        error: tuple[int, str, int] | None = None,
        exemplar: tuple[str | None, str | None, str | None, str | None] | None = None,
    ) -> None:
        """Count one response by route, method and status class (and an error by route).

        *error* is (code, name, status) of an error response; *exemplar* (request id, trace
        id, Sentry event id, the error's event id) becomes its series' newest exemplar. No
        I/O, one lock.
        """
        self.buffer.count_request(route, method, status, error, exemplar)

    def _reset_after_fork(self) -> None:
        """In a forked child: drop the parent's buffer and thread; this is a new worker."""
        self.buffer.reset()
        self.flusher.reset()

    def _ensure_started(self) -> None:
        self.flusher.ensure_started()

    # ------------------------------------------------------------------ lifecycle
    @property
    def worker_id(self) -> str:
        """This worker's id in the store (pid and a random part; new after ``fork``)."""
        return self.flusher.worker_id

    @property
    def stats(self) -> FlushStats:
        """Health figures of this worker's flushes."""
        return self.flusher.stats

    def now(self) -> float:
        """The fleet's time (Unix seconds): this worker's clock corrected by the store's offset."""
        return self.buffer.clock() + getattr(self.store, "clock_offset_s", 0.0)

    @property
    def local_version(self) -> tuple[int, int, bool]:
        """A token that changes whenever this worker records or flushes (read caches check it)."""
        return (self.flusher.seq, self.flusher.stats.flushes, self.buffer.is_empty)

    @property
    def buffered(self) -> int:
        """Records counted locally and not yet in the store (buffer plus pending batch)."""
        return self.flusher.pending_count + self.buffer.counted

    def start(self) -> None:
        """Measure the offset to the store's clock, then start this process's flusher.

        The flusher also starts lazily at the first ``record`` (and measures the offset then);
        starting it here, before the first request, files every error by the store's clock.
        Waits at most one store round trip (``redis_timeout_ms``) when the store is away.
        """
        if self.config.enabled:
            if not self.flusher.running:
                self.flusher.sync_clock()
            self.flusher.ensure_started()

    def note_dropped(self, count: int = 1) -> None:
        """Count errors that were recorded but could not be counted (exported as dropped)."""
        self.buffer.note_dropped(count)

    def note_sentry_skipped(self, count: int = 1) -> None:
        """Count Sentry captures the budget skipped (exported fleet-wide as sentry_skipped)."""
        self.buffer.note_sentry_skipped(count)

    def note_refused(self, count: int = 1) -> None:
        """Count requests to /metrics or the dashboard refused by authentication (401/403)."""
        self.buffer.note_refused(count)

    def flush(self, timeout: float = 2.0) -> bool:
        """Push the local buffer into the store now; False if the store could not take it.

        A batch that failed is retried, unchanged, before any newer data is sent; records made
        meanwhile wait in the buffer. Waits at most *timeout* for a concurrent flush.
        """
        return self.flusher.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the flusher and flush what is left (the final flush); idempotent.

        The collector stays usable: a later ``record()`` or ``start()`` starts a new flusher,
        as when an app runs its lifespan again (``with TestClient(app)`` twice).
        """
        ok = self.flusher.close(timeout)
        if self._owns_store:
            self.store.close()  # reads after close() still work: redis-py reconnects
        return ok

    # ------------------------------------------------------------------ reads
    def read(
        self, window_s: int = 3600, flush_timeout: float = 1.0, *, routes: bool = False
    ) -> FleetView:
        """Flush this worker's buffer (bounded wait), then read the fleet from the store.

        With *routes*, the route series' buckets of the window too (the dashboard's routes).
        """
        self.flush(flush_timeout)
        if routes:
            return self.store.read(window_s, routes=True)
        return self.store.read(window_s)  # a store of the app's own may predate *routes*

    @property
    def total_events(self) -> int:
        """All errors of the fleet: the same number as ``get_snapshot().total_errors``.

        Flushes this worker's buffer first (bounded wait), then reads the store's totals. In
        single-process mode (the memory store) that is every error this process recorded since
        the last ``clear()``: the original's count. With a shared Redis store it is the fleet's.
        """
        return self.read(window_s=0).total

    def _buckets(self, view: FleetView) -> list[TimeBucket]:
        """The view's time buckets as :class:`TimeBucket` objects, oldest first."""
        width = self.config.bucket_width_s
        buckets = []
        for start in sorted(view.buckets):
            by_code: dict[int, int] = {}
            by_status: dict[int, int] = {}
            for (code, status), n in view.buckets[start].items():
                by_code[code] = by_code.get(code, 0) + n
                by_status[status] = by_status.get(status, 0) + n
            begin = datetime.fromtimestamp(start, timezone.utc)
            buckets.append(
                TimeBucket(
                    start_time=begin,
                    end_time=begin + timedelta(seconds=width),
                    error_counts=by_code,  # total_count: their sum
                    status_counts=by_status,
                )
            )
        return buckets

    def get_buckets(self) -> list[TimeBucket]:
        """The fleet's time buckets of the last hour, oldest first (``get_snapshot().buckets``)."""
        return self._buckets(self.read())

    def get_snapshot(self) -> MetricsSnapshot:
        """Fleet totals, per-code counts, the last hour's buckets and recent events."""
        view = self.read()
        buckets = self._buckets(view)
        return MetricsSnapshot(
            total_errors=view.total,
            error_counts=view.by_code(),
            recent_events=self.get_recent_events(100, flush=False),
            bucket_count=len(buckets),
            status_counts=view.by_status(),
            error_names=view.names,
            buckets=buckets,
            dropped=view.dropped,
            events_dropped=view.events_dropped,
            series_folded=view.series_folded,
            workers=view.workers,
        )

    def get_error_counts_by_code(self) -> dict[int, int]:
        """Fleet totals per error code."""
        return self.read(window_s=0).by_code()

    def get_recent_events(
        self, limit: int = 100, error_code: int | None = None, *, flush: bool = True
    ) -> list[ErrorEvent]:
        """The newest events of the fleet (masked), newest first."""
        if flush:
            self.flush(1.0)
        return [decode_event(e) for e in self.store.recent_events(limit, error_code)]

    def clear(self) -> None:
        """Drop the local buffer and the store's whole namespace (with Redis: the fleet's)."""
        self.flusher.discard()


_DELEGATING_RECORD = ErrorMetricsCollector.record
_DELEGATING_COUNT = ErrorMetricsCollector.count_request
