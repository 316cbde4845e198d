"""The app the route-totals tests run (gunicorn workers, a uvicorn process): one route per
kind of response, metrics from the ``FEC_*`` environment the test sets.

- ``GET /items/{item_id}``: 200; ``item_id`` 0 raises ``HTTPException(404)`` (a built-in code),
  a non-integer id is FastAPI's 422;
- ``POST /items``: 201;
- ``GET /locked/{item_id}``: raises the declared :class:`ItemLocked` (code 7423, status 423);
- ``GET /down``: *returns* a ``JSONResponse`` with status 503 (no handler raises anything);
- ``GET /boom``: an unexpected ``RuntimeError`` (the built-in 500);
- ``/throttled/...`` (no route has that path): :class:`Throttle`, a middleware outside the
  routing, answers 429;
- anything else is unmatched (404).

Every response carries ``x-worker-pid``: the pid of the worker that answered it.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_error_codes import BaseAppException, register_exception
from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env, setup_metrics

#: The path prefix the throttling middleware answers 429 for (no route has it).
THROTTLED_PREFIX = "/throttled"


@register_exception(error_code=7423, message="Item is locked", status_code=423)
class ItemLocked(BaseAppException):
    """The item is locked by someone else."""


class Throttle:
    """Pure ASGI middleware: 429 for ``/throttled/...``; tags every response with its pid."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pid = str(os.getpid()).encode()  # per request: gunicorn forks the workers

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-worker-pid", pid)]
            await send(message)

        if scope["path"].startswith(THROTTLED_PREFIX):
            await JSONResponse({"detail": "slow down"}, status_code=429)(
                scope, receive, send_tagged
            )
            return
        await self.app(scope, receive, send_tagged)


def create_app(config: MetricsConfig | None = None) -> FastAPI:
    """The app; *config* defaults to the ``FEC_*`` environment."""
    app = FastAPI()
    app.add_middleware(Throttle)
    setup_metrics(app, config or get_config_from_env())

    @app.get("/items/{item_id}")
    def get_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise HTTPException(status_code=404, detail="no item 0")
        return {"id": item_id}

    @app.post("/items", status_code=201)
    def create_item() -> dict[str, int]:
        return {"id": 1}

    @app.get("/locked/{item_id}")
    def get_locked(item_id: int) -> None:
        raise ItemLocked(detail={"item_id": item_id})

    @app.get("/down")
    def down() -> JSONResponse:
        return JSONResponse({"detail": "maintenance"}, status_code=503)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("something unexpected broke")

    return app


app = create_app()
