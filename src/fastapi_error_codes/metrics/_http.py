"""HTTP helpers shared by the /metrics endpoint and the dashboard router."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from .._routes import route_template
from ..handlers import LOGGED_ATTR
from .stores.base import describe_error

__all__ = ["FailureStreak", "route_template", "store_unavailable_as_503"]

_log = logging.getLogger("fastapi_error_codes.metrics")


class FailureStreak:
    """Logs failing store reads once per streak: the first failure, then one line on recovery."""

    def __init__(self) -> None:
        """Start healthy."""
        self._lock = threading.Lock()
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        """A read failed: a warning if it is the first failure since the last success."""
        with self._lock:
            first, self.failing = not self.failing, True
        if first:
            _log.warning("fastapi_error_codes: metrics store read failed: %s", describe_error(exc))

    def succeeded(self) -> None:
        """A read succeeded: one line if it ends a failure streak."""
        with self._lock:
            ended, self.failing = self.failing, False
        if ended:
            _log.warning("fastapi_error_codes: reading the metrics store works again")


@contextmanager
def store_unavailable_as_503() -> Iterator[None]:
    """Turn a failing store read (Redis down, timeout) into a 503 with our error body.

    Logs nothing: the read gate logs each failure streak once (:class:`FailureStreak`).
    """
    try:
        yield
    except HTTPException:
        raise
    except Exception:
        unavailable = HTTPException(
            status_code=503,
            detail="the metrics store is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        )
        setattr(unavailable, LOGGED_ATTR, True)  # the read gate logged the streak
        raise unavailable from None
