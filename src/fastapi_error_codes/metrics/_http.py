"""HTTP helpers shared by the /metrics endpoint and the dashboard router."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from .stores.base import describe_error

__all__ = ["store_unavailable_as_503"]

_log = logging.getLogger("fastapi_error_codes.metrics")


@contextmanager
def store_unavailable_as_503() -> Iterator[None]:
    """Turn a failing store read (Redis down, timeout) into a 503 with our error body."""
    try:
        yield
    except HTTPException:
        raise
    except Exception as exc:
        _log.warning("fastapi_error_codes: metrics store read failed: %s", describe_error(exc))
        raise HTTPException(
            status_code=503,
            detail="the metrics store is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        ) from None
