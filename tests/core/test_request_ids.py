"""Request ids and trace ids: taken or made, sent back, kept with every error.

The outermost layer takes a valid ``X-Request-ID`` or makes one and sends it back; the
request's W3C trace id comes from the active OpenTelemetry span or its ``traceparent``. Both
reach the observers, the log line and, on request, the error body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_error_codes import BaseAppException, ErrorHandlerConfig, setup_exception_handler
from fastapi_error_codes._trace import parse_traceparent
from fastapi_error_codes.observers import HandledError, add_error_observer

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"
GENERATED = re.compile(r"[0-9a-f]{32}")


class Gone(BaseAppException):
    """A declared error, raised by hand."""


def make_app(**config: object) -> tuple[FastAPI, list[HandledError]]:
    app = FastAPI()
    setup_exception_handler(app, ErrorHandlerConfig(**config))  # type: ignore[arg-type]
    seen: list[HandledError] = []
    add_error_observer(app, lambda request, error: seen.append(error))

    @app.get("/gone")
    def gone() -> None:
        raise Gone(error_code=7410, status_code=410, message="gone")

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("boom")

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/own-id")
    def own_id() -> JSONResponse:
        return JSONResponse({}, headers={"X-Request-ID": "set-by-the-app"})

    return app, seen


def test_a_valid_request_id_is_echoed_and_kept_with_the_error() -> None:
    app, seen = make_app()
    with TestClient(app) as client:
        response = client.get("/gone", headers={"X-Request-ID": "abc-123:x/y=+@."})
    assert response.headers["x-request-id"] == "abc-123:x/y=+@."
    assert seen[0].request_id == "abc-123:x/y=+@."
    assert "request_id" not in response.json()  # the body stays the specification's


@pytest.mark.parametrize("sent", ["", "a" * 65, "has space", 'quote"', "ünï"])
def test_an_invalid_request_id_is_replaced_by_a_new_one(sent: str) -> None:
    app, seen = make_app()
    with TestClient(app) as client:
        response = client.get("/gone", headers={"X-Request-ID": sent.encode()})
    new = response.headers["x-request-id"]
    assert GENERATED.fullmatch(new)
    assert seen[0].request_id == new


def test_every_response_gets_an_id_and_ids_differ() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        ids = {client.get("/ok").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20 and all(GENERATED.fullmatch(i) for i in ids)


def test_an_id_the_app_sets_itself_is_not_doubled() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/own-id", headers={"X-Request-ID": "mine"})
    assert response.headers.get_list("x-request-id") == ["set-by-the-app"]


def test_the_header_name_is_configurable_and_none_turns_ids_off() -> None:
    app, seen = make_app(request_id_header="X-Correlation-ID")
    with TestClient(app) as client:
        response = client.get("/gone", headers={"X-Correlation-ID": "corr-1"})
    assert response.headers["x-correlation-id"] == "corr-1"
    assert "x-request-id" not in response.headers
    assert seen[0].request_id == "corr-1"

    app, seen = make_app(request_id_header=None)
    with TestClient(app) as client:
        response = client.get("/gone", headers={"X-Request-ID": "ignored"})
    assert "x-request-id" not in response.headers
    assert seen[0].request_id is None


@pytest.mark.parametrize("header", ["", "X Request", "x" * 65, 3])
def test_a_bad_header_name_is_refused_at_configuration(header: object) -> None:
    with pytest.raises(ValueError, match="request_id_header must be a header name"):
        ErrorHandlerConfig(request_id_header=header)  # type: ignore[arg-type]


@pytest.mark.parametrize("response_format", ["json", "problem+json"])
def test_ids_in_the_body_on_request(response_format: str) -> None:
    app, _ = make_app(request_id_in_body=True, response_format=response_format)
    with TestClient(app) as client:
        body = client.get("/gone", headers={"traceparent": TRACEPARENT}).json()
        plain = client.get("/gone", headers={"X-Request-ID": "r1"}).json()
    assert GENERATED.fullmatch(body["request_id"]) and body["trace_id"] == TRACE
    assert plain["request_id"] == "r1" and "trace_id" not in plain


def test_the_log_line_carries_both_ids(caplog: pytest.LogCaptureFixture) -> None:
    app, seen = make_app()
    with (
        caplog.at_level(logging.INFO, "fastapi_error_codes.errors"),
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        client.get("/gone", headers={"X-Request-ID": "r-410", "traceparent": TRACEPARENT})
        client.get("/fail", headers={"X-Request-ID": "r-500"})
    records = [r for r in caplog.records if r.name == "fastapi_error_codes.errors"]
    assert [(r.request_id, r.trace_id) for r in records] == [  # type: ignore[attr-defined]
        ("r-410", TRACE),
        ("r-500", None),
    ]
    assert records[0].getMessage().endswith("request_id=r-410")
    assert [(e.request_id, e.trace_id) for e in seen] == [("r-410", TRACE), ("r-500", None)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACEPARENT, TRACE),
        (f"01-{TRACE}-b7ad6b7169203331-01-future", TRACE),  # later versions may add fields
        (f"00-{TRACE}-b7ad6b7169203331-01-extra", None),  # version 00 has exactly four
        (f"ff-{TRACE}-b7ad6b7169203331-01", None),
        ("00-" + "0" * 32 + "-b7ad6b7169203331-01", None),
        (f"00-{TRACE}-" + "0" * 16 + "-01", None),
        (TRACEPARENT.upper(), None),
        ("garbage", None),
    ],
)
def test_traceparent_parsing(value: str, expected: str | None) -> None:
    assert parse_traceparent(value) == expected


# --- OpenTelemetry -----------------------------------------------------------------------------


def traced_app() -> tuple[ASGIApp, list[HandledError], Callable[[], list[Any]]]:
    """An app inside a server span per request, on a real tracer provider, as OpenTelemetry's
    FastAPI instrumentation puts it (outside Starlette's ServerErrorMiddleware); returns it,
    its observed errors and the finished spans."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    app, seen = make_app()

    async def server_span(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        with tracer.start_as_current_span("request", kind=trace.SpanKind.SERVER):
            await app(scope, receive, send)

    return server_span, seen, lambda: list(exporter.get_finished_spans())


def test_the_active_span_gives_the_trace_id_and_is_marked_with_the_error() -> None:
    from opentelemetry.trace import StatusCode

    app, seen, finished = traced_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/gone", headers={"traceparent": TRACEPARENT})
        client.get("/fail")
    spans = finished()
    # The active span's trace wins over the header (this middleware starts a new trace).
    assert [e.trace_id for e in seen] == [format(s.context.trace_id, "032x") for s in spans]
    assert seen[0].trace_id != TRACE
    gone, fail = spans
    assert gone.attributes["fastapi_error_codes.error_code"] == 7410
    assert gone.attributes["fastapi_error_codes.error_name"] == "Gone"
    assert "error.type" not in gone.attributes  # a 4xx is not a server span's error
    assert gone.status.status_code is StatusCode.UNSET
    assert fail.attributes["fastapi_error_codes.error_code"] == 500
    assert fail.attributes["error.type"] == "InternalServerError"
    assert fail.status.status_code is StatusCode.ERROR


def test_a_response_object_the_app_reuses_never_carries_another_requests_id() -> None:
    from fastapi.responses import PlainTextResponse

    app, _ = make_app()
    shared = PlainTextResponse("ok")  # a module-level response, sent again and again

    @app.get("/shared")
    def reuse() -> PlainTextResponse:
        return shared

    with TestClient(app) as client:
        first = client.get("/shared", headers={"X-Request-ID": "alice-secret-id"})
        second = client.get("/shared")
        third = client.get("/shared", headers={"X-Request-ID": "carol"})
    assert first.headers["x-request-id"] == "alice-secret-id"
    assert GENERATED.fullmatch(second.headers["x-request-id"])
    assert third.headers["x-request-id"] == "carol"


def test_a_request_leaves_no_reference_cycle_behind() -> None:
    import gc

    from fastapi_error_codes._sent import Sent

    app, _ = make_app()
    with TestClient(app) as client:
        client.get("/ok")
        gc.collect()
        gc.disable()
        try:
            before = sum(isinstance(o, Sent) for o in gc.get_objects())  # other tests' leftovers
            for _ in range(50):
                client.get("/ok")
                client.get("/gone")
            alive = sum(isinstance(o, Sent) for o in gc.get_objects()) - before
        finally:
            gc.enable()
    assert alive == 0  # freed by reference counting, not left to the cyclic collector
