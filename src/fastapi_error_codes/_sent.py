"""What one request's response was: the status it started with, and the error answered for it.

A streaming body can fail after ``http.response.start`` went out: the client got that status
(usually 200) and a cut body, and no error response can replace it. :class:`SentStatus` (the
outermost layer of an app with our handlers) puts a :class:`Sent` record in the scope and
keeps the status each response starts with there, so the handlers count such an error with the
status the client actually received. The record also names the outermost app with our handlers
(observers are looked up there when the request's own app is not linked to it) and the
exception already answered (a mounted app's re-raise is not answered twice). It is one object
shared by reference: a middleware that copies the scope still sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Sent", "SentStatus", "sent_record", "sent_status"]

#: Scope key of the request's :class:`Sent` record.
_KEY = "fastapi_error_codes.sent"


class Sent:
    """One request's record: status sent (None until the response starts), root, answered."""

    __slots__ = ("answered", "root", "status")

    def __init__(self, root: object) -> None:
        """Start a record for a request entering *root* (the outermost app with our handlers)."""
        self.status: int | None = None
        self.root = root
        self.answered: BaseException | None = None


class SentStatus:
    """ASGI middleware recording the status of ``http.response.start`` in the scope."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        """Wrap *app*."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; remember the status its response starts with."""
        if scope["type"] != "http" or _KEY in scope:
            await self.app(scope, receive, send)
            return
        sent = scope[_KEY] = Sent(scope.get("app"))

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent.status = message["status"]
            await send(message)

        await self.app(scope, receive, send_recording)


def sent_record(scope: Mapping[str, Any]) -> Sent | None:
    """The request's :class:`Sent` record, if an app with our handlers is on its way."""
    sent = scope.get(_KEY)
    return sent if isinstance(sent, Sent) else None


def sent_status(scope: Mapping[str, Any]) -> int | None:
    """The status the response of this request started with, or None if it has not started."""
    sent = scope.get(_KEY)
    return sent.status if isinstance(sent, Sent) else None
