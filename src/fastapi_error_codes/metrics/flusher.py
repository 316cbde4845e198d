"""The background flusher: one daemon thread per worker process, with backoff on failure."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .collector import ErrorMetricsCollector

__all__ = ["MAX_BACKOFF_S", "Flusher"]

#: Longest wait between two attempts while the store keeps failing.
MAX_BACKOFF_S = 30.0


class Flusher(threading.Thread):
    """Calls ``collector.flush()`` every interval; backs off exponentially while it fails."""

    def __init__(self, collector: ErrorMetricsCollector, interval_s: float) -> None:
        """Flush *collector* every *interval_s* seconds once started."""
        super().__init__(name="fastapi-error-codes-flusher", daemon=True)
        self._collector = collector
        self._interval = interval_s
        self._stop_event = threading.Event()
        self.failures = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (jittered backoff after failures)."""
        if not self.failures:
            return self._interval
        backoff = min(MAX_BACKOFF_S, self._interval * float(2 ** min(self.failures, 16)))
        return backoff * random.uniform(0.5, 1.0)

    def run(self) -> None:
        """Flush until stopped; never lets an exception end the thread."""
        while not self._stop_event.wait(self.next_delay()):
            try:
                ok = self._collector.flush(timeout=self._interval)
            except Exception:  # flush() catches store errors; this guards against bugs
                ok = False
            self.failures = 0 if ok else self.failures + 1

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait up to *timeout* for it."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
