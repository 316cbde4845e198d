"""The wire format between workers and stores: batches, series fields and events, both ways.

Encoding runs in the flusher, never in the request: a drained buffer becomes one
:class:`~fastapi_error_codes.metrics.models.Batch` whose events are masked
(:class:`~fastapi_error_codes.metrics.pii.PiiMasker`), cut to ``max_text_length`` and
JSON-encoded as compact dicts (keys ``id t c n s m d p mt w rid tid``). Decoding turns stored
series fields and events back into models for the readers.

Route series are stored as tab-separated fields with the route last (a template may hold any
character): a request series as ``method<TAB>class<TAB>route``, an error-by-route series as
``code<TAB>status<TAB>method<TAB>name<TAB>route``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypedDict, cast

from .._bodies import json_safe
from .buffer import Drained, RawEvent
from .config import MetricsConfig
from .models import OVERFLOW_CODE, Batch, ErrorEvent, RequestKey, RouteErrorKey, SeriesKey
from .pii import PiiMasker

__all__ = [
    "FILTER_SCAN",
    "OVERFLOW_FIELD",
    "WireEncoder",
    "WireEvent",
    "decode_event",
    "decode_exemplar",
    "decode_field",
    "decode_request_field",
    "decode_route_error_field",
    "encode_field",
    "encode_request_field",
    "encode_route_error_field",
    "select_events",
]

#: The stored field of the overflow series.
OVERFLOW_FIELD = "other:other"

#: Newest events a filtered read looks through (at least its limit): a read's cost stays
#: bounded however many events of other codes the store keeps.
FILTER_SCAN = 1000


class WireEvent(TypedDict):
    """One event as the stores keep and return it (text masked, compact keys)."""

    id: str  # event id: the worker process's prefix and a counter
    t: float  # when it was recorded (Unix seconds, milliseconds precision)
    c: int  # error code (-1: not an int, counted in the overflow series)
    n: str  # error name
    s: int  # HTTP status
    m: str  # message
    d: Any  # detail (any JSON value)
    p: str | None  # route template
    mt: str | None  # HTTP method
    w: str  # worker id
    rid: str | None  # the request's id (X-Request-ID), when known
    tid: str | None  # the request's W3C trace id, when known


def encode_field(code: int, status: int) -> str:
    """Return the stored field name of a series: ``"code:status"``."""
    if code == OVERFLOW_CODE:
        return OVERFLOW_FIELD
    return f"{code}:{status}"


def decode_field(field: str | bytes) -> SeriesKey:
    """Parse a stored series field back to ``(code, status)``."""
    text = field.decode() if isinstance(field, bytes) else field
    if text == OVERFLOW_FIELD:
        return (OVERFLOW_CODE, OVERFLOW_CODE)
    code, _, status = text.partition(":")
    return (int(code), int(status))


def _code(value: int) -> str:
    return "other" if value == OVERFLOW_CODE else str(value)


def _uncode(text: str) -> int:
    return OVERFLOW_CODE if text == "other" else int(text)


def encode_request_field(route: str, method: str, status_class: int) -> str:
    """The stored field of a request series: ``method<TAB>class<TAB>route``."""
    return f"{method}\t{status_class}\t{route}"


def decode_request_field(field: str | bytes) -> RequestKey:
    """Parse a stored request field back to ``(route, method, status class)``."""
    text = field.decode() if isinstance(field, bytes) else field
    method, status_class, route = text.split("\t", 2)
    return (route, method, int(status_class))


def encode_route_error_field(code: int, name: str, status: int, route: str, method: str) -> str:
    """The stored field of an error-by-route series (``code status method name route``)."""
    return f"{_code(code)}\t{_code(status)}\t{method}\t{name.replace(chr(9), ' ')}\t{route}"


def decode_route_error_field(field: str | bytes) -> RouteErrorKey:
    """Parse a stored error-by-route field back to ``(code, name, status, route, method)``."""
    text = field.decode() if isinstance(field, bytes) else field
    code, status, method, name, route = text.split("\t", 4)
    return (_uncode(code), name, _uncode(status), route, method)


def decode_event(data: WireEvent | Mapping[str, Any]) -> ErrorEvent:
    """Build an :class:`ErrorEvent` from one stored (compact) event dict."""
    return ErrorEvent(
        error_code=int(data["c"]),
        error_name=str(data["n"]),
        status_code=int(data["s"]),
        message=str(data["m"]),
        detail=data.get("d"),
        path=data.get("p"),
        method=data.get("mt"),
        timestamp=datetime.fromtimestamp(float(data["t"]), timezone.utc),
        event_id=str(data["id"]),
        request_id=_text_or_none(data.get("rid")),
        trace_id=_text_or_none(data.get("tid")),
    )


def decode_exemplar(raw: str | bytes) -> dict[str, Any]:
    """A stored exemplar: ``{"r": request id, "t": trace id, "s": Sentry event id, "e": the
    error's event id, "ts": time}``.

    Only string ids and a numeric time are kept: ``{}`` for anything this library did not write.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {
        k: v for k, v in data.items() if k in ("r", "t", "s", "e") and isinstance(v, str)
    }
    ts = data.get("ts")
    if isinstance(ts, (int, float)) and not isinstance(ts, bool) and 0 <= ts <= _MAX_T:
        out["ts"] = float(ts)
    return out


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


#: The fields ``decode_event`` needs, with the JSON types it can take.
_REQUIRED: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("c", int),
    ("s", int),
    ("t", (int, float)),
    ("n", str),
    ("m", str),
    ("id", str),
)
#: Event times a reader can turn into a datetime (years 1970 to 9999).
_MAX_T = 253_402_300_799


