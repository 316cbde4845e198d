"""LocalBuffer: the hot path — this worker's counts and raw events since the last flush.

``record()`` runs inside the request: under one short lock it increments a counter keyed by
(bucket, code, status) and appends the raw event to a small ring. It touches no network or
disk, masks nothing and encodes nothing. The bucket is found with one float comparison against
the current bucket's end; only the first record of a bucket, or of a series in a bucket, takes
the cold branch. Buckets are the fleet's: opened by this worker's clock plus the offset to the
store's clock that the flusher measured (event times are corrected when they are encoded).

Raw events hold the app's own objects (a detail may be megabytes), so they stay here only
briefly: when ``WAKE_AT`` of them wait, ``on_full`` wakes the flusher, which takes them
(``take_events()``) and keeps them encoded, masked and size-capped. At most ``RAW_RING`` raw
events are held; past that the oldest are dropped (counted as events dropped, never as
errors). ``drain()`` hands everything to the flusher in O(1) under the same lock.

``count_request()`` is the per-request hot path of request counting: under the same lock it
counts the response by (route, method, status class) and, for an error response, the error by
(code, name, status, route, method), keeping the newest request and trace ids of that series
as its exemplar. Those route series have a cap of their own (``max_route_series``).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import MetricsConfig
from .models import (
    OTHER,
    OVERFLOW_CODE,
    RouteErrorKey,
    SeriesKey,
    folded_request,
    folded_route_error,
)

__all__ = [
    "METHODS",
    "UNMATCHED_ROUTE",
    "Drained",
    "Exemplar",
    "LocalBuffer",
    "RawEvent",
]

#: One recorded error as the hot path keeps it: (event number, time by this worker's clock,
#: code, name, status, message, detail, path, method, request id, trace id).
RawEvent = tuple[
    int, float, int, str, int, str, Any, "str | None", "str | None", "str | None", "str | None"
]
_Cells = dict[SeriesKey, int]
#: The newest request of an error-by-route series: (request id, trace id, Sentry event id,
#: the error's event id, time by the fleet's clock).
Exemplar = tuple["str | None", "str | None", "str | None", "str | None", float]
_RouteCells = dict[Any, int]

#: The route of a request no route matched (never the raw path).
UNMATCHED_ROUTE = "<unmatched>"
#: Methods counted under their own name; any other is counted as ``other``.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)

#: Raw events held at most (the newest); the flusher takes them long before, normally.
RAW_RING = 256
#: Raw events waiting that wake the flusher to encode them.
WAKE_AT = 8

_OVERFLOW_KEY: SeriesKey = (OVERFLOW_CODE, OVERFLOW_CODE)


def _nothing() -> None:
    """The default ``on_full``: no flusher listens."""


def _counted(buckets: dict[int, _Cells]) -> int:
    return sum(sum(cells.values()) for cells in list(buckets.values()))


@dataclass(frozen=True, slots=True)
class Drained:
    """What one ``drain()`` took out of the buffer: counts, names, events and loss figures."""

    #: bucket start (s) -> (code, status) -> count
    buckets: dict[int, _Cells]
    names: dict[int, str]
    #: oldest first, at most the ring size
    events: list[RawEvent]
    folded: int
    dropped: int
    sentry_skipped: int
    #: requests to the library's own endpoints refused by authentication
    refused: int
    #: prefix of this process's event ids (an event's id is the prefix and its number)
    id_prefix: str
    #: bucket start (s) -> request series (3-tuples) and error-by-route series (5-tuples)
    routes: dict[int, _RouteCells]
    #: error-by-route series -> its newest request (the exemplar)
    exemplars: dict[RouteErrorKey, Exemplar]
    #: route series folded into ``other`` past ``max_route_series`` (requests and errors)
    route_folded: int

    @property
    def recorded(self) -> int:
        """Errors counted in this drain."""
        return _counted(self.buckets)


class LocalBuffer:
    """This worker's counts per (bucket, code, status) and its newest raw events."""

    def __init__(
        self,
        config: MetricsConfig,
        on_roll: Callable[[], None],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Buffer per *config*; *on_roll* runs (under the lock) whenever a bucket is opened.

        *clock* is this worker's wall clock (``time.time``); tests pass a skewed one.
        """
        self._config = config
        self._on_roll = on_roll
        self._clock = clock or time.time
        #: The store's clock minus this worker's (set by the flusher after each round trip).
        self.clock_offset = 0.0
        #: Called (under the lock) when WAKE_AT raw events wait: the flusher's wake-up.
        self.on_full: Callable[[], None] = _nothing
        # Events are sampled, counts never: the flusher keeps at most this many per flush
        # interval (masking and encoding them is most of a flush's cost).
        self.ring_size = min(config.max_events, config.max_pending, config.max_events_per_flush)
        self._raw_size = min(self.ring_size, RAW_RING)
        self._wake_at = min(WAKE_AT, self._raw_size)
        self.reset()

    def reset(self) -> None:
        """Start empty with a new lock and new event ids (also in a forked child)."""
        self._lock = threading.Lock()
        # bucket start (s) -> series -> count; ``_cur`` is the current bucket's cells and
        # ``_bucket_end`` when it ends (0.0 forces ``_roll``: after a drain, or before start).
        self._buckets: dict[int, _Cells] = {}
        self._cur: _Cells = {}
        self._bucket_end = 0.0
        self._cells = 0
        self._series: set[SeriesKey] = set()
        self._names: dict[int, str] = {}
        self._events: deque[RawEvent] = deque(maxlen=self._raw_size)
        self._folded = 0
        self._dropped = 0
        self._sentry_skipped = 0
        self._refused = 0
        self._id_prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count(1)
        # the route series: bucket start -> (request and error-by-route) series -> count
        self._routes: dict[int, _RouteCells] = {}
        self._rcur: _RouteCells = {}
        self._request_series: set[Any] = set()
        self._error_series: set[Any] = set()
        self._route_cells = 0
        self._exemplars: dict[RouteErrorKey, Exemplar] = {}
        self._route_folded = 0

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
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> str:
        """Count one error and keep its raw event; returns the event id. No I/O, one lock."""
        now = self._clock()  # this worker's clock; buckets are opened by the store's
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
            events = self._events
            events.append(
                (
                    n,
                    now,
                    error_code,
                    error_name,
                    status_code,
                    message,
                    detail,
                    path,
                    method,
                    request_id,
                    trace_id,
                )
            )
            if len(events) == self._wake_at:
                self.on_full()
        finally:
            lock.release()
        return f"{self._id_prefix}{n}"

    def count_request(
        self,
        route: str,
        method: str,
        status: int,
        error: tuple[int, str, int] | None = None,
        exemplar: tuple[str | None, str | None, str | None, str | None] | None = None,
    ) -> None:
        """Count one response by route, method and status class; with *error* (code, name,
        status), the error by route too, *exemplar* (request, trace, Sentry event and error
        event id) its newest.

        No I/O, one lock: the per-request cost of request counting.
        """
        if method not in METHODS:
            method = OTHER
        now = self._clock()
        lock = self._lock
        lock.acquire()
        try:
            if now >= self._bucket_end:
                self._roll(now)
            cells = self._rcur
            key: Any = (route, method, status // 100)
            count = cells.get(key)
            if count is None:
                key = self._admit_route(key, self._request_series)
                count = cells.get(key, 0)
            cells[key] = count + 1
            if error is not None:
                key = (error[0], error[1], error[2], route, method)
                count = cells.get(key)
                if count is None:
                    key = self._admit_route(key, self._error_series)
                    count = cells.get(key, 0)
                cells[key] = count + 1
                if exemplar is not None and len(key) == 5 and key[3] != OTHER:
                    self._exemplars[key] = (*exemplar, now + self.clock_offset)
        finally:
            lock.release()

    def _admit_route(self, key: Any, series: set[Any]) -> Any:
        """Under the lock: admit a new series of a route family (*series*), or fold it.

        A request series folds to (``other``, ``other``, its status class); an error-by-route
        series to (the overflow code, ``other``, its status, ``other``, ``other``): totals per
        status class and status stay exact. Each family has ``max_route_series`` series; the
        route cells of the buffer are bounded by ``max_pending`` apart from the error cells, so
        requests never take the room of errors (nor the other way round) through an outage.
        """
        folded: Any
        if len(key) == 3:
            folded = folded_request(key)
        else:
            code, name, status, route, method = key
            if not (isinstance(code, int) and isinstance(status, int)):
                code, status = OVERFLOW_CODE, OVERFLOW_CODE
            key = (int(code), str(name), int(status), route, method)
            folded = folded_route_error(key)
        if self._route_cells >= self._config.max_pending or (
            key not in series and len(series) >= self._config.max_route_series
        ):
            self._route_folded += 1
            return folded
        self._route_cells += 1
        series.add(key)
        return key

    def _roll(self, now: float) -> None:
        """Under the lock: open the bucket *now* (this worker's clock) falls in.

        Buckets are the store's: *now* is corrected by ``clock_offset``, and the bucket's end
        is kept in this worker's clock, so the hot path compares its own clock's reading
        without adding the offset (a drain reopens the bucket with the newest offset).
        """
        self._on_roll()
        width = self._config.bucket_width_s
        offset = self.clock_offset  # read once: the flusher thread may change it meanwhile
        fleet_now = now + offset
        start = int(fleet_now) - int(fleet_now) % width
        self._cur = self._buckets.setdefault(start, {})
        self._rcur = self._routes.setdefault(start, {})
        self._bucket_end = start + width - offset

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
            or self._cells >= self._config.max_pending
            or (key not in series and len(series) >= self._config.max_series)
        ):
            self._folded += 1
            return _OVERFLOW_KEY
        key = (int(code), int(status))  # an IntEnum counts as its int
        self._cells += 1
        series.add(key)
        self._names[key[0]] = error_name
        return key

    # ------------------------------------------------------------------ cold path
    def note_dropped(self, count: int = 1) -> None:
        """Count errors that were recorded but could not be counted (exported as dropped)."""
        with self._lock:
            self._dropped += count

    def note_sentry_skipped(self, count: int = 1) -> None:
        """Count Sentry captures the budget skipped (a fleet-wide counter once flushed)."""
        with self._lock:
            self._sentry_skipped += count

    def note_refused(self, count: int = 1) -> None:
        """Count requests to the library's endpoints refused by authentication (fleet-wide)."""
        with self._lock:
            self._refused += count

    def note_route_folded(self, count: int = 1) -> None:
        """Count route series folded into ``other`` (a batch that never landed hands them back)."""
        with self._lock:
            self._route_folded += count

    def take_events(self) -> list[RawEvent]:
        """Take the raw events waiting (oldest first), leaving the counts in place."""
        with self._lock:
            events = self._events
            if not events:
                return []
            self._events = deque(maxlen=self._raw_size)
        return list(events)

    def clock(self) -> float:
        """This worker's wall clock (``time.time`` unless a test gave another)."""
        return self._clock()

    @property
    def id_prefix(self) -> str:
        """Prefix of this process's event ids (an event's id is the prefix and its number)."""
        return self._id_prefix

    def expire_bucket(self) -> None:
        """Make the next ``record()`` open its bucket again (and so call *on_roll*)."""
        with self._lock:
            self._bucket_end = 0.0

    def drain(self) -> Drained:
        """Take everything out in O(1) under the lock; the next record opens a new bucket."""
        with self._lock:
            buckets, self._buckets = self._buckets, {}
            self._cur = {}
            self._bucket_end = 0.0
            self._cells = 0
            self._series = set()
            names, self._names = self._names, {}
            events = self._events
            self._events = deque(maxlen=self._raw_size)
            folded, self._folded = self._folded, 0
            dropped, self._dropped = self._dropped, 0
            skipped, self._sentry_skipped = self._sentry_skipped, 0
            refused, self._refused = self._refused, 0
            routes, self._routes = self._routes, {}
            self._rcur = {}
            self._request_series = set()
            self._error_series = set()
            self._route_cells = 0
            exemplars, self._exemplars = self._exemplars, {}
            route_folded, self._route_folded = self._route_folded, 0
        return Drained(
            {b: cells for b, cells in buckets.items() if cells},
            names,
            list(events),
            folded,
            dropped,
            skipped,
            refused,
            self._id_prefix,
            {b: cells for b, cells in routes.items() if cells},
            exemplars,
            route_folded,
        )

    @property
    def counted(self) -> int:
        """Errors counted here and not yet drained."""
        return _counted(self._buckets)

    @property
    def has_reports(self) -> bool:
        """Drops, Sentry skips, refused requests or route folds were noted since the last drain."""
        return bool(self._dropped or self._sentry_skipped or self._refused or self._route_folded)

    @property
    def is_empty(self) -> bool:
        """True when nothing (no error, no request) was counted since the last drain."""
        return not any(self._buckets.values()) and not any(self._routes.values())
