"""Prometheus: the fleet's error series at ``GET /metrics``, optionally behind a token.

    uvicorn examples.with_prometheus:app
    curl -s localhost:8000/metrics | grep fastapi_errors

With ``FEC_AUTH_TOKEN`` set (16+ characters) the endpoint wants
``Authorization: Bearer <token>``; give Prometheus the same token (``authorization:`` with
``credentials_file`` in the scrape config, see deploy/k8s/prometheus-scrape.yaml).

Here the configuration is written out in code (``MetricsConfig.production``) instead of read
from the environment, and the components come from ``setup_metrics`` directly, which returns
them: ``exporter.generate_metrics()`` renders the same text outside a request.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig, setup_metrics


@register_exception(error_code=250, message="Invalid API key", status_code=401)
class InvalidApiKey(BaseAppException):
    """The caller's key is unknown."""


@register_exception(error_code=530, message="Upstream service timed out", status_code=504)
class UpstreamTimeout(BaseAppException):
    """A dependency did not answer in time."""


def make_config() -> MetricsConfig:
    """Prometheus on, dashboard off; Redis and the token from the environment if set."""
    return MetricsConfig.production(
        dashboard_enabled=False,
        redis_url=os.environ.get("FEC_REDIS_URL") or None,
        auth_token=os.environ.get("FEC_AUTH_TOKEN") or None,
    )


def create_app(metrics_config: MetricsConfig | None = None) -> FastAPI:
    """Build the example app; *metrics_config* defaults to :func:`make_config`."""
    app = FastAPI(title="fastapi-error-codes: Prometheus")
    setup_exception_handler(app)  # the error bodies
    components = setup_metrics(app, metrics_config or make_config())  # /metrics
    app.state.exporter = components["exporter"]

    @app.get("/reports/{name}")
    def report(name: str, key: str = "") -> dict[str, str]:
        if key != "secret-key":
            raise InvalidApiKey()
        raise UpstreamTimeout(detail={"upstream": "reports-db", "report": name})

    return app


app = create_app()