def _valid_event(raw: str | bytes) -> WireEvent | None:
    """One stored event, or None when it is not an event this library wrote.

    Checks only what ``decode_event`` relies on (the readers decode it once, afterwards).
    """
    try:
        event = json.loads(raw)
    except ValueError:  # not JSON, or bytes that are not UTF-8
        return None
    if not isinstance(event, dict):
        return None
    for key, kind in _REQUIRED:
        value = event.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return None
    if not 0 <= event["t"] <= _MAX_T:
        return None
    return cast("WireEvent", event)


def select_events(
    newest_first: Iterable[str | bytes],
    limit: int,
    error_code: int | None,
    skipped: list[int] | None = None,
) -> list[WireEvent]:
    """Decode stored events (newest first) until *limit* of them match *error_code*.

    A filtered read looks through the newest ``max(limit, FILTER_SCAN)`` events only. An entry
    that cannot be decoded is skipped (and appended to *skipped*, by position).
    """
    out: list[WireEvent] = []
    if limit <= 0:
        return out
    scan = limit if error_code is None else max(limit, FILTER_SCAN)
    for position, raw in enumerate(itertools.islice(newest_first, scan)):
        event = _valid_event(raw)
        if event is None:
            if skipped is not None:
                skipped.append(position)
            continue
        if error_code is None or event.get("c") == error_code:
            out.append(event)
            if len(out) >= limit:
                break
    return out


