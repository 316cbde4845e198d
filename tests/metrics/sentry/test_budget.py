"""The Sentry capture budget: per error code and interval, checked before any sentry-sdk work.

Real sentry-sdk, the capturing transport, real FastAPI apps. Time is a fake monotonic clock
handed to the integration, so interval rollovers need no sleeping. "Built" means sentry-sdk
turned an exception into an event (``exceptions_from_error_tuple``: frames, locals, source
lines — the expensive part); a skipped capture must build nothing and send nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
import sentry_sdk.client
import sentry_sdk.utils
from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.testclient import TestClient
from sentry_sdk.integrations.logging import EventHandler, LoggingIntegration, unignore_logger
from starlette.websockets import WebSocketDisconnect

from fastapi_error_codes import BaseAppException, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration
from fastapi_error_codes.metrics.sentry import SKIPPED_FIELD, CaptureBudget
from fastapi_error_codes.metrics.sentry import integration as sentry_module
from fastapi_error_codes.observers import add_error_observer
from tests.metrics.sentry._helpers import capture_into
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport, reset_sentry


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StormUnavailable(BaseAppException):
    """The declared 5xx of the storm."""


class GatewayFailed(BaseAppException):
    """Another declared 5xx: a budget of its own."""


class NotThere(BaseAppException):
    """A declared 4xx."""


STORM_CODE = 5301
OTHER_CODE = 5302


def make_app(integration: SentryIntegration | None) -> FastAPI:
    """The library's handlers plus the Sentry observer, as setup_metrics wires them."""
    app = FastAPI()
    setup_exception_handler(app)
    if integration is not None:
        add_error_observer(app, integration.observe)

    @app.get("/storm")
    async def storm() -> None:
        raise StormUnavailable(error_code=STORM_CODE, status_code=503, message="Storm")

    @app.get("/other")
    async def other() -> None:
        raise GatewayFailed(error_code=OTHER_CODE, status_code=502, message="Gateway")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database exploded")

    @app.get("/bad-value")
    async def bad_value() -> None:
        raise ValueError("bad value")

    @app.get("/missing")
    async def missing() -> None:
        raise NotThere(error_code=4301, status_code=404, message="Not there")

    return app


MakeBudgeted = Callable[..., tuple[SentryIntegration, FakeClock]]


@pytest.fixture
def make_budgeted(transport: CapturingTransport) -> MakeBudgeted:
    """Factory: an initialised integration on a fake clock, sending into ``transport``."""

    def make(**config: Any) -> tuple[SentryIntegration, FakeClock]:
        clock = FakeClock()
        cfg = MetricsConfig.testing(sentry_enabled=True, sentry_dsn=FAKE_DSN, **config)
        integration = SentryIntegration(cfg, init_options={"transport": transport}, clock=clock)
        integration.initialize()
        return integration, clock

    return make


class Counts:
    """How often sentry-sdk built an event from an exception, and events reaching the client."""

    def __init__(self) -> None:
        self.built = 0
        self.client_events = 0
        self.logging_emits = 0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    found = Counts()
    build = sentry_sdk.utils.exceptions_from_error_tuple

    def counting_build(*args: Any, **kwargs: Any) -> Any:
        found.built += 1
        return build(*args, **kwargs)

    capture = sentry_sdk.client._Client.capture_event

    def counting_capture(self: Any, *args: Any, **kwargs: Any) -> Any:
        found.client_events += 1
        return capture(self, *args, **kwargs)

    emit = EventHandler.emit

    def counting_emit(self: Any, record: logging.LogRecord) -> Any:
        if record.name == "fastapi_error_codes.errors":
            found.logging_emits += 1
        return emit(self, record)

    # event_from_exception (imported by name into every integration) calls this module global.
    monkeypatch.setattr(sentry_sdk.utils, "exceptions_from_error_tuple", counting_build)
    monkeypatch.setattr(sentry_sdk.client._Client, "capture_event", counting_capture)
    monkeypatch.setattr(EventHandler, "emit", counting_emit)
    return found


@pytest.fixture
def client_for() -> Iterator[Callable[[FastAPI], TestClient]]:
    opened: list[TestClient] = []

    def open_(app: FastAPI) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield open_
    for client in opened:
        client.__exit__(None, None, None)


def storm(client: TestClient, path: str, n: int) -> None:
    for _ in range(n):
        assert client.get(path).status_code >= 500


def codes(transport: CapturingTransport) -> list[str]:
    return [e["tags"]["error_code"] for e in transport.events]


# --- the budget through a real app -------------------------------------------------------------


