"""Sentry event scrubbing: every user-data field of an event or breadcrumb masked, ids kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..pii import MASK, PiiMasker

__all__ = ["mask_breadcrumb", "mask_event", "minimal_event"]

# Event fields that hold no user data and must reach Sentry unchanged (ids, SDK info).
_STRUCTURAL = frozenset(
    {
        "event_id",
        "timestamp",
        "start_timestamp",
        "platform",
        "level",
        "type",
        "sdk",
        "modules",
        "debug_meta",
        "fingerprint",
        "release",
        "dist",
        "environment",
        "server_name",
        "_meta",
        "transaction_info",
        "_metrics_summary",
    }
)
# Trace ids, restored after masking in ``contexts.trace`` and in every span.
_ID_KEYS = ("trace_id", "span_id", "parent_span_id")
# The fields of an event the minimal fallback keeps as they are.
_MINIMAL = ("event_id", "timestamp", "platform", "level")


def mask_event(event: Mapping[str, Any], masker: PiiMasker) -> dict[str, Any]:
    """A copy of a Sentry event with every user-data field masked; ids left intact."""
    mask = masker.mask
    out = {k: (v if k in _STRUCTURAL else mask(v)) for k, v in event.items()}
    contexts, masked_contexts = event.get("contexts"), out.get("contexts")
    if isinstance(contexts, Mapping) and isinstance(masked_contexts, dict):
        _restore_ids(contexts.get("trace"), masked_contexts.get("trace"))
    spans, masked_spans = event.get("spans"), out.get("spans")
    if isinstance(spans, list) and isinstance(masked_spans, list):
        for orig, new in zip(spans, masked_spans, strict=False):
            _restore_ids(orig, new)
    return out


def _restore_ids(original: Any, masked: Any) -> None:
    """Copy the trace ids of *original* back into its masked copy (ids are not user data)."""
    if isinstance(original, Mapping) and isinstance(masked, dict):
        for key in _ID_KEYS:
            if key in original:
                masked[key] = original[key]


def minimal_event(event: Any) -> dict[str, Any] | None:
    """The fallback when masking failed: ids, level and exception types; None if even that fails."""
    try:
        out = {k: event[k] for k in _MINIMAL if k in event}
        exc = event.get("exception")
        values = exc.get("values") if isinstance(exc, Mapping) else None
        if isinstance(values, list):
            out["exception"] = {
                "values": [
                    {"type": str(v.get("type")), "value": MASK}
                    for v in values
                    if isinstance(v, Mapping)
                ]
            }
        out["message"] = "event withheld: PII masking failed"
    except Exception:  # an event that is not even a mapping: drop it, never send it raw
        return None
    return out


def mask_breadcrumb(crumb: Any, masker: PiiMasker) -> Any:
    """A masked copy of a Sentry breadcrumb (category, message and data alike)."""
    return masker.mask(crumb)
