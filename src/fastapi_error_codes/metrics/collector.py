"""ErrorMetricsCollector: the hot path (a local buffer) and the flush into a store.

``record()`` runs inside the request: it increments a local counter keyed by (bucket, code,
status) and appends the raw event to a bounded ring, under one short lock, with no I/O, no
masking and no JSON. ``flush()`` (called by the background flusher, by reads and at shutdown)
swaps the buffer out in O(1), builds one :class:`Batch` (masked, encoded, capped) and applies
it to the store exactly once; a failed batch is kept and retried before any newer one.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any

from .._bodies import json_safe
from ._http import describe_error
from .config import MetricsConfig
from .flusher import Flusher
from .models import (
    OVERFLOW_CODE,
    Batch,
    ErrorEvent,
    FleetView,
    MetricsSnapshot,
    SeriesKey,
    TimeBucket,
)
from .pii import PiiMasker
from .stores import MetricsStore, create_store

__all__ = ["CollectorStats", "ErrorMetricsCollector"]

_log = logging.getLogger("fastapi_error_codes.metrics")

# (event number, time, code, name, status, message, detail, path, method)
_RawEvent = tuple[int, float, int, str, int, str, Any, "str | None", "str | None"]
_Cells = dict[SeriesKey, int]

_now = time.time
_OVERFLOW_KEY: SeriesKey = (OVERFLOW_CODE, OVERFLOW_CODE)

_collectors: weakref.WeakSet[ErrorMetricsCollector] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for collector in list(_collectors):
        collector._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_transient(exc: BaseException) -> bool:
    """A store failure worth retrying the same batch for: network, timeout, a Redis reply.

    redis-py's ``DataError`` (and any non-Redis exception) means the batch itself is bad.
    """
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    cls = type(exc)
    return cls.__module__.split(".")[0] == "redis" and cls.__name__ != "DataError"


class CollectorStats:
    """Health figures of this worker's collector (exported as series)."""

    __slots__ = ("flush_failures", "flushes", "last_error", "last_flush_ok_s")

    def __init__(self) -> None:
        """Start with zero counts."""
        self.flushes = 0
        self.flush_failures = 0
        self.last_flush_ok_s: float | None = None
        self.last_error: str | None = None


