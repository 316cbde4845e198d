"""SentryIntegration with the real sentry-sdk and a capturing transport: policy and masking."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import sentry_sdk
from fastapi import FastAPI, HTTPException
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from sentry_sdk.integrations.starlette import StarletteIntegration
from starlette.requests import Request

from fastapi_error_codes import BaseAppException, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration
from fastapi_error_codes.metrics.pii import MASK
from fastapi_error_codes.metrics.sentry import INSTALL_HINT, describe_exception, fingerprint_for
from fastapi_error_codes.observers import HandledError, add_error_observer
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport

MakeSentry = Callable[..., SentryIntegration]

EMAIL = "leaky.user@example.org"
CARD = "4111 1111 1111 1111"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFreSJ9.c2lnbmF0dXJlLXNlY3JldA"
SECRETS = {
    "pw_local": "pw-local-7f3a91",
    "pw_body": "pw-body-2b8c44",
    "api_key_header": "hdr-apikey-5d1e07",
    "cookie": "cookie-sess-9a4b12",
    "bearer_header": "hdr-bearer-3c6f58",
    "bearer_message": "msg-bearer-8e2d90",
    "query_token": "qs-token-6b7a35",
    "crumb_token": "crumb-token-1f9c63",
    "crumb_pw": "crumb-pw-4e8b27",
    "tag_session": "tag-session-7c2a81",
    "extra_secret": "extra-secret-0d5f46",
    "log_secret": "log-secret-2a9e13",
    "raw_header": "raw-hdr-key-9f0b32",
}
RAW_STRINGS = [*SECRETS.values(), EMAIL, CARD, CARD.replace(" ", ""), JWT]


class Unavailable(BaseAppException):
    """A declared 5xx."""


class Missing(BaseAppException):
    """A declared 4xx."""


def unavailable() -> Unavailable:
    return Unavailable(error_code=5003, status_code=503, message="Payment backend down")


def missing() -> Missing:
    return Missing(error_code=4004, status_code=404, message="No such order")


def make_app(integration: SentryIntegration | None, *, observe: bool = True) -> FastAPI:
    """An app with the library's handlers and the Sentry observer, like setup_metrics does."""
    app = FastAPI()
    setup_exception_handler(app)
    if integration is not None and observe:
        add_error_observer(app, integration.observe)

    @app.get("/unavailable")
    def get_unavailable() -> None:
        raise unavailable()

    @app.get("/missing")
    def get_missing() -> None:
        raise missing()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database exploded")

    @app.get("/http503")
    def http503() -> None:
        raise HTTPException(status_code=503, detail="try later")

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


def fake_request(app: FastAPI | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/orders/7",
        "route": APIRoute("/orders/{order_id}", lambda order_id: None),
        "headers": [],
        "query_string": b"",
    }
    if app is not None:
        scope["app"] = app
    return Request(scope)


def handled(exc: BaseAppException | Exception, **over: Any) -> HandledError:
    info = describe_exception(exc)
    assert info is not None
    values: dict[str, Any] = {
        "error_code": info[0],
        "error_name": info[1],
        "status_code": info[2],
        "message": "msg",
        "detail": None,
        "exception": exc,
    }
    values.update(over)
    return HandledError(**values)


# --- optional dependency and disabled modes -----------------------------------------------


