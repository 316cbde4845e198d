"""The store seam: what the collector writes, what the readers read, and how a store fails.

A store raises only the library's own exceptions for what it cannot do: :class:`StoreUnavailable`
(the store cannot be reached or answered late: the same batch is retried later) and
:class:`BatchRejected` (this batch can never be stored: retrying it would jam the worker), so
the collector knows nothing of redis-py and the HTTP layer nothing of the store in use.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from ..models import Batch, FleetView
from ..wire import WireEvent

__all__ = [
    "BatchRejected",
    "MetricsStore",
    "StoreError",
    "StoreUnavailable",
    "describe_error",
    "window_starts",
]


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of a failure (redis-py's repr hides the message)."""
    return f"{type(exc).__name__}: {exc}"


class StoreError(Exception):
    """A metrics store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store could not be reached, or answered too late: try the same thing again later."""

    def __init__(self, message: str = "", *, maybe_applied: bool = True) -> None:
        """*maybe_applied*: False only when the request surely never reached the store."""
        super().__init__(message)
        self.maybe_applied = maybe_applied


class BatchRejected(StoreError):
    """The store can never take this batch (data it cannot encode): retrying would not help."""

    def __init__(self, message: str = "", *, maybe_applied: bool = False) -> None:
        """*maybe_applied*: True when an earlier attempt of the batch may have been applied."""
        super().__init__(message)
        self.maybe_applied = maybe_applied


def window_starts(now: float, window_s: int, width: int) -> range:
    """Starts of the buckets a read of the last *window_s* seconds returns (both stores).

    Every bucket that overlaps ``[now - window_s, now]``: a window that is not a whole number
    of buckets still gets the bucket its start falls in. None for ``window_s`` 0, and never a
    bucket that starts after the current one (a worker whose clock runs ahead counts in the
    totals, not in any window).
    """
    if window_s <= 0:
        return range(0)
    last = int(now) - int(now) % width
    first = math.floor((now - window_s) / width) * width
    return range(first, last + 1, width)


@runtime_checkable
class MetricsStore(Protocol):
    """Where batches land and fleet reads come from: the memory store or the Redis store."""

    @property
    def clock_offset_s(self) -> float:
        """The store's clock minus this process's, as last measured (workers correct by it)."""
        ...

    def sync_clock(self) -> float:
        """Measure the offset to the store's clock now; returns it."""
        ...

    def apply(self, batch: Batch) -> bool:
        """Apply *batch* atomically, once: False when this worker's seq was already applied.

        Raises :class:`BatchRejected` for a batch that can never be applied safely (a retry
        older than the forget window whose first attempt's outcome is unknown, or data the
        store cannot encode), :class:`StoreUnavailable` when it should be sent again later.
        """
        ...

    def read(self, window_s: int = 0, *, routes: bool = False) -> FleetView:
        """Return fleet totals, names, health figures and the buckets of the last *window_s*.

        The route series' totals always; their buckets of the window only with *routes*.
        """
        ...

    def recent_events(self, limit: int, error_code: int | None = None) -> list[WireEvent]:
        """Return up to *limit* newest events (wire dicts), optionally of one error code."""
        ...

    def retire(self, worker_id: str) -> None:
        """Take a worker that shut down cleanly out of the live workers at once."""
        ...

    def clear(self) -> None:
        """Delete everything this store holds under its namespace."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
