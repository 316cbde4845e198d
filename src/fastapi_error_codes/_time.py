"""UTC timestamps in the one ISO 8601 form every error body uses."""

from __future__ import annotations

import time

__all__ = ["utc_timestamp"]

#: The current second and its formatted prefix (``2025-01-01T12:00:00.``): formatting a date
#: costs a few µs, so it is done once per second; one tuple, replaced whole (thread-safe).
_second: tuple[int, str] = (-1, "")
#: ``"000Z"`` ... ``"999Z"``: the milliseconds and the suffix.
_MILLIS = tuple(f"{ms:03d}Z" for ms in range(1000))


def utc_timestamp() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds and a ``Z`` suffix.

    The same string as ``datetime.now(timezone.utc)`` formatted with
    ``%Y-%m-%dT%H:%M:%S.`` and its microseconds floored to milliseconds: both read the
    system clock in nanoseconds and floor it.
    """
    global _second
    seconds, millis = divmod(time.time_ns() // 1_000_000, 1000)
    cached = _second
    if cached[0] != seconds:
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)))
    return cached[1] + _MILLIS[millis]
