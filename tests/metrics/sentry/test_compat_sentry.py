"""SentryIntegration as the original fastapi-error-code spells it: names, signatures, behaviour.

The real sentry-sdk with the capturing transport of ``conftest.py``: the original's public
members (``dsn``, ``enabled``, ``pii_patterns``, ``initialize``, ``capture_event``,
``capture_exception``, ``add_breadcrumb``, ``configure_scope``, ``flush``), called the way the
original's users call them, go through our masking and never raise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import sentry_sdk

from fastapi_error_codes.metrics.config import MetricsConfig
from fastapi_error_codes.metrics.pii import MASK
from fastapi_error_codes.metrics.sentry import SentryIntegration
from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport

MakeSentry = Callable[..., SentryIntegration]

EMAIL = "user@example.com"
EMAIL_MASK = "***@***.***"

#: The original's public methods: parameter (name, default) in order; ``...`` = required.
ORIGINAL_SIGNATURES: dict[str, list[tuple[str, Any]]] = {
    "initialize": [],
    "capture_event": [
        ("error_code", ...),
        ("error_name", ...),
        ("message", ...),
        ("detail", None),
        ("level", "error"),
    ],
    "capture_exception": [("exception", ...), ("detail", None)],
    "add_breadcrumb": [("category", ...), ("message", ...), ("level", "info"), ("data", None)],
    "configure_scope": [("data", ...)],
    "flush": [("timeout", 2.0)],
}


@pytest.mark.parametrize("method", sorted(ORIGINAL_SIGNATURES))
def test_the_original_signatures(method: str) -> None:
    """The original's parameters come first, in its order, positional, with its defaults."""
    params = list(inspect.signature(getattr(SentryIntegration, method)).parameters.values())[1:]
    expected = ORIGINAL_SIGNATURES[method]
    head = params[: len(expected)]
    assert [p.name for p in head] == [name for name, _ in expected]
    for param, (_name, default) in zip(head, expected, strict=True):
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, param
        assert param.default == (inspect.Parameter.empty if default is ... else default)
    # Anything of ours beyond them is keyword-only or optional: the original's calls still bind.
    for param in params[len(expected) :]:
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, param
        assert param.default is not inspect.Parameter.empty, param


def test_config_members_as_the_original() -> None:
    config = MetricsConfig.testing(
        sentry_enabled=True, sentry_dsn=FAKE_DSN, pii_patterns=["custom_field"]
    )
    integration = SentryIntegration(config)
    assert integration.config is config
    assert integration.enabled is True
    assert integration.dsn == FAKE_DSN
    assert tuple(integration.pii_patterns) == ("custom_field",)


def test_disabled_members_and_calls_are_no_ops() -> None:
    integration = SentryIntegration(MetricsConfig.testing())
    assert integration.enabled is False
    assert integration.dsn is None
    assert tuple(integration.pii_patterns) == ()
    integration.initialize()
    assert integration.capture_event(404, "NotFound", "Not found", {}, "warning") is None
    assert integration.capture_exception(ValueError("x"), {"email": EMAIL}) is None
    integration.add_breadcrumb("error", "Error occurred", "error", {"a": 1})
    integration.configure_scope({"user_id": "123"})
    assert integration.flush(5.0) is True  # nothing queued: drained


def test_capture_event_positional_masks_detail_and_sets_level(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry(pii_patterns=["custom_field"])
    event_id = integration.capture_event(
        400,
        "BadRequest",
        "Invalid request",
        {"email": EMAIL, "password": "secret-pw-1", "custom_field": "c-9", "order": 7},
        "warning",
    )
    assert isinstance(event_id, str) and event_id
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["level"] == "warning"
    assert event["tags"]["error_code"] == "400"
    assert event["tags"]["error_name"] == "BadRequest"
    assert event["contexts"]["error"]["detail"] == {
        "email": EMAIL_MASK,
        "password": MASK,
        "custom_field": MASK,
        "order": 7,
    }
    dump = transport.dump()
    for raw in (EMAIL, "secret-pw-1", "c-9"):
        assert raw not in dump


def test_capture_event_keywords_and_none_detail(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    event_id = integration.capture_event(
        error_code=404, error_name="NotFound", message="Not found", detail=None
    )
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["level"] == "error"
    assert event["contexts"]["error"]["detail"] is None


def test_capture_exception_with_detail_is_masked(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    try:
        raise ValueError("User error")
    except ValueError as exc:
        event_id = integration.capture_exception(exc, {"email": EMAIL, "user_id": "123"})
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert event["contexts"]["error"]["detail"] == {"email": EMAIL_MASK, "user_id": "123"}
    assert EMAIL not in transport.dump()


def test_breadcrumb_and_scope_ride_along_masked(
    make_sentry: MakeSentry, transport: CapturingTransport
) -> None:
    integration = make_sentry()
    integration.add_breadcrumb("auth", f"login {EMAIL}", "warning", {"password": "pw-77"})
    integration.add_breadcrumb(category="error", message="Error occurred", level="error")
    integration.configure_scope({"user_id": "123", "request_id": "abc", "email": EMAIL})
    integration.capture_event(500, "Boom", "boom")
    (event,) = transport.events
    crumbs = {c["category"]: c for c in event["breadcrumbs"]["values"]}
    assert crumbs["auth"]["message"] == f"login {EMAIL_MASK}"
    assert crumbs["auth"]["level"] == "warning"
    assert crumbs["auth"]["data"] == {"password": MASK}
    assert (crumbs["error"]["message"], crumbs["error"]["level"]) == ("Error occurred", "error")
    # Plain keys land as extras (values keep their structure); tags go under "tags".
    assert event["extra"]["user_id"] == "123"
    assert event["extra"]["request_id"] == "abc"
    assert event["extra"]["email"] == EMAIL_MASK
    assert EMAIL not in transport.dump() and "pw-77" not in transport.dump()


def test_flush_with_a_timeout(make_sentry: MakeSentry, transport: CapturingTransport) -> None:
    integration = make_sentry()
    integration.capture_event(404, "NotFound", "Not found")
    assert integration.flush(timeout=5.0) is True
    assert integration.flush(1.0) is True
    assert len(transport.events) == 1


def test_initialize_passes_the_dsn_and_is_idempotent(make_sentry: MakeSentry) -> None:
    integration = make_sentry()
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert client.options["dsn"] == integration.dsn == FAKE_DSN
    integration.initialize()
    assert sentry_sdk.get_client() is client


def test_sdk_failures_never_reach_the_caller(
    make_sentry: MakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original's graceful degradation: our one failure guard counts, logs once, returns."""
    integration = make_sentry()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("sentry-sdk broke")

    for name in ("capture_message", "capture_exception", "add_breadcrumb", "flush"):
        monkeypatch.setattr(sentry_sdk, name, broken)
    monkeypatch.setattr(sentry_sdk, "get_isolation_scope", broken)
    before = integration.failures
    assert integration.capture_event(404, "NotFound", "Not found", {"a": 1}, "error") is None
    assert integration.capture_exception(ValueError("x"), {"a": 1}) is None
    integration.add_breadcrumb("c", "m", "info", {"a": 1})
    integration.configure_scope({"a": 1})
    assert integration.flush(2.0) is False
    assert integration.failures == before + 5
