"""The in-process store: one worker, tests and local development. Same semantics as Redis."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, cast

from ..config import MetricsConfig
from ..models import (
    OVERFLOW_CODE,
    Batch,
    FleetView,
    RequestKey,
    RouteErrorKey,
    SeriesKey,
    folded_request,
    folded_route_error,
)
from ..wire import WireEvent, decode_exemplar, select_events
from .base import BatchRejected, window_starts

__all__ = ["MemoryStore"]

_OVERFLOW: SeriesKey = (OVERFLOW_CODE, OVERFLOW_CODE)

#: The fleet-wide counters, named as in the Redis meta hash: "refused" counts stale retries
#: the store refused (not exported), "auth_refused" requests refused by authentication.
_META = (
    "dropped",
    "events_dropped",
    "series_folded",
    "flush_failures",
    "sentry_skipped",
    "auth_refused",
    "refused",
    "route_folded",
)

_stores: weakref.WeakSet[MemoryStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A lock held by a parent thread at fork time would stay held in the child for ever.
    for store in list(_stores):
        store._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class MemoryStore:
    """Keeps fleet state in this process; applies batches exactly once like the Redis store."""

    def __init__(self, config: MetricsConfig | None = None) -> None:
        """Create an empty store bounded by *config* (series cap, events, retention)."""
        self._config = config or MetricsConfig()
        self._lock = threading.Lock()
        self._created_s: float | None = None  # set by the first batch, like the Redis store
        self._totals: dict[SeriesKey, int] = {}
        self._names: dict[int, str] = {}
        self._buckets: dict[int, dict[SeriesKey, int]] = {}
        self._events: deque[str] = deque(maxlen=self._config.max_events)
        self._seq: dict[str, int] = {}
        self._workers: dict[str, float] = {}
        self._meta = dict.fromkeys(_META, 0)
        self._buffered: dict[str, int] = {}
        self._requests = _RouteSeries[RequestKey](folded_request)
        self._route_errors = _RouteSeries[RouteErrorKey](folded_route_error)
        self._exemplars: dict[RouteErrorKey, str] = {}
        _stores.add(self)

    @property
    def clock_offset_s(self) -> float:
        """0.0: this process's clock is the store's."""
        return 0.0

    def sync_clock(self) -> float:
        """Nothing to measure: the store's clock is this process's (returns 0.0)."""
        return 0.0

    def apply(self, batch: Batch) -> bool:
        """Apply *batch* once; a batch whose seq this worker already applied is ignored."""
        now = time.time()
        retention = self._config.retention_s
        width = self._config.bucket_width_s
        with self._lock:
            self._workers[batch.worker_id] = now
            self._buffered[batch.worker_id] = batch.buffered
            self._evict(now)
            last = self._seq.get(batch.worker_id)
            if last is not None and batch.seq <= last:
                return False
            if last is None and batch.unsure and batch.age_ms >= self._config.forget_s * 1000:
                self._meta["refused"] += 1
                raise BatchRejected(
                    f"batch {batch.seq} of worker {batch.worker_id} is a retry older than the "
                    "forget window whose first attempt may have been applied; refused",
                    maybe_applied=True,
                )
            self._seq[batch.worker_id] = batch.seq
            if self._created_s is None:
                self._created_s = now
            folded = batch.series_folded
            real = len(self._totals) - (1 if _OVERFLOW in self._totals else 0)
            kept: set[int] = set()
            for (bucket, code, status), delta in batch.counts.items():
                # Any count of the overflow code is the overflow series, whatever its status.
                key: SeriesKey = _OVERFLOW if code == OVERFLOW_CODE else (code, status)
                if key not in self._totals and key != _OVERFLOW:
                    if real >= self._config.max_series:
                        key = _OVERFLOW
                        folded += delta
                    else:
                        real += 1
                self._totals[key] = self._totals.get(key, 0) + delta
                if key != _OVERFLOW:
                    kept.add(key[0])
                if bucket and bucket + width + retention > now:
                    cell = self._buckets.setdefault(bucket, {})
                    cell[key] = cell.get(key, 0) + delta
            # names only of codes with a series of their own: bounded like the series
            self._names.update((c, n) for c, n in batch.names.items() if c in kept)
            self._events.extend(batch.events)
            self._meta["dropped"] += batch.dropped
            self._meta["events_dropped"] += batch.events_dropped
            self._meta["series_folded"] += folded
            self._meta["flush_failures"] += batch.flush_failures
            self._meta["sentry_skipped"] += batch.sentry_skipped
            self._meta["auth_refused"] += batch.refused
            cap = self._config.max_route_series
            live = now - retention - width
            folded = self._requests.add(batch.requests, cap, live)
            folded += self._route_errors.add(batch.route_errors, cap, live)
            self._meta["route_folded"] += batch.route_folded + folded
            for error, exemplar in batch.exemplars.items():
                if error in self._route_errors.totals:  # not folded
                    self._exemplars[error] = exemplar
        return True

    def _evict(self, now: float) -> None:
        horizon = now - self._config.retention_s - self._config.bucket_width_s
        for start in [b for b in self._buckets if b < horizon]:
            del self._buckets[start]
        self._requests.evict(horizon)
        self._route_errors.evict(horizon)
        forget = now - self._config.forget_s
        for worker in [w for w, seen in self._workers.items() if seen < forget]:
            del self._workers[worker]
            self._seq.pop(worker, None)
            self._buffered.pop(worker, None)

    def read(self, window_s: int = 0, *, routes: bool = False) -> FleetView:
        """Return a copy of fleet state, with the buckets of the last *window_s* seconds.

        The window's buckets of the route series are copied only with *routes*.
        """
        now = time.time()
        config = self._config
        live = now - config.live_window_s
        starts = window_starts(now, window_s, config.bucket_width_s)
        expired = now - config.bucket_width_s - config.retention_s  # as Redis's EXPIREAT
        with self._lock:
            alive = {w: t for w, t in self._workers.items() if t >= live}
            seen = list(alive.values())
            return FleetView(
                totals=dict(self._totals),
                names=dict(self._names),
                buckets={
                    b: dict(c) for b, c in self._buckets.items() if b in starts and b > expired
                },
                dropped=self._meta["dropped"],
                events_dropped=self._meta["events_dropped"],
                series_folded=self._meta["series_folded"],
                workers=len(seen),
                oldest_flush_age_s=(now - min(seen)) if seen else None,
                created_s=self._created_s,
                flush_failures=self._meta["flush_failures"],
                sentry_skipped=self._meta["sentry_skipped"],
                refused=self._meta["auth_refused"],
                buffered=sum(self._buffered.get(w, 0) for w in alive),
                requests=dict(self._requests.totals),
                request_buckets=self._requests.window(starts, expired) if routes else {},
                route_errors=dict(self._route_errors.totals),
                route_error_buckets=self._route_errors.window(starts, expired) if routes else {},
                exemplars={k: decode_exemplar(v) for k, v in self._exemplars.items()},
                route_folded=self._meta["route_folded"],
            )

    def recent_events(self, limit: int, error_code: int | None = None) -> list[WireEvent]:
        """Return up to *limit* newest events, newest first."""
        with self._lock:
            raw = list(self._events)
        return select_events(reversed(raw), limit, error_code)

    def retire(self, worker_id: str) -> None:
        """Take a worker that shut down cleanly out of the live workers at once."""
        with self._lock:
            if worker_id in self._workers:  # out of the live window; pruned with its seq later
                self._workers[worker_id] = time.time() - self._config.live_window_s - 1

    def clear(self) -> None:
        """Forget every count, name, event and worker."""
        with self._lock:
            self._totals.clear()
            self._names.clear()
            self._buckets.clear()
            self._events.clear()
            self._seq.clear()
            self._workers.clear()
            self._buffered.clear()
            self._requests = _RouteSeries[RequestKey](folded_request)
            self._route_errors = _RouteSeries[RouteErrorKey](folded_route_error)
            self._exemplars.clear()
            self._meta = dict.fromkeys(self._meta, 0)
            self._created_s = None

    def close(self) -> None:
        """Nothing to release."""


K = TypeVar("K", bound=tuple[Any, ...])


class _RouteSeries(Generic[K]):
    """One family of route series: all-time totals and buckets, capped like the Redis store."""

    def __init__(self, fold: Callable[[K], K]) -> None:
        self.fold: Callable[[K], K] = fold
        self.totals: dict[K, int] = {}
        self.buckets: dict[int, dict[K, int]] = {}
        self.series = 0  # series of their own (folded targets not included)

    def add(self, counts: Mapping[tuple[Any, ...], int], cap: int, live_from: float) -> int:
        """Add ``(bucket, *key) -> delta`` counts; returns how many were folded (past *cap*)."""
        folded = 0
        for (bucket, *rest), delta in counts.items():
            key = cast("K", tuple(rest))
            if key not in self.totals and key != self.fold(key):
                if self.series >= cap:
                    key = self.fold(key)
                    folded += delta
                else:
                    self.series += 1
            self.totals[key] = self.totals.get(key, 0) + delta
            if bucket > live_from:
                cells = self.buckets.setdefault(bucket, {})
                cells[key] = cells.get(key, 0) + delta
        return folded

    def evict(self, horizon: float) -> None:
        """Forget buckets that started before *horizon*."""
        for start in [b for b in self.buckets if b < horizon]:
            del self.buckets[start]

    def window(self, starts: range, expired: float) -> dict[int, dict[K, int]]:
        """Copies of the buckets among *starts* that have not expired."""
        return {b: dict(c) for b, c in self.buckets.items() if b in starts and b > expired}
