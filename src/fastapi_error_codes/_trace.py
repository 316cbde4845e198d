"""Trace context of a request: its W3C trace id, and marking the OpenTelemetry server span.

OpenTelemetry is optional (the ``[otel]`` extra): when ``opentelemetry-api`` is importable and
a span is active, its trace id is the request's; otherwise the ``traceparent`` header's. The
error handlers mark the active span with the error's code and name (and, for a 5xx, set
``error.type`` and the span's status to ERROR, as OpenTelemetry's HTTP conventions do for
server spans). Nothing here is on the path of a request without an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["mark_span", "parse_traceparent", "trace_id_of"]

#: ``version-traceid-parentid-flags`` (W3C Trace Context); later versions may append fields.
_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_INVALID_TRACE = "0" * 32
_INVALID_PARENT = "0" * 16

_otel: Any = None  # the opentelemetry.trace module, False when it cannot be imported


def _otel_trace() -> Any:
    global _otel
    if _otel is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _otel = False
        else:
            _otel = trace
    return _otel or None


def parse_traceparent(value: str) -> str | None:
    """The trace id of a ``traceparent`` header value, or None when it is not a valid one."""
    match = _TRACEPARENT_RE.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _INVALID_TRACE:
        return None
    if parent_id == _INVALID_PARENT:
        return None
    return trace_id


def _active_trace_id() -> str | None:
    trace = _otel_trace()
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x")


def trace_id_of(headers: Iterable[tuple[bytes, bytes]] | None) -> str | None:
    """The request's trace id: the active OpenTelemetry span's, else its ``traceparent``'s.

    *headers* are the request's (the ASGI scope's ``headers``).
    """
    found = _active_trace_id()
    if found is not None:
        return found
    for name, value in headers or ():
        if name == b"traceparent":
            return parse_traceparent(value.decode("latin-1"))
    return None


def mark_span(error_code: int, error_name: str, status_code: int) -> None:
    """Mark the active OpenTelemetry span with the answered error (no-op without a span)."""
    trace = _otel_trace()
    if trace is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("fastapi_error_codes.error_code", error_code)
    span.set_attribute("fastapi_error_codes.error_name", error_name)
    if status_code >= 500:
        span.set_attribute("error.type", error_name)
        span.set_status(trace.Status(trace.StatusCode.ERROR, error_name))
