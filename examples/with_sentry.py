"""Sentry per worker, with PII masked before anything leaves the process.

    SENTRY_DSN=https://<key>@<org>.ingest.sentry.io/<project> uvicorn examples.with_sentry:app

Without ``SENTRY_DSN`` the app runs the same, with Sentry off (every call a no-op). With it,
each worker initialises sentry-sdk in its lifespan startup and:

* ``POST /checkout`` with ``amount >= 10000`` raises a declared 402: a breadcrumb, not an
  issue; ``amount == 13`` raises a declared 503: an issue tagged ``error_code=341`` and
  grouped by that code;
* ``GET /crash`` raises an unexpected exception whose message holds an e-mail address and a
  bearer token: the issue shows ``***@***.***`` and ``Bearer ***``;
* ``GET /mask?text=...`` shows what :func:`mask_pii` makes of any text.

Request headers, cookies, query strings, bodies, frame locals and breadcrumbs are masked too;
``pii_patterns`` adds ``iban`` to the default patterns.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig, mask_pii


@register_exception(error_code=340, message="Payment declined", status_code=402)
class PaymentDeclined(BaseAppException):
    """The card was refused (a client error: a breadcrumb in Sentry)."""


@register_exception(error_code=341, message="Payment provider unavailable", status_code=503)
class PaymentProviderDown(BaseAppException):
    """The provider failed (a server error: a Sentry issue grouped by code 341)."""


class Checkout(BaseModel):
    """A checkout request: full of data that must never reach Sentry or the dashboard."""

    email: str
    card_number: str
    iban: str | None = None
    amount: int


def metrics_config() -> MetricsConfig:
    """Sentry on when ``SENTRY_DSN`` is set; masking adds ``iban`` to the default patterns."""
    dsn = os.environ.get("SENTRY_DSN") or None
    return MetricsConfig.development(
        sentry_enabled=dsn is not None,  # Sentry on without a DSN is refused by the config
        sentry_dsn=dsn,
        sentry_environment=os.environ.get("SENTRY_ENVIRONMENT") or None,
        pii_patterns=["iban"],
    )


def create_app(config: MetricsConfig | None = None) -> FastAPI:
    """Build the example app (Sentry from the environment unless *config* is given)."""
    app = FastAPI(title="fastapi-error-codes: Sentry with PII masking")
    setup_exception_handler(app, metrics_config=config or metrics_config())

    @app.post("/checkout")
    def checkout(order: Checkout) -> dict[str, Any]:
        if order.amount == 13:
            raise PaymentProviderDown(detail={"email": order.email, "amount": order.amount})
        if order.amount >= 10000:
            raise PaymentDeclined(detail={"card_number": order.card_number})
        return {"paid": order.amount}

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("sync failed for ada@example.com with Bearer abc.def.ghi")

    @app.get("/mask")
    def mask(text: str) -> dict[str, Any]:
        return {"masked": mask_pii(text)}

    return app


app = create_app()
