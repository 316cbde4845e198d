"""The store seam: what the collector writes and the exporter and dashboard read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from ..models import OVERFLOW_CODE, Batch, FleetView, SeriesKey

__all__ = ["OVERFLOW_FIELD", "MetricsStore", "decode_field", "encode_field", "select_events"]

#: The stored field of the overflow series.
OVERFLOW_FIELD = "other:other"


def encode_field(code: int, status: int) -> str:
    """Return the stored field name of a series: ``"code:status"``."""
    if code == OVERFLOW_CODE:
        return OVERFLOW_FIELD
    return f"{code}:{status}"


def decode_field(field: str | bytes) -> SeriesKey:
    """Parse a stored series field back to ``(code, status)``."""
    text = field.decode() if isinstance(field, bytes) else field
    if text == OVERFLOW_FIELD:
        return (OVERFLOW_CODE, OVERFLOW_CODE)
    code, _, status = text.partition(":")
    return (int(code), int(status))


def select_events(
    newest_first: Iterable[str | bytes], limit: int, error_code: int | None
) -> list[dict[str, Any]]:
    """Decode stored events (newest first) until *limit* of them match *error_code*."""
    out: list[dict[str, Any]] = []
    for raw in newest_first:
        event = json.loads(raw)
        if error_code is None or event.get("c") == error_code:
            out.append(event)
            if len(out) >= limit:
                break
    return out


@runtime_checkable
class MetricsStore(Protocol):
    """Where batches land and fleet reads come from: the memory store or the Redis store."""

    def apply(self, batch: Batch) -> bool:
        """Apply *batch* atomically, once: False when this worker's seq was already applied."""
        ...

    def read(self, window_s: int = 0) -> FleetView:
        """Return fleet totals, names, health figures and the buckets of the last *window_s*."""
        ...

    def recent_events(self, limit: int, error_code: int | None = None) -> list[dict[str, Any]]:
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
