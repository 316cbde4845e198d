"""What the client was sent: the status of a response that started before an error was raised.

A streaming body can fail after ``http.response.start`` went out: the client got that status
(usually 200) and a cut body, and no error response can replace it. :class:`SentStatus` (the
outermost layer of an app with our handlers) remembers the status each response started with,
so the handlers count such an error with the status the client actually received.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SentStatus", "sent_status"]

#: Scope key of the one-item list holding the status sent (None until the response starts).
#: A list, not the value itself: an app mounted inside sees the same list even in a copied scope.
_KEY = "fastapi_error_codes.sent_status"


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
        sent: list[int | None] = [None]
        scope[_KEY] = sent

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent[0] = message["status"]
            await send(message)

        await self.app(scope, receive, send_recording)


def sent_status(scope: Mapping[str, Any]) -> int | None:
    """The status the response of this request started with, or None if it has not started."""
    sent = scope.get(_KEY)
    if isinstance(sent, list) and sent and isinstance(sent[0], int):
        return sent[0]
    return None
