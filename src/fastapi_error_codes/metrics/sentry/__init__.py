"""Sentry: per-worker capture by error code, with every event masked for PII.

Each worker process initialises sentry-sdk itself (:meth:`SentryIntegration.initialize`, from
the app's lifespan startup, so after any fork). The policy, applied by
:meth:`SentryIntegration.observe` (an error observer, see :mod:`fastapi_error_codes.observers`):

* 5xx (unexpected exceptions included) are captured, tagged ``error_code``, ``error_name`` and
  ``status_code`` and fingerprinted by error code, so Sentry groups issues by our codes;
* declared 4xx errors become breadcrumbs, unless ``MetricsConfig.sentry_capture_4xx``.

Every event, transaction and breadcrumb passes ``before_send`` / ``before_breadcrumb``, which
mask the whole of it (:mod:`.scrub`) with the same
:class:`~fastapi_error_codes.metrics.pii.PiiMasker` the stores use; they never raise
(sentry-sdk silently drops an event whose ``before_send`` raises). sentry-sdk is imported
lazily: this package imports without it, and every method is a cheap no-op when Sentry is
disabled or has no DSN.
"""

from __future__ import annotations

from ..pii import mask_pii
from .integration import (
    BREADCRUMB_CATEGORY,
    INSTALL_HINT,
    SentryIntegration,
    describe_exception,
    fingerprint_for,
)

__all__ = [
    "BREADCRUMB_CATEGORY",
    "INSTALL_HINT",
    "SentryIntegration",
    "describe_exception",
    "fingerprint_for",
    "mask_pii",
]