def test_a_storm_of_one_code_sends_the_budget_per_interval(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, clock = make_budgeted(sentry_capture_budget=3, sentry_budget_interval_s=60)
    client = client_for(make_app(integration))

    storm(client, "/storm", 10)
    assert codes(transport) == [str(STORM_CODE)] * 3
    assert integration.skipped == 7

    clock.advance(59.9)  # still the same interval
    storm(client, "/storm", 5)
    assert len(transport.events) == 3
    assert integration.skipped == 12

    clock.advance(0.1)  # the interval is over: a new budget of 3
    storm(client, "/storm", 10)
    assert len(transport.events) == 6
    assert integration.skipped == 19

    clock.advance(600)  # long quiet: still 3, not 3 per elapsed interval
    storm(client, "/storm", 10)
    assert len(transport.events) == 9
    assert integration.skipped == 26


def test_the_next_capture_reports_how_many_were_skipped(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, clock = make_budgeted(sentry_capture_budget=2, sentry_budget_interval_s=10)
    client = client_for(make_app(integration))
    storm(client, "/storm", 9)  # 2 captured, 7 skipped
    clock.advance(10)
    storm(client, "/storm", 2)  # both captured: the first reports the 7

    reported = [e["contexts"]["error"][SKIPPED_FIELD] for e in transport.events]
    assert reported == [0, 0, 7, 0]
    tags = [e["tags"].get(SKIPPED_FIELD) for e in transport.events]
    assert tags == [None, None, "7", None]  # the tag only where something was skipped
    third = transport.events[2]
    assert third["tags"]["error_code"] == str(STORM_CODE)
    assert third["contexts"]["error"]["route"] == "/storm"
    assert third["fingerprint"] == ["fastapi-error-codes", str(STORM_CODE)]


def test_each_code_has_its_own_budget(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=2)
    client = client_for(make_app(integration))
    storm(client, "/storm", 6)
    storm(client, "/other", 3)
    storm(client, "/storm", 2)
    assert codes(transport) == [str(STORM_CODE)] * 2 + [str(OTHER_CODE)] * 2
    assert integration.skipped == 4 + 1 + 2


def test_unexpected_exceptions_have_a_budget_per_type(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    # All unexpected exceptions answer code 500, but Sentry keeps two bugs apart (stack
    # grouping): a storm of one must not hide the first occurrences of the other.
    integration, _ = make_budgeted(sentry_capture_budget=2)
    client = client_for(make_app(integration))
    storm(client, "/boom", 5)
    storm(client, "/bad-value", 5)
    types = [e["exception"]["values"][-1]["type"] for e in transport.events]
    assert types == ["RuntimeError", "RuntimeError", "ValueError", "ValueError"]
    assert codes(transport) == ["500"] * 4
    assert integration.skipped == 6


def test_4xx_captures_are_budgeted_too_breadcrumbs_are_not_captures(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=2, sentry_capture_4xx=True)
    client = client_for(make_app(integration))
    for _ in range(5):
        assert client.get("/missing").status_code == 404
    assert codes(transport) == ["4301", "4301"]
    assert [e["level"] for e in transport.events] == ["warning", "warning"]
    assert integration.skipped == 3


def test_zero_means_no_budget(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=0)
    client = client_for(make_app(integration))
    storm(client, "/storm", 25)
    storm(client, "/boom", 5)
    assert len(transport.events) == 30
    assert integration.skipped == 0
    # Without a budget nothing is ever skipped, so there is nothing to report.
    assert all(SKIPPED_FIELD not in e["contexts"]["error"] for e in transport.events)
    assert all(SKIPPED_FIELD not in e["tags"] for e in transport.events)


def test_the_default_is_ten_per_code_per_minute(
    transport: CapturingTransport, client_for: Callable[[FastAPI], TestClient]
) -> None:
    config = MetricsConfig(sentry_enabled=True, sentry_dsn=FAKE_DSN)
    assert (config.sentry_capture_budget, config.sentry_budget_interval_s) == (10, 60)
    clock = FakeClock()
    integration = SentryIntegration(config, init_options={"transport": transport}, clock=clock)
    integration.initialize()
    client = client_for(make_app(integration))
    storm(client, "/storm", 15)
    assert len(transport.events) == 10
    clock.advance(60)
    storm(client, "/storm", 15)
    assert len(transport.events) == 20
    assert integration.skipped == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sentry_capture_budget", -1),
        ("sentry_capture_budget", 1_000_001),
        ("sentry_capture_budget", 2.5),
        ("sentry_capture_budget", True),
        ("sentry_capture_budget", "10"),
        ("sentry_capture_budget", None),
        ("sentry_budget_interval_s", 0),
        ("sentry_budget_interval_s", -60),
        ("sentry_budget_interval_s", 86_401),
        ("sentry_budget_interval_s", 0.5),
        ("sentry_budget_interval_s", False),
        ("sentry_budget_interval_s", "60"),
    ],
)
def test_bad_budget_config_is_a_value_error(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        MetricsConfig(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sentry_capture_budget", 0),
        ("sentry_capture_budget", 1_000_000),
        ("sentry_budget_interval_s", 1),
        ("sentry_budget_interval_s", 86_400),
    ],
)
def test_budget_config_bounds_are_accepted(field: str, value: int) -> None:
    assert getattr(MetricsConfig(**{field: value}), field) == value  # type: ignore[arg-type]


# --- what a skipped capture costs ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/storm", "/boom"])
def test_no_event_is_built_for_a_skipped_capture(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    counts: Counts,
    client_for: Callable[[FastAPI], TestClient],
    path: str,
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=2)
    client = client_for(make_app(integration))
    storm(client, path, 2)
    # One build and one client event per capture: ours. Neither the logging integration (the
    # handler logs every 5xx with its traceback) nor, for an unexpected exception that
    # Starlette re-raises, the ASGI middleware builds a second one.
    assert (counts.built, counts.client_events, len(transport.events)) == (2, 2, 2)
    assert counts.logging_emits == 0

    storm(client, path, 50)  # the budget is spent
    assert (counts.built, counts.client_events, len(transport.envelopes)) == (2, 2, 2)
    assert integration.skipped == 50


def test_a_skipped_capture_never_calls_sentry_sdk(
    make_budgeted: MakeBudgeted, monkeypatch: pytest.MonkeyPatch
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=1)
    app = make_app(integration)
    with TestClient(app) as client:
        storm(client, "/storm", 1)

        class Untouchable:
            def __getattr__(self, name: str) -> Any:
                raise AssertionError(f"sentry_sdk.{name} used for a skipped capture")

        monkeypatch.setattr(integration, "_sdk", Untouchable())
        storm(client, "/storm", 3)
    assert integration.skipped == 3
    assert integration.failures == 0


# --- the logging integration's double capture -------------------------------------------------


def test_the_handler_log_line_is_no_second_event(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    counts: Counts,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=0)
    assert sentry_sdk.get_client().get_integration("logging") is not None  # on by default
    client = client_for(make_app(integration))
    storm(client, "/storm", 1)
    (event,) = transport.events
    assert counts.logging_emits == 0 and counts.built == 1
    assert "logger" not in event  # ours, not a log record's
    assert event["contexts"]["error"]["route"] == "/storm"
    assert event["tags"]["error_code"] == str(STORM_CODE)


def test_without_the_fix_the_log_line_was_built_first_and_won_the_dedupe(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    counts: Counts,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    # What initialize() prevents (and what this module's tests would catch if it came back):
    # the handler logs the 5xx with exc_info *before* notifying observers, the logging
    # integration builds an event from it, and ours is then built only to be dropped by dedupe.
    integration, _ = make_budgeted(sentry_capture_budget=1)
    unignore_logger("fastapi_error_codes.errors")
    client = client_for(make_app(integration))
    storm(client, "/storm", 3)
    assert counts.logging_emits == 3
    assert counts.built == 4  # 3 log records + our one capture (dropped as a duplicate)
    assert [e.get("logger") for e in transport.events] == ["fastapi_error_codes.errors"] * 3


class LogsLikeUvicorn:
    """The server around the app: logs an exception the app raised, as uvicorn does."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application\n", exc_info=exc
            )
            raise


def test_the_server_log_of_a_reraised_exception_is_no_second_event(
    make_budgeted: MakeBudgeted, transport: CapturingTransport, counts: Counts
) -> None:
    # Starlette re-raises an unexpected exception after our handler answered it; uvicorn logs
    # it with its traceback. Captured or skipped by us, that record must build no event.
    integration, _ = make_budgeted(sentry_capture_budget=2)
    with TestClient(LogsLikeUvicorn(make_app(integration)), raise_server_exceptions=False) as c:
        storm(c, "/boom", 6)
    assert counts.built == 2
    assert len(transport.events) == 2
    assert all("logger" not in e for e in transport.events)
    assert integration.skipped == 4

    # The same logger with an exception we never saw still reaches Sentry.
    try:
        raise KeyError("not ours")
    except KeyError:
        logging.getLogger("uvicorn.error").exception("something else")
    assert transport.events[-1]["logger"] == "uvicorn.error"
    assert counts.built == 3


def test_a_skipped_exception_logged_where_no_filter_reaches_is_dropped_unsent(
    make_budgeted: MakeBudgeted, transport: CapturingTransport, counts: Counts
) -> None:
    # The fallback for an SDK whose logging handler cannot take our filter: the event of an
    # exception the budget skipped is dropped before it is serialised, masked and sent.
    integration, _ = make_budgeted(sentry_capture_budget=1)
    logging_integration = sentry_sdk.get_client().get_integration("logging")
    filters = logging_integration._handler.filters
    saved = list(filters)
    filters.clear()
    try:
        with TestClient(LogsLikeUvicorn(make_app(integration)), raise_server_exceptions=False) as c:
            storm(c, "/boom", 3)
    finally:
        filters[:] = saved
    assert len(transport.events) == 1
    assert integration.skipped == 2
    assert counts.built == 1 + 3  # ours, then one per server log line: built, never sent


def test_an_unhooked_asgi_recapture_of_a_skipped_exception_is_dropped_unsent(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    counts: Counts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fallback for an SDK whose ASGI middleware offers no hook: its re-capture of an
    # exception the budget skipped is built, then dropped before it is serialised and sent.
    from sentry_sdk.integrations import asgi

    def unhooked(self: Any, exc: Exception) -> None:
        asgi._capture_exception(exc=exc, mechanism_type=self.mechanism_type)

    integration, _ = make_budgeted(sentry_capture_budget=1)
    monkeypatch.setattr(asgi.SentryAsgiMiddleware, "_capture_request_exception", unhooked)
    with TestClient(make_app(integration), raise_server_exceptions=False) as client:
        storm(client, "/boom", 3)
    assert len(transport.events) == 1
    assert "logger" not in transport.events[0]
    assert transport.events[0]["tags"]["error_code"] == "500"
    assert integration.skipped == 2
    assert counts.built == 1 + 3  # ours, then the middleware's, one per request: never sent


def test_other_loggers_still_reach_sentry(
    make_budgeted: MakeBudgeted, transport: CapturingTransport
) -> None:
    make_budgeted()
    logging.getLogger("tests.metrics.sentry.budget.app").error("the app's own error")
    (event,) = transport.events
    assert event["logger"] == "tests.metrics.sentry.budget.app"


def test_an_app_that_runs_sentry_itself_keeps_its_logging_events(
    transport: CapturingTransport,
    counts: Counts,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    # Our integration is off: the app's own Sentry setup decides, we silence nothing. (With
    # sentry-sdk's defaults its Starlette integration captures the 503 first; the handler's log
    # line still reaches the logging integration, which dedupe then drops.)
    sentry_sdk.init(dsn=FAKE_DSN, transport=transport)
    integration = SentryIntegration(MetricsConfig.testing())
    integration.initialize()
    assert not integration.initialized
    client = client_for(make_app(integration))
    storm(client, "/storm", 2)
    assert counts.logging_emits == 2
    assert len(transport.events) == 2
    assert integration.skipped == 0

    reset_sentry()  # now without the Starlette capture: the log line is the event
    sentry_sdk.init(
        dsn=FAKE_DSN,
        transport=transport,
        default_integrations=False,
        integrations=[LoggingIntegration()],
    )
    storm(client, "/storm", 1)
    assert transport.events[-1]["logger"] == "fastapi_error_codes.errors"


# --- skipped counts and the on_skipped hook -----------------------------------------------------


def test_on_skipped_is_called_once_per_skip(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, clock = make_budgeted(sentry_capture_budget=2)
    assert integration.on_skipped is None
    calls: list[int] = []
    integration.on_skipped = calls.append
    client = client_for(make_app(integration))
    storm(client, "/storm", 5)
    storm(client, "/other", 4)
    clock.advance(60)
    storm(client, "/storm", 1)
    assert calls == [1] * 5
    assert sum(calls) == integration.skipped == 5
    assert len(transport.events) == 5


def test_a_failing_on_skipped_is_counted_never_raised(
    make_budgeted: MakeBudgeted,
    transport: CapturingTransport,
    client_for: Callable[[FastAPI], TestClient],
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=1)

    def broken(n: int) -> None:
        raise RuntimeError("store gone")

    integration.on_skipped = broken
    client = client_for(make_app(integration))
    storm(client, "/storm", 4)
    assert integration.skipped == 3
    assert integration.failures == 3
    assert len(transport.events) == 1


def test_a_forked_worker_starts_with_a_fresh_budget(
    make_budgeted: MakeBudgeted, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    integration, _ = make_budgeted(sentry_capture_budget=1)
    from tests.metrics.sentry.test_sentry import fake_request, handled

    error = handled(StormUnavailable(error_code=STORM_CODE, status_code=503, message="m"))
    for _ in range(3):
        integration.observe(fake_request(), error)
    assert integration.skipped == 2
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 100_000)  # as seen in a forked worker
    integration.initialize()
    assert integration.skipped == 0
    assert integration.budget.take(STORM_CODE) == 0  # the child's first capture goes


# --- the public capture API is the app's explicit choice: not budgeted -------------------------


def test_the_capture_api_is_not_budgeted(
    make_budgeted: MakeBudgeted, transport: CapturingTransport
) -> None:
    integration, _ = make_budgeted(sentry_capture_budget=1)
    for _ in range(5):
        integration.capture_event(STORM_CODE, "StormUnavailable", "explicit", status_code=503)
        integration.capture_exception(
            StormUnavailable(error_code=STORM_CODE, status_code=503, message="explicit")
        )
    assert len(transport.events) == 10
    assert integration.skipped == 0
    assert all(SKIPPED_FIELD not in e["contexts"].get("error", {}) for e in transport.events)


# --- through setup_exception_handler(metrics_config=...), as users wire it ---------------------


def test_budget_through_the_wired_app(
    transport: CapturingTransport, client_for: Callable[[FastAPI], TestClient]
) -> None:
    config = MetricsConfig.testing(
        sentry_enabled=True,
        sentry_dsn=FAKE_DSN,
        sentry_capture_budget=2,
        sentry_budget_interval_s=30,
        prometheus_enabled=False,
        dashboard_enabled=False,
    )
    app = make_app(None)
    setup_exception_handler(app, metrics_config=config)
    sentry: SentryIntegration = app.state.metrics_sentry
    clock = FakeClock()
    sentry.budget.clock = clock
    client = client_for(app)
    capture_into(transport)
    storm(client, "/storm", 6)
    storm(client, "/boom", 3)
    clock.advance(30)
    storm(client, "/storm", 1)
    assert codes(transport) == [str(STORM_CODE)] * 2 + ["500"] * 2 + [str(STORM_CODE)]
    assert transport.events[-1]["contexts"]["error"][SKIPPED_FIELD] == 4
    assert sentry.skipped == 5
    app.state.metrics_collector.flush(2.0)
    # The fleet store still counts every error: the budget only thins Sentry's examples, and
    # what it skipped is a fleet-wide counter (fastapi_errors_sentry_skipped_total).
    view = app.state.metrics_collector.store.read()
    assert view.total == 10
    assert view.sentry_skipped == 5


# --- CaptureBudget on its own ---------------------------------------------------------------------


def test_capture_budget_windows_and_reports() -> None:
    clock = FakeClock()
    budget = CaptureBudget(2, 5, clock)
    assert [budget.take("a") for _ in range(4)] == [0, 0, None, None]
    assert budget.take("b") == 0
    clock.advance(5)
    assert [budget.take("a") for _ in range(3)] == [2, 0, None]
    assert budget.skipped == 3
    assert not budget.unbounded
    unbounded = CaptureBudget(0, 5, clock)
    assert unbounded.unbounded
    assert {unbounded.take("a") for _ in range(100)} == {0}
    assert unbounded.skipped == 0


def test_capture_budget_tracks_a_bounded_number_of_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sentry_module, "_MAX_BUDGET_KEYS", 4)
    clock = FakeClock()
    budget = CaptureBudget(1, 10, clock)
    for code in range(4):
        assert budget.take(code) == 0
    clock.advance(10)  # every window ended: the next new code prunes them
    assert budget.take(99) == 0
    assert len(budget._windows) == 1
    for code in range(3):
        budget.take(code)
    assert budget.take(100) == 0  # all four live: cleared rather than grown
    assert len(budget._windows) <= 4


def test_a_websocket_5xx_still_reaches_sentry(
    make_budgeted: MakeBudgeted, transport: CapturingTransport
) -> None:
    """Observers never see a WebSocket's error: its log line is its only report to Sentry."""
    integration, _ = make_budgeted()
    app = make_app(integration)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise HTTPException(status_code=503, detail="down")

    client = TestClient(app)
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as socket:
        socket.receive_text()
    assert integration.flush(2.0)
    loggers = [e.get("logger") for e in transport.events]
    assert loggers == ["fastapi_error_codes"]  # the parent logger is not silenced