def _run_without_sentry_sdk(code: str) -> subprocess.CompletedProcess[str]:
    prelude = "import sys\nsys.modules['sentry_sdk'] = None  # makes `import sentry_sdk` fail\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def test_module_imports_without_sentry_sdk() -> None:
    result = _run_without_sentry_sdk(
        """
        import fastapi_error_codes.metrics.sentry as s
        from fastapi_error_codes.metrics import MetricsConfig
        off = s.SentryIntegration(MetricsConfig())
        assert not off.enabled
        off.initialize()
        assert off.capture_event(1, "E", "m") is None
        assert off.flush() is True
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_enabled_without_sentry_sdk_is_one_clear_error() -> None:
    result = _run_without_sentry_sdk(
        """
        from fastapi_error_codes.metrics import MetricsConfig
        from fastapi_error_codes.metrics.sentry import SentryIntegration
        try:
            SentryIntegration(MetricsConfig(sentry_enabled=True, sentry_dsn="https://k@h/1"))
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert INSTALL_HINT in result.stdout
    assert "pip install 'fastapi-error-codes[sentry]'" in result.stdout


@pytest.mark.parametrize(
    "config",
    [
        MetricsConfig.testing(),
        MetricsConfig.testing(sentry_enabled=False, sentry_dsn=FAKE_DSN),
    ],
)
def test_disabled_is_a_no_op(config: MetricsConfig) -> None:
    integration = SentryIntegration(config)
    assert not integration.enabled
    integration.initialize()
    assert not integration.initialized
    assert not sentry_sdk.get_client().is_active()
    assert integration.capture_event(5003, "Unavailable", "m") is None
    assert integration.capture_exception(RuntimeError("x")) is None
    integration.add_breadcrumb("c", "m")
    integration.configure_scope({"tags": {"a": "b"}})
    integration.observe(fake_request(), handled(unavailable()))
    assert integration.flush(timeout=0.1) is True


def test_enabled_without_a_dsn_is_refused_by_the_config() -> None:
    # Sentry on without a DSN used to be a silent no-op; the config now refuses it.
    with pytest.raises(ValueError, match="sentry_dsn is required when sentry_enabled is True"):
        MetricsConfig.testing(sentry_enabled=True)
    with pytest.raises(ValueError, match="sentry_dsn is required"):
        MetricsConfig.testing(sentry_enabled=True, sentry_dsn="")


# --- lifecycle ------------------------------------------------------------------------------


def test_initialize_once_per_process(make_sentry: MakeSentry) -> None:
    integration = make_sentry()
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert integration.enabled and integration.initialized
    integration.initialize()
    assert sentry_sdk.get_client() is client


def test_initialize_again_after_fork(
    make_sentry: MakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    integration = make_sentry()
    client = sentry_sdk.get_client()
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 100_000)  # as seen in a forked worker
    assert not integration.initialized
    assert integration.capture_event(1, "E", "m") is None  # not started in this worker yet
    integration.initialize()
    assert integration.initialized
    assert sentry_sdk.get_client() is not client


def test_environment_and_send_default_pii(make_sentry: MakeSentry) -> None:
    make_sentry(sentry_environment="staging")
    options = sentry_sdk.get_client().options
    assert options["environment"] == "staging"
    assert not options["send_default_pii"]


# --- the spec's API -------------------------------------------------------------------------


def test_capture_event_tags_fingerprint_and_masks(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    event_id = integration.capture_event(
        5003,
        "Unavailable",
        f"backend down for {EMAIL}",
        status_code=503,
        detail={"password": SECRETS["pw_body"], "order": 7},
    )
    assert isinstance(event_id, str) and len(event_id) == 32
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["tags"]["error_code"] == "5003"
    assert event["tags"]["error_name"] == "Unavailable"
    assert event["tags"]["status_code"] == "503"
    assert event["fingerprint"] == ["fastapi-error-codes", "5003"]
    assert event["contexts"]["error"]["detail"] == {"password": MASK, "order": 7}
    assert EMAIL not in transport.dump()
    assert SECRETS["pw_body"] not in transport.dump()


def test_capture_exception_reads_code_from_the_exception(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    try:
        raise unavailable()
    except Unavailable as exc:
        event_id = integration.capture_exception(exc, detail={"api_key": "k-1"})
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["tags"] == {
        "error_code": "5003",
        "error_name": "Unavailable",
        "status_code": "503",
    }
    assert event["fingerprint"] == ["fastapi-error-codes", "5003"]
    assert event["contexts"]["error"]["detail"] == {"api_key": MASK}


def test_unexpected_exception_keeps_stack_grouping(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    integration.capture_exception(KeyError("x"))
    (event,) = transport.events
    assert event["tags"]["error_code"] == "500"
    assert event["tags"]["error_name"] == "InternalServerError"
    assert event["fingerprint"] == ["{{ default }}", "500"]


def test_breadcrumbs_and_scope_are_masked(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    integration.add_breadcrumb(
        "auth",
        f"login {EMAIL} token={SECRETS['crumb_token']}",
        level="warning",
        data={"password": SECRETS["crumb_pw"], "attempt": 2},
    )
    integration.configure_scope(
        {
            "tags": {"session": SECRETS["tag_session"], "tenant": "acme"},
            "user": {"id": 7, "email": EMAIL},
            "extra": {"note": f"card {CARD}"},
            "contexts": {"payment": {"card_number": CARD, "amount": 5}},
            "level": "error",
            "loose": {"secret": SECRETS["extra_secret"]},
        }
    )
    integration.capture_event(5003, "Unavailable", "boom", status_code=503)
    (event,) = transport.events
    crumbs = [c for c in event["breadcrumbs"]["values"] if c.get("category") == "auth"]
    assert crumbs == [
        {
            "category": "auth",
            "message": "login ***@***.*** token=***",
            "level": "warning",
            "data": {"password": MASK, "attempt": 2},
            "timestamp": crumbs[0]["timestamp"],
            "type": "default",
        }
    ] or crumbs[0]["data"] == {"password": MASK, "attempt": 2}
    assert event["tags"]["session"] == MASK
    assert event["tags"]["tenant"] == "acme"
    assert event["user"] == {"id": 7, "email": "***@***.***"}
    assert event["extra"]["note"] == "card ***"
    assert event["extra"]["loose"] == {"secret": MASK}
    assert event["contexts"]["payment"] == {"card_number": MASK, "amount": 5}
    dump = transport.dump()
    for raw in RAW_STRINGS:
        assert raw not in dump


def test_flush_with_the_capturing_transport(make_sentry: MakeSentry) -> None:
    integration = make_sentry()
    integration.capture_event(1, "E", "m")
    assert integration.flush(timeout=1.0) is True


# --- policy through a real app --------------------------------------------------------------


def test_declared_5xx_is_captured_once_tagged_and_fingerprinted(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    with TestClient(make_app(integration)) as client:
        response = client.get("/unavailable")
    assert response.status_code == 503
    (event,) = transport.events
    assert event["tags"]["error_code"] == "5003"
    assert event["tags"]["error_name"] == "Unavailable"
    assert event["tags"]["status_code"] == "503"
    assert event["fingerprint"] == ["fastapi-error-codes", "5003"]
    assert event["exception"]["values"][-1]["type"] == "Unavailable"
    assert event["level"] == "error"


def test_http_exception_5xx_is_captured_once(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    with TestClient(make_app(integration)) as client:
        assert client.get("/http503").status_code == 503
    (event,) = transport.events
    assert event["tags"]["error_code"] == "503"
    assert event["tags"]["status_code"] == "503"


def test_unexpected_exception_is_captured_once(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    with TestClient(make_app(integration), raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    (event,) = transport.events  # ours; the ASGI middleware's re-capture is deduplicated
    assert event["tags"]["error_code"] == "500"
    assert event["tags"]["error_name"] == "InternalServerError"
    assert event["fingerprint"] == ["{{ default }}", "500"]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"


def test_declared_4xx_is_a_breadcrumb_not_an_issue(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    with TestClient(make_app(integration)) as client:
        assert client.get("/missing").status_code == 404
    assert transport.events == []
    # Outside a request, the breadcrumb lands on the scope and rides on the next event.
    integration.observe(fake_request(), handled(missing(), message=f"no order for {EMAIL}"))
    assert transport.events == []
    integration.capture_event(5003, "Unavailable", "later", status_code=503)
    (event,) = transport.events
    (crumb,) = [
        c for c in event["breadcrumbs"]["values"] if c.get("category") == "fastapi_error_codes"
    ]
    assert crumb["message"] == "4004 Missing: no order for ***@***.***"
    assert crumb["level"] == "warning"
    assert crumb["data"]["error_code"] == 4004
    assert crumb["data"]["status_code"] == 404
    assert crumb["data"]["route"] == "/orders/{order_id}"  # the template, not the raw path


def test_4xx_captured_when_configured(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry(sentry_capture_4xx=True)
    with TestClient(make_app(integration)) as client:
        assert client.get("/missing").status_code == 404
    (event,) = transport.events
    assert event["tags"]["error_code"] == "4004"
    assert event["fingerprint"] == ["fastapi-error-codes", "4004"]
    assert event["level"] == "warning"


def test_before_send_tags_events_the_starlette_integration_captured_first(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    # The pitfall: with its defaults, the Starlette integration captures a 5xx before our
    # handler runs, and our own (tagged) capture is then dropped as a duplicate. before_send
    # must tag that first event itself.
    defaults = [StarletteIntegration(failed_request_status_codes={*range(500, 600)})]
    integration = make_sentry(init_options={"integrations": defaults})
    with TestClient(make_app(integration)) as client:
        assert client.get("/unavailable").status_code == 503
    (event,) = transport.events
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "starlette"
    assert event["tags"]["error_code"] == "5003"
    assert event["tags"]["error_name"] == "Unavailable"
    assert event["fingerprint"] == ["fastapi-error-codes", "5003"]


def test_observe_never_raises(make_sentry: MakeSentry, transport: CapturingTransport) -> None:
    integration = make_sentry()
    broken = HandledError(
        error_code=1,
        error_name="E",
        status_code="not a number",  # type: ignore[arg-type]
        message="m",
        detail=None,
        exception=RuntimeError("x"),
    )
    integration.observe(fake_request(), broken)
    assert integration.failures == 1
    assert transport.events == []


def test_observe_is_cheap_for_4xx(make_sentry: MakeSentry) -> None:
    import time

    integration = make_sentry()
    request, error = fake_request(), handled(missing())
    start = time.perf_counter()
    for _ in range(200):
        integration.observe(request, error)
    assert (time.perf_counter() - start) / 200 < 1e-3


# --- before_send masks every part of an event -------------------------------------------------


class Login(BaseModel):
    user: str
    password: str


@pytest.mark.filterwarnings("ignore:The send_default_pii option is deprecated")
@pytest.mark.parametrize("send_default_pii", [None, True])
def test_no_secret_reaches_sentry_from_any_event_part(
    make_sentry: MakeSentry, transport: CapturingTransport, send_default_pii: bool | None
) -> None:
    # Also with send_default_pii=True: an app that asks sentry-sdk for everything (cookies,
    # headers, bodies, user) still sends no secret.
    integration = make_sentry(init_options={"send_default_pii": send_default_pii})
    app = make_app(integration)
    log = logging.getLogger("tests.metrics.sentry.app")

    @app.post("/checkout")
    def checkout(login: Login, request: Request) -> None:
        password = SECRETS["pw_local"]  # a frame local
        headers = [(b"x-api-key", SECRETS["raw_header"].encode())]  # raw ASGI-style pairs
        token = JWT
        log.info("checkout for %s", EMAIL)  # a logging breadcrumb
        log.error("card declined: %s", CARD)  # a logging event
        integration.add_breadcrumb("auth", f"token={SECRETS['crumb_token']}")
        integration.configure_scope(
            {"tags": {"session": SECRETS["tag_session"]}, "secret": SECRETS["extra_secret"]}
        )
        assert password and headers and token and login
        raise RuntimeError(
            f"charge failed for {EMAIL}: Authorization: Bearer {SECRETS['bearer_message']} "
            f"api_secret={SECRETS['log_secret']!r} card {CARD} jwt {JWT}"
        )

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            f"/checkout?token={SECRETS['query_token']}&email={EMAIL}&page=2",
            json={"user": "bob", "password": SECRETS["pw_body"]},
            headers={
                "X-Api-Key": SECRETS["api_key_header"],
                "Authorization": f"Bearer {SECRETS['bearer_header']}",
                "Cookie": f"session={SECRETS['cookie']}; theme=dark",
            },
        )
    assert response.status_code == 500
    events = transport.events
    assert len(events) == 2  # the logged error and the exception
    exc_event = next(e for e in events if "exception" in e)
    assert exc_event["tags"]["error_code"] == "500"
    assert exc_event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "page=2" in exc_event["request"]["query_string"]
    frames = exc_event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert any("vars" in f for f in frames)  # locals were attached, and masked
    log_event = next(e for e in events if "logentry" in e)
    assert log_event["logentry"]["params"] == ["***"] or "***" in str(log_event["logentry"])
    dump = transport.dump()
    leaked = [raw for raw in RAW_STRINGS if raw in dump]
    assert leaked == []


def test_before_send_never_raises_and_withholds_what_it_cannot_mask(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()

    class Exploding(type(integration.masker)):  # type: ignore[misc]
        def mask(self, data: Any) -> Any:
            raise RuntimeError("masking broke")

    integration.masker = Exploding()
    event_id = integration.capture_event(5003, "Unavailable", f"secret mail {EMAIL}")
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["message"] == "event withheld: PII masking failed"
    assert EMAIL not in transport.dump()
    assert integration.failures >= 1


def test_transactions_are_masked_too(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry(init_options={"traces_sample_rate": 1.0})
    app = make_app(integration)

    @app.get("/traced")
    def traced() -> dict[str, str]:
        with sentry_sdk.start_span(op="db", name=f"SELECT * WHERE email='{EMAIL}'"):
            pass
        return {"ok": "yes"}

    with TestClient(app) as client:
        assert client.get(f"/traced?token={SECRETS['query_token']}").status_code == 200
    txs = [e for e in transport.events if e.get("type") == "transaction"]
    assert txs
    assert txs[0]["contexts"]["trace"]["trace_id"]
    dump = transport.dump()
    assert EMAIL not in dump
    assert SECRETS["query_token"] not in dump


def test_user_hooks_run_before_masking(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    seen: list[str] = []

    def before_send(event: Any, hint: Any) -> Any:
        seen.append(str(event.get("message")))
        event["extra"] = {"added_by_app": f"token={SECRETS['extra_secret']}"}
        return event

    integration = make_sentry(init_options={"before_send": before_send})
    integration.capture_event(1, "E", "hello")
    (event,) = transport.events
    assert seen == ["hello"]
    assert event["extra"]["added_by_app"] == "token=***"


def test_describe_and_fingerprint_helpers() -> None:
    assert describe_exception(None) is None
    assert describe_exception(unavailable()) == (5003, "Unavailable", 503, True)
    assert describe_exception(HTTPException(404)) == (404, "HTTPException", 404, True)
    assert describe_exception(ValueError()) == (500, "InternalServerError", 500, False)
    assert fingerprint_for(5003) == ["fastapi-error-codes", "5003"]
    assert fingerprint_for(500, declared=False) == ["{{ default }}", "500"]


class Signup(BaseModel):
    email: str
    password: str = Field(min_length=64)  # too short: the input lands in the error list


def test_request_validation_error_repr_is_masked(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    # The pitfall: str(RequestValidationError) -- the exception value Sentry shows -- embeds
    # the request's inputs as a Python repr ('password': '...').
    integration = make_sentry(sentry_capture_4xx=True)
    app = make_app(integration)

    @app.post("/signup")
    def signup(body: Signup, age: int) -> None:
        return None

    with TestClient(app) as client:
        response = client.post(
            "/signup?age=x", json={"email": EMAIL, "password": SECRETS["pw_body"]}
        )
    assert response.status_code == 422
    (event,) = transport.events
    assert event["tags"]["error_code"] == "422"
    assert "'loc': ('body', 'password')" in event["exception"]["values"][-1]["value"]
    assert event["exception"]["values"][-1]["type"] == "RequestValidationError"
    dump = transport.dump()
    assert SECRETS["pw_body"] not in dump
    assert EMAIL not in dump


def test_a_malformed_dsn_leaves_sentry_off_instead_of_failing_startup() -> None:
    config = MetricsConfig.testing(sentry_enabled=True, sentry_dsn="not a dsn")
    integration = SentryIntegration(config)
    integration.initialize()
    assert not integration.initialized
    assert integration.failures == 1
    assert integration.capture_event(1, "E", "m") is None
