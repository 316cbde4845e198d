"""Protection of the metrics and dashboard endpoints: a bearer token or any dependency."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request

__all__ = ["bearer_token_dependency"]


def bearer_token_dependency(token: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """Return a FastAPI dependency that demands ``Authorization: Bearer <token>``.

    It is ``async`` (it does no I/O): FastAPI runs it on the event loop, so a storm of
    scrapes takes none of the app's threadpool threads.
    """
    expected = token.encode("utf-8")

    async def require_token(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), expected
        )
        if not ok:
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )

    return require_token