class WireEncoder:
    """Turns a drained buffer into a Batch: events masked, bounded and JSON-encoded."""

    def __init__(self, config: MetricsConfig) -> None:
        """Mask with *config*'s PII patterns and cut text to its ``max_text_length``."""
        self._config = config
        self._masker = PiiMasker(config.pii_patterns, max_length=config.max_text_length)
        self._detail_items = max(64, config.max_text_length)
        # ASCII JSON: a lone surrogate in echoed text is escaped, never an encoding error later
        self._json = json.JSONEncoder(default=str, ensure_ascii=True, separators=(",", ":"))

    def batch(
        self,
        drained: Drained,
        worker_id: str,
        seq: int,
        events: list[str],
        encode_failures: int = 0,
    ) -> Batch:
        """The batch *worker_id* sends as its *seq*-th: counts, names, the newest *events*.

        *events* are the events encoded since the previous batch (the flusher's spool, see
        :meth:`event`); *encode_failures* those that could not be encoded.
        """
        config = self._config
        counts = {
            (start, code, status): n
            for start, cells in drained.buckets.items()
            for (code, status), n in cells.items()
        }
        events = events[-config.max_events :]
        cap = config.max_text_length
        requests: dict[tuple[int, str, str, int], int] = {}
        route_errors: dict[tuple[int, int, str, int, str, str], int] = {}
        for start, cells in drained.routes.items():
            for key, n in cells.items():
                if len(key) == 3:  # (route, method, status class)
                    route, method, status_class = key
                    requests[(start, route, method, status_class)] = n
                else:  # (code, name, status, route, method); names may meet once cut
                    code, name, status, route, method = key
                    error = (start, code, self._name(name), status, route, method)
                    route_errors[error] = route_errors.get(error, 0) + n
        return Batch(
            worker_id=worker_id,
            seq=seq,
            counts=counts,
            names={code: json_safe(str(name))[:cap] for code, name in drained.names.items()},
            events=events,
            dropped=drained.dropped,
            events_dropped=max(0, drained.recorded - len(events) - encode_failures)
            + encode_failures,
            series_folded=drained.folded,
            sentry_skipped=drained.sentry_skipped,
            refused=drained.refused,
            created_ms=int(time.time() * 1000),
            requests=requests,
            route_errors=route_errors,
            exemplars={
                (code, self._name(name), status, route, method): self._exemplar(ex)
                for (code, name, status, route, method), ex in drained.exemplars.items()
            },
            route_folded=drained.route_folded,
        )

    def _name(self, name: object) -> str:
        """An error name as a route series keeps it: JSON-safe, capped, without tabs."""
        text: str = json_safe(str(name))
        return text[: self._config.max_text_length].replace("\t", " ")

    def _exemplar(
        self, exemplar: tuple[str | None, str | None, str | None, str | None, float]
    ) -> str:
        """An exemplar as stored: compact JSON with the ids that are known."""
        request_id, trace_id, sentry_id, event_id, ts = exemplar
        data: dict[str, Any] = {"ts": round(ts, 3)}
        if request_id:
            data["r"] = request_id
        if trace_id:
            data["t"] = trace_id
        if sentry_id:
            data["s"] = sentry_id
        if event_id:
            data["e"] = event_id
        return self._json.encode(data)

    def event(
        self, raw: RawEvent, id_prefix: str, worker_id: str, clock_offset: float = 0.0
    ) -> str:
        """One raw event as stored: masked, cut to ``max_text_length``, compact JSON.

        *clock_offset* turns the event's time (the worker's clock) into the store's.
        """
        number, ts, code, name, status, message, detail, path, method, rid, tid = raw
        mask_text = self._masker.mask_text
        data: WireEvent = {
            "id": f"{id_prefix}{number}",
            "t": round(ts + clock_offset, 3),
            "c": code if isinstance(code, int) else OVERFLOW_CODE,
            "n": str(name)[: self._config.max_text_length],
            "s": status if isinstance(status, int) else OVERFLOW_CODE,
            "m": mask_text(str(message)),
            "d": self._bounded_detail(detail) if detail is not None else None,
            "p": mask_text(path) if path else path,
            "mt": method,
            "w": worker_id,
            "rid": rid,
            "tid": tid,
        }
        return self._json.encode(data)

    def _bounded_detail(self, detail: Any) -> Any:
        """The masked detail, or its JSON cut to ``max_text_length`` when it is too large."""
        # A detail whose JSON passes 4 x max_text_length is cut anyway: visiting more items than
        # fit there would only cost the flusher time (and hold the GIL).
        masked = self._masker.mask(detail, max_items=self._detail_items)
        if not isinstance(masked, (str, int, float, bool)):  # any container (sets included)
            text = self._json.encode(masked)
            cap = self._config.max_text_length
            if len(text) > 4 * cap:  # one event never carries a client's 100,000 ids
                return text[:cap] + " [truncated]"
        return masked
