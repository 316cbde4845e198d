"""The end-to-end row's app: five declared errors, answered through the library's handlers.

``FECB_MODE`` picks the monitoring: ``off`` (error handlers only), ``memory`` (metrics on the
in-process store) or ``redis`` (metrics on ``FECB_REDIS_URL`` in namespace ``FECB_NAMESPACE``).
Served by gunicorn with ``uvicorn_worker.UvicornWorker`` workers; nothing here is tuned for the
benchmark beyond what a user's service would do.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler

MODE = os.environ.get("FECB_MODE", "off")
TOKEN = os.environ.get("FECB_TOKEN", "bench-token-0123456789")


@register_exception(error_code=4101, message="Item not found", status_code=404)
class ItemNotFound(BaseAppException):
    """404."""


@register_exception(error_code=4102, message="Item already exists", status_code=409)
class ItemExists(BaseAppException):
    """409."""


@register_exception(error_code=4103, message="Quota exceeded", status_code=429)
class QuotaExceeded(BaseAppException):
    """429."""


@register_exception(error_code=4104, message="Not allowed", status_code=403)
class NotAllowed(BaseAppException):
    """403."""


@register_exception(error_code=4105, message="Upstream failed", status_code=502)
class UpstreamFailed(BaseAppException):
    """502."""


ERRORS: tuple[type[BaseAppException], ...] = (
    ItemNotFound,
    ItemExists,
    QuotaExceeded,
    NotAllowed,
    UpstreamFailed,
)
STATUSES = tuple(e.__error_info__.status_code for e in ERRORS if e.__error_info__)

# The handlers log every error (WARNING for 4xx, ERROR with traceback for 5xx). That line costs
# the same in every mode and would hide the metrics' cost in it: keep it quiet here, so the
# comparison is between the monitoring modes only (the stricter test).
logging.getLogger("fastapi_error_codes").setLevel(logging.CRITICAL)
logging.getLogger("fastapi_error_codes.metrics").setLevel(logging.WARNING)

app = FastAPI()


@app.get("/ok")
async def ok() -> dict[str, str]:
    """Readiness probe of the benchmark."""
    return {"mode": MODE}


@app.get("/e/{i}")
async def fail(i: int) -> None:
    """Raise declared error number *i* (mod 5), with a small detail."""
    raise ERRORS[i % len(ERRORS)](detail={"item": i})


def _metrics_config() -> object | None:
    if MODE == "off":
        return None
    from fastapi_error_codes.metrics import MetricsConfig

    options: dict[str, object] = {"auth_token": TOKEN, "sentry_enabled": False}
    if MODE == "redis":
        options["redis_url"] = os.environ["FECB_REDIS_URL"]
        options["namespace"] = os.environ["FECB_NAMESPACE"]
    elif MODE != "memory":
        raise ValueError(f"FECB_MODE must be off, memory or redis, got {MODE!r}")
    return MetricsConfig(**options)  # type: ignore[arg-type]


setup_exception_handler(app, metrics_config=_metrics_config())


# Row 12 (2xx with request counting): a route of the app's own, added after the setup as an
# app usually adds its routes, so with metrics on the library's routes are matched first.
@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    """A 2xx: the item's id back."""
    return {"item_id": item_id}
