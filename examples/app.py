"""The example service: declared errors, routes that raise them, and fleet-wide metrics.

Run it (``make run`` does the first)::

    uvicorn examples.app:app                                   # in-process store
    FEC_REDIS_URL=redis://127.0.0.1:6379/0 \\
        gunicorn -c deploy/gunicorn.conf.py examples.app:app   # 4 workers, one Redis

Configuration comes from ``FEC_*`` environment variables (``get_config_from_env()``):
with ``FEC_REDIS_URL`` unset the counts live in this process only, which is right for one
uvicorn process and wrong for several workers (each would answer with its own counts).

Then try ``/users/7``, ``/orders/2/cancel`` (POST), ``/boom``, and read ``/metrics`` and
``/api/metrics/summary``.
"""

from __future__ import annotations

from fastapi import FastAPI, Header

from fastapi_error_codes import (
    BaseAppException,
    ErrorHandlerConfig,
    error_responses,
    register_exception,
    setup_exception_handler,
)
from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env

# --- declared errors: a stable code, an HTTP status and a message each -----------------------


@register_exception(error_code=201, message="Missing or invalid API key", status_code=401)
class InvalidApiKey(BaseAppException):
    """The request carried no valid ``X-API-Key``."""


@register_exception(error_code=301, message="User not found", status_code=404)
class UserNotFound(BaseAppException):
    """No user with that id."""


@register_exception(error_code=302, message="Order not found", status_code=404)
class OrderNotFound(BaseAppException):
    """No order with that id."""


@register_exception(error_code=303, message="Order has already shipped", status_code=409)
class OrderAlreadyShipped(BaseAppException):
    """A shipped order cannot be cancelled."""


@register_exception(error_code=460, message="Quantity must be between 1 and 100", status_code=400)
class InvalidQuantity(BaseAppException):
    """An order asked for too few or too many items."""


@register_exception(error_code=520, message="Payment service is unavailable", status_code=503)
class PaymentServiceUnavailable(BaseAppException):
    """The payment provider did not answer."""


# --- a tiny in-memory "database" -------------------------------------------------------------

USERS = {1: "ada", 2: "grace"}
ORDERS = {1: "open", 2: "shipped"}
API_KEY = "example-key"


def create_app(metrics_config: MetricsConfig | None = None) -> FastAPI:
    """Build the service; *metrics_config* defaults to the ``FEC_*`` environment."""
    app = FastAPI(title="fastapi-error-codes example service")
    setup_exception_handler(
        app,
        ErrorHandlerConfig.from_environment(),
        metrics_config=metrics_config or get_config_from_env(),
    )

    @app.get("/")
    def index() -> dict[str, object]:
        return {
            "try": ["/users/1", "/users/7", "/orders/7", "/boom", "/metrics"],
            "dashboard": "/api/metrics/summary",
        }

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/users/{user_id}", responses=error_responses(UserNotFound))
    def get_user(user_id: int) -> dict[str, object]:
        if user_id not in USERS:
            raise UserNotFound(detail={"user_id": user_id})
        return {"id": user_id, "name": USERS[user_id]}

    @app.get("/orders/{order_id}", responses=error_responses(OrderNotFound))
    def get_order(order_id: int) -> dict[str, object]:
        if order_id not in ORDERS:
            raise OrderNotFound(detail={"order_id": order_id})
        return {"id": order_id, "status": ORDERS[order_id]}

    @app.post(
        "/orders/{order_id}/cancel", responses=error_responses(OrderNotFound, OrderAlreadyShipped)
    )
    def cancel_order(order_id: int) -> dict[str, object]:
        status = ORDERS.get(order_id)
        if status is None:
            raise OrderNotFound(detail={"order_id": order_id})
        if status == "shipped":
            raise OrderAlreadyShipped(detail={"order_id": order_id})
        return {"id": order_id, "status": "cancelled"}  # a demo: nothing is stored

    @app.post("/orders", responses=error_responses(InvalidQuantity))
    def create_order(quantity: int) -> dict[str, object]:
        # A non-integer quantity never gets here: FastAPI's validation answers 422.
        if not 1 <= quantity <= 100:
            raise InvalidQuantity(detail={"quantity": quantity})
        return {"id": 3, "quantity": quantity, "status": "open"}

    @app.post("/checkout", responses=error_responses(InvalidApiKey, PaymentServiceUnavailable))
    def checkout(x_api_key: str | None = Header(default=None)) -> dict[str, object]:
        if x_api_key != API_KEY:
            raise InvalidApiKey()
        raise PaymentServiceUnavailable(detail={"provider": "example-pay"})

    @app.get("/boom")
    def boom() -> None:
        # Not a declared error: answered as the built-in 500 InternalServerError.
        raise RuntimeError("something unexpected broke")

    return app


app = create_app()
