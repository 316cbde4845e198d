"""UTC timestamps in the one ISO 8601 form every error body uses."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utc_timestamp"]


def utc_timestamp() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds and a ``Z`` suffix."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
