"""Flusher: moves a worker's buffer into the store — in seq order, retried unchanged, retired.

A batch is applied exactly once: it carries this worker's id and a seq that grows by one per
batch, and the store ignores a seq it applied before. A batch that failed with
:class:`~fastapi_error_codes.metrics.stores.StoreUnavailable` is kept and sent again, unchanged,
before any newer data (records made meanwhile wait in the buffer); one the store rejects for
good is dropped and counted, so a poison batch never jams the worker. A background thread
flushes every ``flush_interval_ms`` and backs off (jittered, at most 30 s) while the store
fails. ``close()`` is the final flush, after which a worker that shut down cleanly leaves the
live set at once.

Between flushes, and through an outage, the thread also takes the buffer's raw events as soon
as a few wait and keeps them in the spool: encoded, masked and size-capped, at most
``max_events_per_flush`` per flush interval. A worker's memory stays bounded in bytes however
large the details its errors carry and however long the store is away.

Each attempt tells the store the batch's age and whether an earlier attempt may have been
applied unseen (a lost reply), so a store that has forgotten this worker's seq since refuses
the batch instead of counting it twice. After each round trip the offset between the store's
clock and this worker's is handed to the buffer: every worker files its errors by the store's
clock, however far its own is off.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
import uuid
from collections import deque

from .buffer import LocalBuffer, RawEvent
from .config import MetricsConfig
from .models import Batch
from .stores import BatchRejected, MetricsStore, StoreUnavailable
from .stores.base import describe_error
from .wire import WireEncoder

__all__ = ["MAX_BACKOFF_S", "FlushStats", "Flusher"]

_log = logging.getLogger("fastapi_error_codes.metrics")

#: Longest wait between two attempts while the store keeps failing.
MAX_BACKOFF_S = 30.0


class FlushStats:
    """Health figures of this worker's flushes (exported as series)."""

    __slots__ = ("flush_failures", "flushes", "last_error", "last_flush_ok_s")

    def __init__(self) -> None:
        """Start with zero counts."""
        self.flushes = 0
        self.flush_failures = 0
        self.last_flush_ok_s: float | None = None
        self.last_error: str | None = None