class ErrorMetricsCollector:
    """Counts errors in a per-worker buffer and flushes them, pre-aggregated, into a store."""

    def __init__(
        self, config: MetricsConfig | None = None, store: MetricsStore | None = None
    ) -> None:
        """Collect per *config* into *store* (default: the store ``config`` selects)."""
        self.config = cfg = config or MetricsConfig()
        self.store: MetricsStore = store if store is not None else create_store(cfg)
        self._owns_store = store is None
        # Events are sampled, counts never: each flush carries at most this many of the newest
        # events (masking and encoding them is most of a flush's cost); the rest are counted
        # in events_dropped.
        self._ring_size = min(cfg.max_events, cfg.max_pending, cfg.max_events_per_flush)
        self._masker = PiiMasker(cfg.pii_patterns, max_length=cfg.max_text_length)
        # ASCII JSON: a lone surrogate in echoed text is escaped, never an encoding error later
        self._encoder = json.JSONEncoder(default=str, ensure_ascii=True, separators=(",", ":"))
        self._flush_lock = threading.Lock()
        self._init_process_state()
        if not self.config.enabled:
            self.record = self._record_disabled  # type: ignore[method-assign]
        _collectors.add(self)

    # ------------------------------------------------------------------ process state
    def _init_process_state(self) -> None:
        """(Re)create everything that belongs to one process: buffer, ids, lock, flusher."""
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        # bucket start (s) -> series -> count; ``_cur`` is the current bucket's cells and
        # ``_bucket_end`` when it ends (0.0 forces ``_roll``: after a swap, or before start).
        self._buckets: dict[int, _Cells] = {}
        self._cur: _Cells = {}
        self._bucket_end = 0.0
        self._cells = 0
        self._series: set[SeriesKey] = set()
        self._names: dict[int, str] = {}
        self._events: deque[_RawEvent] = deque(maxlen=self._ring_size)
        self._folded = 0
        self._dropped = 0
        self.worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._id_prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count(1)
        self._seq = 0
        self._pending: Batch | None = None
        self._last_apply_mono: float | None = None  # None: nothing applied (or retired)
        self.stats = CollectorStats()
        self._flusher: Flusher | None = None
        self._running = False

    def _reset_after_fork(self) -> None:
        """In a forked child: drop the parent's buffer and thread; this is a new worker."""
        self._flush_lock = threading.Lock()
        self._init_process_state()

    def _start_flusher(self) -> None:
        # A lock of its own: the flush lock may be held by a flush waiting on Redis.
        with self._start_lock:
            if self._running:
                return
            self._flusher = Flusher(self, self.config.flush_interval_ms / 1000)
            self._flusher.start()
            self._running = True

    def start(self) -> None:
        """Start this process's background flusher (also started lazily by ``record``)."""
        if self.config.enabled and not self._running:
            self._start_flusher()

    # ------------------------------------------------------------------ hot path
    def record(
        self,
        error_code: int,
        error_name: str,
        status_code: int,
        message: str,
        detail: Any = None,
        path: str | None = None,
        method: str | None = None,
    ) -> str:
        """Count one error and keep its raw event; returns the event id. No I/O, one lock."""
        now = _now()
        n = next(self._ids)
        lock = self._lock
        lock.acquire()
        try:
            if now >= self._bucket_end:
                self._roll(now)
            cells = self._cur
            key = (error_code, status_code)
            count = cells.get(key)
            if count is None:  # first of this series in this bucket: the cold branch
                key = self._admit(key, error_name)
                count = cells.get(key, 0)
            cells[key] = count + 1
            self._events.append(
                (n, now, error_code, error_name, status_code, message, detail, path, method)
            )
        finally:
            lock.release()
        return f"{self._id_prefix}{n}"

    def _roll(self, now: float) -> None:
        """Under the lock: open the bucket *now* falls in (and start the flusher once)."""
        if not self._running:
            self._start_flusher()
        width = self.config.bucket_width_s
        start = int(now) - int(now) % width
        self._cur = self._buckets.setdefault(start, {})
        self._bucket_end = start + width

    def _admit(self, key: SeriesKey, error_name: str) -> SeriesKey:
        """Under the lock: admit a new cell, or fold it into the overflow series.

        Folds past ``max_series`` distinct series or ``max_pending`` cells (bucket x series) in
        this buffer, so a flood of distinct codes keeps memory flat; the store applies the same
        series cap fleet-wide.
        """
        code, status = key
        series = self._series
        if (
            not (isinstance(code, int) and isinstance(status, int))  # codes are ints, always
            or self._cells >= self.config.max_pending
            or (key not in series and len(series) >= self.config.max_series)
        ):
            self._folded += 1
            return _OVERFLOW_KEY
        key = (int(code), int(status))  # an IntEnum counts as its int
        self._cells += 1
        series.add(key)
        self._names[key[0]] = error_name
        return key

    def note_dropped(self, count: int = 1) -> None:
        """Count errors that were recorded but could not be counted (exported as dropped)."""
        with self._lock:
            self._dropped += count

    @staticmethod
    def _record_disabled(*args: Any, **kwargs: Any) -> str:
        """``record()`` of a disabled collector: counts nothing, costs one call."""
        return ""

    # ------------------------------------------------------------------ flush
    def _swap(self) -> tuple[dict[int, _Cells], dict[int, str], list[_RawEvent], int, int]:
        """Take the buffer out in O(1) under the lock; the next record opens a new bucket."""
        with self._lock:
            buckets, self._buckets = self._buckets, {}
            self._cur = {}
            self._bucket_end = 0.0
            self._cells = 0
            self._series = set()
            names, self._names = self._names, {}
            events = self._events
            self._events = deque(maxlen=self._ring_size)
            folded, self._folded = self._folded, 0
            dropped, self._dropped = self._dropped, 0
        return buckets, names, list(events), folded, dropped

    @property
    def buffered(self) -> int:
        """Records counted locally and not yet in the store (buffer plus pending batch)."""
        batch = self._pending  # read once: the flusher may clear it meanwhile
        pending = sum(batch.counts.values()) if batch else 0
        return pending + sum(sum(cells.values()) for cells in list(self._buckets.values()))

    def _bounded_detail(self, detail: Any) -> Any:
        """The masked detail, or its JSON cut to ``max_text_length`` when it is too large."""
        masked = self._masker.mask(detail)
        if not isinstance(masked, (str, int, float, bool)):  # any container (sets included)
            text = self._encoder.encode(masked)
            cap = self.config.max_text_length
            if len(text) > 4 * cap:  # one event never carries a client's 100,000 ids
                return text[:cap] + " [truncated]"
        return masked

    def _encode_event(self, raw: _RawEvent) -> str:
        number, ts, code, name, status, message, detail, path, method = raw
        data = {
            "id": f"{self._id_prefix}{number}",
            "t": round(ts, 3),
            "c": code if isinstance(code, int) else OVERFLOW_CODE,
            "n": str(name)[: self.config.max_text_length],
            "s": status if isinstance(status, int) else OVERFLOW_CODE,
            "m": self._masker.mask_text(str(message)),
            "d": self._bounded_detail(detail) if detail is not None else None,
            "p": self._masker.mask_text(path) if path else path,
            "mt": method,
            "w": self.worker_id,
        }
        return self._encoder.encode(data)

    def _build_batch(self) -> Batch | None:
        buckets, names, raw_events, folded, dropped = self._swap()
        last = self._last_apply_mono
        quiet = last is not None and time.monotonic() - last < self.config.live_window_s / 3
        if not buckets and not raw_events and not dropped and quiet:
            return None
        counts = {
            (start, code, status): n
            for start, cells in buckets.items()
            for (code, status), n in cells.items()
        }
        recorded = sum(counts.values())
        kept = raw_events[-self.config.max_events :]
        events: list[str] = []
        encode_failures = 0
        for raw in kept:
            try:
                events.append(self._encode_event(raw))
            except Exception:
                encode_failures += 1
        cap = self.config.max_text_length
        self._seq += 1
        return Batch(
            worker_id=self.worker_id,
            seq=self._seq,
            counts=counts,
            names={code: json_safe(str(name))[:cap] for code, name in names.items()},
            events=events,
            dropped=dropped,
            events_dropped=max(0, recorded - len(kept)) + encode_failures,
            series_folded=folded,
            created_ms=int(time.time() * 1000),
        )

    def flush(self, timeout: float = 2.0) -> bool:
        """Push the local buffer into the store now; False if the store could not take it.

        A batch that failed is retried, unchanged, before any newer data is sent; records made
        meanwhile wait in the buffer. Waits at most *timeout* for a concurrent flush.
        """
        if not self._flush_lock.acquire(timeout=max(timeout, 0)):
            return False
        try:
            return self._flush_locked()
        finally:
            self._flush_lock.release()

    def _flush_locked(self) -> bool:
        for _ in range(2):  # the kept batch first, then what arrived meanwhile
            had_pending = self._pending is not None
            if self._pending is None:
                self._pending = self._build_batch()
            batch = self._pending
            if batch is None:
                return True
            try:
                self.store.apply(batch)
            except Exception as exc:
                self.stats.flush_failures += 1
                error = describe_error(exc)
                if not _is_transient(exc):
                    # The batch itself can never be applied (data redis-py cannot encode, a
                    # bug): retrying it would jam this worker for good. Drop it, counted.
                    self._pending = None
                    lost = sum(batch.counts.values())
                    self.note_dropped(lost)
                    _log.error(
                        "fastapi_error_codes: a batch of %d errors cannot be stored and was "
                        "dropped (counted in fastapi_errors_dropped_total): %s",
                        lost,
                        error,
                    )
                    return False
                if self.stats.last_error is None:
                    _log.warning(
                        "fastapi_error_codes: flush to the metrics store failed: %s", error
                    )
                self.stats.last_error = error
                return False
            if self.stats.last_error is not None:
                _log.warning("fastapi_error_codes: flushing to the metrics store works again")
                self.stats.last_error = None
            self._pending = None
            self._last_apply_mono = time.monotonic()
            self.stats.flushes += 1
            self.stats.last_flush_ok_s = time.time()
            if not had_pending:
                return True
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the flusher and flush what is left (the final flush); idempotent.

        The collector stays usable: a later ``record()`` or ``start()`` starts a new flusher,
        as when an app runs its lifespan again (``with TestClient(app)`` twice).
        """
        with self._start_lock:
            flusher, self._flusher = self._flusher, None
            self._running = False
        with self._lock:
            self._bucket_end = 0.0  # the next record() goes through _roll(): lazy restart
        if flusher is not None:
            flusher.stop(timeout)
        deadline = time.monotonic() + timeout
        # Nothing counted and nothing pending: no final flush (and no heartbeat) is needed.
        ok = (self._pending is None and not self._buckets) or self.flush(timeout)
        while not ok and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            ok = self.flush(max(0.0, deadline - time.monotonic()))
        if ok and self._last_apply_mono is not None:
            # Leave the live set at once (the workers gauge is right after a restart), once:
            # a second close() has nothing to retire; a later flush announces us again.
            self._last_apply_mono = None
            try:
                self.store.retire(self.worker_id)
            except Exception as exc:
                _log.warning("fastapi_error_codes: could not retire this worker: %s", exc)
        if not ok:
            lost = self.buffered
            if lost:
                _log.error(
                    "fastapi_error_codes: final flush failed; %d errors of this worker are lost",
                    lost,
                )
        if self._owns_store:
            self.store.close()  # reads after close() still work: redis-py reconnects
        return ok

    # ------------------------------------------------------------------ reads
    def read(self, window_s: int = 3600, flush_timeout: float = 1.0) -> FleetView:
        """Flush this worker's buffer (bounded wait), then read the fleet from the store."""
        self.flush(flush_timeout)
        return self.store.read(window_s)

    def get_snapshot(self) -> MetricsSnapshot:
        """Fleet totals, per-code counts, the last hour's buckets and recent events."""
        view = self.read()
        width = self.config.bucket_width_s
        buckets = []
        for start in sorted(view.buckets):
            by_code: dict[int, int] = {}
            by_status: dict[int, int] = {}
            for (code, status), n in view.buckets[start].items():
                by_code[code] = by_code.get(code, 0) + n
                by_status[status] = by_status.get(status, 0) + n
            buckets.append(
                TimeBucket(
                    start=_utc(start),
                    duration_s=width,
                    error_counts=by_code,
                    status_counts=by_status,
                )
            )
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
        return [ErrorEvent.from_wire(e) for e in self.store.recent_events(limit, error_code)]

    def clear(self) -> None:
        """Drop the local buffer and everything in the store's namespace."""
        with self._flush_lock:
            self._swap()
            self._pending = None
            self.store.clear()


def _utc(start_s: int) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(start_s, timezone.utc)
