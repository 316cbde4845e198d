"""The app the multi-worker tests run under gunicorn: five declared errors, worker pid header."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import get_config_from_env


@register_exception(error_code=7301, message="User not found", status_code=404)
class FleetUserNotFound(BaseAppException):
    """A 404."""


@register_exception(error_code=7302, message="Order conflict", status_code=409)
class FleetOrderConflict(BaseAppException):
    """A 409."""


@register_exception(error_code=7303, message="Forbidden", status_code=403)
class FleetForbidden(BaseAppException):
    """A 403."""


@register_exception(error_code=7304, message="Too many requests", status_code=429)
class FleetRateLimited(BaseAppException):
    """A 429."""


@register_exception(error_code=7500, message="Upstream failed", status_code=502)
class FleetUpstream(BaseAppException):
    """A 502."""


ERRORS: dict[int, type[BaseAppException]] = {
    7301: FleetUserNotFound,
    7302: FleetOrderConflict,
    7303: FleetForbidden,
    7304: FleetRateLimited,
    7500: FleetUpstream,
}


class WorkerPid(BaseHTTPMiddleware):
    """Tags every response with the pid of the worker that answered it."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-worker-pid"] = str(os.getpid())
        return response


app = FastAPI()
app.add_middleware(WorkerPid)
setup_exception_handler(app, metrics_config=get_config_from_env())


@app.get("/fail/{code}")
def fail(code: int) -> None:
    """Raise the declared error with *code*."""
    raise ERRORS[code]()


@app.get("/ping")
def ping() -> dict[str, int]:
    """Answer with this worker's pid."""
    return {"pid": os.getpid()}
