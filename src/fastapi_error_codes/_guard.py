"""FailureGuard: best-effort code that must never break a request counts its failures instead.

Error observers, the Sentry integration and the collector's cold paths run beside the app's own
work. A failure there is a bug or an outage of a dependency, never a reason to change a
response: ``with guard:`` swallows it, counts it and logs the first one with its traceback.
"""

from __future__ import annotations

import logging
from types import TracebackType

__all__ = ["FailureGuard"]


class FailureGuard:
    """A reusable context manager that swallows, counts and logs (once) any ``Exception``."""

    __slots__ = ("_level", "_logged", "_logger", "_message", "failures")

    def __init__(self, logger: logging.Logger, message: str, level: int = logging.WARNING) -> None:
        """Log *message* at *level* on *logger*, with the traceback, at the first failure only."""
        self._logger = logger
        self._message = message
        self._level = level
        self._logged = False
        #: Failures swallowed so far.
        self.failures = 0

    def __enter__(self) -> FailureGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False  # KeyboardInterrupt, SystemExit and friends pass through
        self.failed(exc)
        return True

    def failed(self, exc: BaseException | None = None) -> None:
        """Count one failure; log it (with *exc*'s traceback) if it is the first."""
        self.failures += 1
        if not self._logged:
            self._logged = True
            self._logger.log(self._level, self._message, exc_info=exc if exc is not None else True)
