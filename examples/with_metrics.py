"""Basic monitoring: count every error, then read the counts back from the collector.

    uvicorn examples.with_metrics:app

``setup_exception_handler(app, metrics_config=...)`` installs the error handlers and the
metrics in one call. The collector it creates sits on ``app.state.metrics_collector``; this
example reads it directly at ``/stats`` (the dashboard JSON under ``/api/metrics`` and the
Prometheus text at ``/metrics`` are the ready-made views of the same numbers).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig


@register_exception(error_code=310, message="Product not found", status_code=404)
class ProductNotFound(BaseAppException):
    """No product with that id."""


@register_exception(error_code=311, message="Product is out of stock", status_code=409)
class OutOfStock(BaseAppException):
    """The product exists but none is left."""


STOCK = {1: 3, 2: 0}

# development(): in-process store, fast flushes. The email pattern masks addresses in the
# stored messages and details (on top of the default patterns).
METRICS = MetricsConfig.development(pii_patterns=["email"])


def create_app(metrics_config: MetricsConfig = METRICS) -> FastAPI:
    """Build the example app with *metrics_config*."""
    app = FastAPI(title="fastapi-error-codes: basic metrics")
    setup_exception_handler(app, metrics_config=metrics_config)

    @app.post("/products/{product_id}/buy")
    def buy(product_id: int, email: str = "guest@example.com") -> dict[str, Any]:
        if product_id not in STOCK:
            raise ProductNotFound(detail={"product_id": product_id, "email": email})
        if STOCK[product_id] == 0:
            raise OutOfStock(detail={"product_id": product_id})
        return {"product_id": product_id, "bought": 1}

    @app.get("/stats")
    def stats(request: Request) -> dict[str, Any]:
        collector: ErrorMetricsCollector = request.app.state.metrics_collector
        snapshot = collector.get_snapshot()  # flushes this worker, then reads the store
        return {
            "total_errors": snapshot.total_errors,
            "by_code": snapshot.error_counts,
            "by_status": snapshot.status_counts,
            "names": snapshot.error_names,
            "recent": [
                {"code": e.error_code, "message": e.message, "detail": e.detail}
                for e in collector.get_recent_events(limit=5)
            ],
        }

    return app


app = create_app()
