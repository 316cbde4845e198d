"""The app the multi-worker tests run under gunicorn: the example service, plus a route that
raises each of its declared errors and a header naming the worker that answered."""

from __future__ import annotations

import os

from examples.app import (
    InvalidQuantity,
    OrderAlreadyShipped,
    OrderNotFound,
    PaymentServiceUnavailable,
    UserNotFound,
    create_app,
)
from fastapi import Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from fastapi_error_codes import BaseAppException

ERRORS: dict[int, type[BaseAppException]] = {
    301: UserNotFound,
    302: OrderNotFound,
    303: OrderAlreadyShipped,
    460: InvalidQuantity,
    520: PaymentServiceUnavailable,
}


class WorkerPid(BaseHTTPMiddleware):
    """Tags every response with the pid of the worker that answered it."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-worker-pid"] = str(os.getpid())
        return response


app = create_app()  # metrics from the FEC_* environment the test sets
app.add_middleware(WorkerPid)


@app.get("/fail/{code}")
def fail(code: int) -> None:
    """Raise the declared error with *code*."""
    raise ERRORS[code]()
