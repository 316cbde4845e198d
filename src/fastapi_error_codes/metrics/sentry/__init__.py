"""Sentry: per-worker capture by error code, with every event masked for PII.

Each worker process initialises sentry-sdk itself (:meth:`SentryIntegration.initialize`, from
the app's lifespan startup, so after any fork), with ``MetricsConfig.sentry_options`` — unless
the app initialised it first: that client is reused, its options win, and only the library's
masking and tagging hooks are chained after the app's own. The policy, applied by
:meth:`SentryIntegration.observe` (an error observer, see :mod:`fastapi_error_codes.observers`):

* 5xx (unexpected exceptions included) are captured, tagged ``error_code``, ``error_name`` and
  ``status_code`` and fingerprinted by error code, so Sentry groups issues by our codes;
* declared 4xx errors become breadcrumbs, unless ``MetricsConfig.sentry_capture_4xx``;
* every capture of ``observe`` spends the :class:`CaptureBudget`: at most
  ``MetricsConfig.sentry_capture_budget`` per error code and ``sentry_budget_interval_s``
  (unexpected exceptions: per exception type), checked before any sentry-sdk work; what it
  skips is counted (``SentryIntegration.skipped``, ``on_skipped``) and reported by the next
  capture of that code (``skipped_since_last_capture``). The fleet store still counts every
  error: Sentry gets examples. With the integration active, the handlers' log line of an
  error is no second Sentry event (``ignore_logger("fastapi_error_codes.errors")``).

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
    SKIPPED_FIELD,
    CaptureBudget,
    SentryIntegration,
    describe_exception,
    fingerprint_for,
)

__all__ = [
    "BREADCRUMB_CATEGORY",
    "INSTALL_HINT",
    "SKIPPED_FIELD",
    "CaptureBudget",
    "SentryIntegration",
    "describe_exception",
    "fingerprint_for",
    "mask_pii",
]
