"""Dashboard JSON: fleet summaries under ``/api/metrics``, and a small page that shows them.

    uvicorn examples.with_dashboard:app     # then open http://127.0.0.1:8000/

Endpoints (tag ``metrics`` in the OpenAPI schema): ``/api/metrics/summary``,
``/api/metrics/recent``, ``/api/metrics/by-code/{code}``, ``/api/metrics/top-errors``.

They are protected here by an app-supplied dependency (any FastAPI dependency works; a
bearer token is the built-in alternative, ``MetricsConfig(auth_token=...)``): send
``X-Dashboard-Key: letmein``. The page at ``/`` sends it for you.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import HTMLResponse

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig, setup_metrics

DASHBOARD_KEY = "letmein"  # a demo value: read it from a secret in a real service


@register_exception(error_code=320, message="Report not found", status_code=404)
class ReportNotFound(BaseAppException):
    """No report with that name."""


@register_exception(error_code=480, message="Date range is too large", status_code=400)
class RangeTooLarge(BaseAppException):
    """Reports cover at most 31 days."""


def require_dashboard_key(x_dashboard_key: str = Header(default="")) -> None:
    """Let only callers that know the dashboard key read the metrics."""
    if not hmac.compare_digest(x_dashboard_key.encode(), DASHBOARD_KEY.encode()):
        raise HTTPException(status_code=403, detail="dashboard key required")


PAGE = """<!doctype html>
<meta charset="utf-8"><title>Errors</title>
<style>body{font:14px sans-serif;margin:2em}td,th{padding:2px 12px;text-align:left}</style>
<h1>Errors: <span id="total">…</span></h1>
<p>last 5 min: <b id="m5"></b> · last hour: <b id="h1"></b> · live workers: <b id="w"></b></p>
<table><thead><tr><th>code</th><th>name</th><th>count</th><th>share</th></tr></thead>
<tbody id="top"></tbody></table>
<script>
const get = (p) => fetch(p, {headers: {"X-Dashboard-Key": "%KEY%"}}).then((r) => r.json());
async function refresh() {
  const s = await get("/api/metrics/summary");
  document.getElementById("total").textContent = s.total_errors;
  document.getElementById("m5").textContent = s.last_5m;
  document.getElementById("h1").textContent = s.last_1h;
  document.getElementById("w").textContent = s.workers;
  const rows = (await get("/api/metrics/top-errors?limit=10")).map((e) =>
    `<tr><td>${e.error_code}</td><td>${e.error_name}</td><td>${e.count}</td>` +
    `<td>${(100 * e.share).toFixed(1)}%</td></tr>`);
  document.getElementById("top").innerHTML = rows.join("");
}
refresh(); setInterval(refresh, 2000);
</script>
"""


def create_app(metrics_config: MetricsConfig | None = None) -> FastAPI:
    """Build the example app (dashboard on, Prometheus off by default)."""
    app = FastAPI(title="fastapi-error-codes: dashboard")
    setup_exception_handler(app)
    setup_metrics(
        app,
        metrics_config or MetricsConfig.development(prometheus_enabled=False),
        auth_dependency=require_dashboard_key,
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.replace("%KEY%", DASHBOARD_KEY)

    @app.get("/reports/{name}")
    def report(name: str, days: int = 7) -> dict[str, object]:
        if days > 31:
            raise RangeTooLarge(detail={"days": days, "max_days": 31})
        raise ReportNotFound(detail={"report": name})

    return app


app = create_app()
