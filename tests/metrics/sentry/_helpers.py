"""Helpers of the end-to-end Sentry tests: route the app's own sentry client into a capture."""

from __future__ import annotations

import sentry_sdk

from tests.metrics.sentry.conftest import CapturingTransport


def capture_into(transport: CapturingTransport) -> None:
    """Swap the transport of the client the app initialised (in its lifespan) for *transport*.

    setup_metrics builds the SentryIntegration itself, so the test cannot hand it a transport;
    the client, its hooks and integrations stay exactly as the app configured them.
    """
    client = sentry_sdk.get_client()
    assert client.is_active(), "the app did not initialise Sentry in its lifespan startup"
    old = client.transport
    client.transport = transport
    if old is not None:
        old.kill()