class Flusher:
    """Sends one worker's batches to the store, from a background thread and on demand."""

    def __init__(self, config: MetricsConfig, buffer: LocalBuffer, store: MetricsStore) -> None:
        """Flush *buffer* into *store* per *config*; nothing runs until ``start()``."""
        self._config = config
        self._buffer = buffer
        self._store = store
        self._encoder = WireEncoder(config)
        self.reset()

    def reset(self) -> None:
        """Become a new worker: new id and seq, nothing pending, no thread (after a fork)."""
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self.worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._seq = 0
        self._pending: Batch | None = None
        self._first_try_mono = 0.0  # when the pending batch was first sent
        self._unsure = False  # an attempt of the pending batch may have been applied unseen
        self._failures_unsent = 0  # failed attempts not yet reported in a batch
        self._last_apply_mono: float | None = None  # None: nothing applied (or retired)
        # Encoded events waiting for the next batch (oldest first), and how many were encoded
        # in this flush interval (at most the buffer's ring size).
        self._spool: deque[str] = deque(maxlen=self._buffer.ring_size)
        self._encode_failures = 0
        self._encoded_in_interval = 0
        self.stats = FlushStats()
        self._thread: _FlushThread | None = None
        self._running = False
        self._buffer.on_full = _nothing

    # ------------------------------------------------------------------ thread
    def ensure_started(self) -> None:
        """Start the background thread in this process unless it runs already."""
        if self._running:
            return
        # A lock of its own: the flush lock may be held by a flush waiting on the store.
        with self._start_lock:
            if self._running:
                return
            self._thread = _FlushThread(self, self._config.flush_interval_ms / 1000)
            self._buffer.on_full = self._thread.wake
            self._thread.start()
            self._running = True

    @property
    def running(self) -> bool:
        """True while the background thread of this process runs."""
        return self._running

    # ------------------------------------------------------------------ flush
    @property
    def seq(self) -> int:
        """The seq of this worker's newest batch (0 before the first)."""
        return self._seq

    @property
    def pending_count(self) -> int:
        """Errors in the batch that failed and waits for its retry."""
        batch = self._pending  # read once: the flusher thread may clear it meanwhile
        return sum(batch.counts.values()) if batch else 0

    def flush(self, timeout: float = 2.0) -> bool:
        """Push the buffer into the store now; False if the store could not take it.

        Waits at most *timeout* for a concurrent flush.
        """
        if not self._flush_lock.acquire(timeout=max(timeout, 0)):
            return False
        try:
            return self._flush_locked()
        finally:
            self._flush_lock.release()

    # ------------------------------------------------------------------ events
    def encode_events(self) -> None:
        """Move the buffer's raw events into the spool: encoded, masked, size-capped."""
        with self._encode_lock:
            self._spool_raw(self._buffer.take_events())

    def _spool_raw(self, raw: list[RawEvent]) -> None:
        """Under the encode lock: encode the newest of *raw* this interval's budget allows."""
        room = self._buffer.ring_size - self._encoded_in_interval
        if not raw or room <= 0:
            return
        prefix = self._buffer.id_prefix
        offset = self._buffer.clock_offset
        for event in raw[-room:]:
            try:
                self._spool.append(self._encoder.event(event, prefix, self.worker_id, offset))
            except Exception:
                self._encode_failures += 1
        self._encoded_in_interval += min(room, len(raw))

    def new_interval(self) -> None:
        """Start a flush interval: the event budget is full again."""
        self._encoded_in_interval = 0

    def _next_batch(self) -> Batch | None:
        with self._encode_lock:
            drained = self._buffer.drain()
            self._spool_raw(drained.events)
            events = list(self._spool)
            self._spool.clear()
            self._encoded_in_interval = 0  # a batch starts the event budget afresh too
            failures, self._encode_failures = self._encode_failures, 0
        last = self._last_apply_mono
        quiet = last is not None and time.monotonic() - last < self._config.live_window_s / 3
        reports = (
            drained.dropped
            or drained.sentry_skipped
            or drained.refused
            or drained.route_folded
            or self._failures_unsent
        )
        if not drained.buckets and not drained.routes and not events and not reports and quiet:
            return None  # nothing to say, and the heartbeat is recent enough
        self._seq += 1
        self._first_try_mono = time.monotonic()
        self._unsure = False
        batch = self._encoder.batch(drained, self.worker_id, self._seq, events, failures)
        batch = dataclasses.replace(batch, flush_failures=self._failures_unsent)
        self._failures_unsent = 0
        return batch

    def _flush_locked(self) -> bool:
        for _ in range(2):  # the kept batch first, then what arrived meanwhile
            had_pending = self._pending is not None
            if self._pending is None:
                self._pending = self._next_batch()
            batch = self._pending
            if batch is None:
                return True
            attempt = dataclasses.replace(
                batch,
                age_ms=int((time.monotonic() - self._first_try_mono) * 1000),
                unsure=self._unsure,
                buffered=self._buffer.counted,
            )
            try:
                self._store.apply(attempt)
            except (StoreUnavailable, OSError) as exc:  # the store is away: keep the batch
                self.stats.flush_failures += 1
                self._failures_unsent += 1
                self._unsure = self._unsure or getattr(exc, "maybe_applied", True)
                if self.stats.last_error is None:
                    _log.warning(
                        "fastapi_error_codes: flush to the metrics store failed: %s",
                        describe_error(exc),
                    )
                self.stats.last_error = describe_error(exc)
                return False
            except Exception as exc:  # BatchRejected, or a bug: never retry a poison batch
                self.stats.flush_failures += 1
                self._failures_unsent += 1
                self._pending = None
                lost = sum(batch.counts.values())
                self._buffer.note_dropped(lost)
                if isinstance(exc, BatchRejected) and not exc.maybe_applied:
                    # Surely never applied: its own reports travel on with the next batch. (One
                    # that may have been applied keeps them: never counted twice.)
                    self._buffer.note_dropped(batch.dropped)
                    self._buffer.note_sentry_skipped(batch.sentry_skipped)
                    self._buffer.note_refused(batch.refused)
                    self._buffer.note_route_folded(batch.route_folded)
                    self._failures_unsent += batch.flush_failures
                _log.error(
                    "fastapi_error_codes: a batch of %d errors cannot be stored and was "
                    "dropped (counted in fastapi_errors_dropped_total): %s",
                    lost,
                    describe_error(exc),
                )
                return False
            if self.stats.last_error is not None:
                _log.warning("fastapi_error_codes: flushing to the metrics store works again")
                self.stats.last_error = None
            self._pending = None
            # A store of the app's own may predate the clock members: its clock is ours then.
            self._buffer.clock_offset = getattr(self._store, "clock_offset_s", 0.0)
            self._last_apply_mono = time.monotonic()
            self.stats.flushes += 1
            self.stats.last_flush_ok_s = time.time()
            if not had_pending:
                return True
        return True

    def _has_reports(self) -> bool:
        """Drops, Sentry skips, refusals or failures wait to be reported (no error counted)."""
        return bool(self._failures_unsent or self._buffer.has_reports)

    def sync_clock(self) -> None:
        """Measure the offset to the store's clock and hand it to the buffer (best effort)."""
        try:
            self._buffer.clock_offset = self._store.sync_clock()
        except Exception as exc:  # the first flush measures it again
            _log.debug("fastapi_error_codes: clock sync with the store failed: %s", exc)

    def discard(self) -> None:
        """Forget the buffer and the pending batch, and clear the store (one flush at a time)."""
        with self._flush_lock:
            with self._encode_lock:
                self._buffer.drain()
                self._spool.clear()
            self._pending = None
            self._store.clear()

    # ------------------------------------------------------------------ shutdown
    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread, flush what is left (bounded by *timeout*) and retire; idempotent."""
        with self._start_lock:
            thread, self._thread = self._thread, None
            self._running = False
        self._buffer.expire_bucket()  # the next record() starts a new thread: lazy restart
        if thread is not None:
            thread.stop(timeout)
        deadline = time.monotonic() + timeout
        # Nothing counted and nothing pending: no final flush (and no heartbeat) is needed.
        idle = self._pending is None and self._buffer.is_empty and not self._has_reports()
        ok = idle or self.flush(timeout)
        while not ok and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            ok = self.flush(max(0.0, deadline - time.monotonic()))
        if ok and self._last_apply_mono is not None:
            # Leave the live set at once (the workers gauge is right after a restart), once:
            # a second close() has nothing to retire; a later flush announces us again.
            self._last_apply_mono = None
            try:
                self._store.retire(self.worker_id)
            except Exception as exc:
                _log.warning("fastapi_error_codes: could not retire this worker: %s", exc)
        if not ok:
            lost = self.pending_count + self._buffer.counted
            if lost:
                _log.error(
                    "fastapi_error_codes: final flush failed; %d errors of this worker are lost",
                    lost,
                )
        return ok


def _nothing() -> None:
    """The buffer's wake-up while no flusher thread runs."""


