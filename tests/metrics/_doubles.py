"""Test doubles of the monitoring tests: a settable clock and stores that fail on demand."""

from __future__ import annotations

from fastapi_error_codes.metrics import MemoryStore, MetricsConfig
from fastapi_error_codes.metrics.models import Batch
from fastapi_error_codes.metrics.stores import StoreUnavailable


class FakeClock:
    """A settable stand-in for ``time.time()``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FailingStore(MemoryStore):
    """A memory store that fails the next *n* applies; optionally after applying (lost reply)."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__(config)
        self.fail_next = 0
        self.apply_then_fail = False
        self.applied_seqs: list[int] = []

    def apply(self, batch: Batch) -> bool:
        if self.fail_next:
            self.fail_next -= 1
            if self.apply_then_fail:
                super().apply(batch)
            raise StoreUnavailable("store down")
        self.applied_seqs.append(batch.seq)
        return super().apply(batch)


class PoisonOnce(MemoryStore):
    """Raises a non-transient error (as redis-py does for data it cannot encode) once."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__(config)
        self.poison = True

    def apply(self, batch: Batch) -> bool:
        if self.poison:
            self.poison = False
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return super().apply(batch)
