"""Fixtures of the Sentry tests: the real sentry-sdk with a capturing transport, reset per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

sentry_sdk = pytest.importorskip("sentry_sdk")

from sentry_sdk.envelope import Envelope  # noqa: E402
from sentry_sdk.integrations.dedupe import DedupeIntegration  # noqa: E402
from sentry_sdk.integrations.logging import unignore_logger  # noqa: E402
from sentry_sdk.transport import Transport  # noqa: E402

from fastapi_error_codes.metrics.config import MetricsConfig  # noqa: E402
from fastapi_error_codes.metrics.sentry import SentryIntegration  # noqa: E402

#: A syntactically valid DSN; with the capturing transport nothing is ever sent to it.
FAKE_DSN = "https://publickey@sentry.invalid/42"


class CapturingTransport(Transport):
    """A sentry-sdk transport that keeps every envelope instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The error events (and transactions) sent, as Sentry would receive them."""
        found: list[dict[str, Any]] = []
        for envelope in self.envelopes:
            for item in envelope.items:
                if item.type in ("event", "transaction") and item.payload.json is not None:
                    found.append(item.payload.json)
        return found

    def dump(self) -> str:
        """Every byte the SDK would have sent, decoded: what leak assertions search."""
        return "\n".join(
            envelope.serialize().decode("utf-8", "replace") for envelope in self.envelopes
        )

    def events_json(self) -> str:
        return json.dumps(self.events, default=str)


def reset_sentry() -> None:
    """Close the client of a test and leave the process as if sentry-sdk was never started."""
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=0)
    for scope in (
        sentry_sdk.get_global_scope(),
        sentry_sdk.get_isolation_scope(),
        sentry_sdk.get_current_scope(),
    ):
        scope.clear()
    sentry_sdk.get_global_scope().set_client(None)
    DedupeIntegration.reset_last_seen()
    # SentryIntegration.initialize() silences the handlers' logger for the logging integration
    # (process-wide): a test of an app that configured Sentry itself must start without it.
    unignore_logger("fastapi_error_codes.errors")


@pytest.fixture(autouse=True)
def _reset_sentry() -> Iterator[None]:
    reset_sentry()
    yield
    reset_sentry()


@pytest.fixture
def transport() -> CapturingTransport:
    """The transport of one test."""
    return CapturingTransport()


@pytest.fixture
def make_sentry(transport: CapturingTransport) -> Callable[..., SentryIntegration]:
    """Factory: an initialised SentryIntegration that sends into ``transport``."""

    def make(init_options: dict[str, Any] | None = None, **config: Any) -> SentryIntegration:
        base: dict[str, Any] = {"sentry_enabled": True, "sentry_dsn": FAKE_DSN}
        cfg = MetricsConfig.testing(**{**base, **config})
        integration = SentryIntegration(
            cfg, init_options={"transport": transport, **(init_options or {})}
        )
        integration.initialize()
        return integration

    return make
