"""The store seam: what the collector writes, what the readers read, and how a store fails.

A store raises only the library's own exceptions for what it cannot do: :class:`StoreUnavailable`
(the store cannot be reached or answered late: the same batch is retried later) and
:class:`BatchRejected` (this batch can never be stored: retrying it would jam the worker), so
the collector knows nothing of redis-py and the HTTP layer nothing of the store in use.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..models import Batch, FleetView
from ..wire import WireEvent

__all__ = ["BatchRejected", "MetricsStore", "StoreError", "StoreUnavailable", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of a failure (redis-py's repr hides the message)."""
    return f"{type(exc).__name__}: {exc}"


class StoreError(Exception):
    """A metrics store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store could not be reached, or answered too late: try the same thing again later."""


class BatchRejected(StoreError):
    """The store can never take this batch (data it cannot encode): retrying would not help."""


@runtime_checkable
class MetricsStore(Protocol):
    """Where batches land and fleet reads come from: the memory store or the Redis store."""

    def apply(self, batch: Batch) -> bool:
        """Apply *batch* atomically, once: False when this worker's seq was already applied."""
        ...

    def read(self, window_s: int = 0) -> FleetView:
        """Return fleet totals, names, health figures and the buckets of the last *window_s*."""
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