class _FlushThread(threading.Thread):
    """Flushes every interval (backing off while it fails); encodes events when woken."""

    def __init__(self, flusher: Flusher, interval_s: float) -> None:
        super().__init__(name="fastapi-error-codes-flusher", daemon=True)
        self._flusher = flusher
        self._interval = interval_s
        self._stop_event = threading.Event()
        self._wake_event = threading.Event()
        self.failures = 0

    def wake(self) -> None:
        """Ask the thread to take the buffer's raw events now (called by ``record()``)."""
        self._wake_event.set()

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (jittered backoff after failures)."""
        if not self.failures:
            return self._interval
        backoff = min(MAX_BACKOFF_S, self._interval * float(2 ** min(self.failures, 16)))
        return backoff * random.uniform(0.5, 1.0)

    def run(self) -> None:
        """Flush until stopped; never lets an exception end the thread."""
        flusher = self._flusher
        flusher.sync_clock()
        due = time.monotonic() + self._interval
        tick = time.monotonic() + self._interval
        while not self._stop_event.is_set():
            now = time.monotonic()
            self._wake_event.wait(max(0.0, min(due, tick) - now))
            self._wake_event.clear()
            if self._stop_event.is_set():
                break
            now = time.monotonic()
            try:
                if now >= tick:  # events go into the spool every interval, even in backoff
                    tick = now + self._interval
                    flusher.new_interval()
                flusher.encode_events()
                if now >= due:
                    ok = flusher.flush(timeout=self._interval)
                    self.failures = 0 if ok else self.failures + 1
                    due = time.monotonic() + self.next_delay()
            except Exception:  # flush() catches store errors; this guards against bugs
                self.failures += 1
                due = time.monotonic() + self.next_delay()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait up to *timeout* for it."""
        self._stop_event.set()
        self._wake_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
