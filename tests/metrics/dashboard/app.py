"""The browser test's example app: declared errors, routes raising them, and seeded history.

Run under real uvicorn by ``tests/browser/test_browser.py``::

    python -m uvicorn tests.metrics.dashboard.app:app --host 127.0.0.1 --port <free port>

At import it applies one batch of *history* to the in-process store, as if another worker of
the fleet had counted errors in earlier minutes (so the chart has a shape); the test then adds
*live* errors through real requests. ``expected_totals()`` is what the page must show.
"""

from __future__ import annotations

import time

from fastapi import FastAPI

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig
from fastapi_error_codes.metrics.models import Batch


@register_exception(error_code=7301, message="User not found", status_code=404)
class UserNotFound(BaseAppException):
    """No user with that id."""


@register_exception(error_code=7302, message="Order already shipped", status_code=409)
class OrderAlreadyShipped(BaseAppException):
    """A shipped order cannot be changed."""


@register_exception(error_code=7501, message="Payment service unavailable", status_code=503)
class PaymentUnavailable(BaseAppException):
    """The payment provider did not answer."""


NAMES = {7301: "UserNotFound", 7302: "OrderAlreadyShipped", 7501: "PaymentUnavailable"}
STATUS = {7301: 404, 7302: 409, 7501: 503}

#: code -> errors per minute, 50, 40, 30, 20 and 10 minutes ago (another worker's history).
HISTORY = {7301: [3, 5, 2, 6, 4], 7302: [2, 2, 0, 1, 0], 7501: [1, 0, 4, 2, 3]}
HISTORY_MINUTES_AGO = [50, 40, 30, 20, 10]

#: code -> (method, route, requests the test makes): the live errors.
LIVE = {
    7301: ("GET", "/users/{user_id}", 7),
    7302: ("POST", "/orders/{order_id}/cancel", 3),
    7501: ("POST", "/checkout", 4),
}


def expected_totals() -> dict[int, int]:
    """Fleet totals per code once the test has made the live requests."""
    return {code: sum(HISTORY[code]) + LIVE[code][2] for code in HISTORY}


def create_app() -> FastAPI:
    """The app, with one batch of history already in its store."""
    app = FastAPI(title="dashboard page test app")
    config = MetricsConfig.testing(flush_interval_ms=200, max_events=1000)
    setup_exception_handler(app, metrics_config=config)

    @app.get("/users/{user_id}")
    def get_user(user_id: int) -> dict[str, int]:
        raise UserNotFound(detail={"user_id": user_id})

    @app.post("/orders/{order_id}/cancel")
    def cancel(order_id: int) -> dict[str, int]:
        raise OrderAlreadyShipped(detail={"order_id": order_id})

    @app.post("/checkout")
    def checkout() -> dict[str, int]:
        raise PaymentUnavailable()

    collector = app.state.metrics_collector
    width = config.bucket_width_s
    now = int(time.time())
    current = now - now % width
    counts = {
        (current - minutes * 60, code, STATUS[code]): n
        for code, row in HISTORY.items()
        for minutes, n in zip(HISTORY_MINUTES_AGO, row, strict=True)
        if n
    }
    collector.store.apply(
        Batch(worker_id="history-worker", seq=1, counts=counts, names=NAMES, events=[])
    )
    return app


app = create_app()
