"""One request's record: its id, the status its response started with, the error answered.

:class:`SentStatus` is the outermost layer of an app with our handlers (pure ASGI). For each
HTTP request it

- takes the request id from the configured header (``X-Request-ID``) when it is a valid one
  (1-64 of letters, digits and ``._:+/=@-``), or makes a new one, and sends it back in the
  same response header;
- keeps the status each response starts with: a streaming body can fail after
  ``http.response.start`` went out, and the handlers then count the error with the status the
  client actually received;
- puts a :class:`Sent` record in the scope, shared by reference (a middleware that copies the
  scope still sees it): the request id, the trace id (read lazily), the outermost app with our
  handlers (observers are looked up there when the request's own app is not linked to it), the
  error answered (a mounted app's re-raise is not answered twice; request counting sees which
  error responses a handler answered);
- runs the request hooks (:func:`add_request_hook`) once the response is done: request counting.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_error_codes._guard import FailureGuard
from fastapi_error_codes._trace import trace_id_of
from fastapi_error_codes.config import CONFIG_STATE_ATTR

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "REQUEST_ID_RE",
    "RequestHook",
    "Sent",
    "SentStatus",
    "add_request_hook",
    "sent_record",
    "sent_status",
]

#: Scope key of the request's :class:`Sent` record.
_KEY = "fastapi_error_codes.sent"
#: ``app.state`` attribute: the app's request hooks.
_HOOKS_ATTR = "fastapi_error_codes_request_hooks"
#: A request id taken from the client: 1-64 characters that are safe in logs and headers.
REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,64}")

_log = logging.getLogger("fastapi_error_codes")


class Sent:
    """One request's record: its ids, the status sent, the root app and the error answered."""

    __slots__ = (
        "_trace_id",
        "answered",
        "error",
        "hooks",
        "request_id",
        "root",
        "scope",
        "sentry_event_id",
        "status",
    )

    def __init__(self, root: object, scope: Scope, request_id: str | None = None) -> None:
        """Start a record for a request entering *root* (the outermost app with our handlers)."""
        self.status: int | None = None
        self.root = root
        self.scope = scope
        self.request_id = request_id
        #: The exception already answered by ``server_error`` (answered once).
        self.answered: BaseException | None = None
        #: The error the handlers answered (a ``HandledError``), for request counting.
        self.error: Any = None
        #: The id of the Sentry event captured for the error, when one was.
        self.sentry_event_id: str | None = None
        #: Request hooks of the apps this request passed through, run once at its end.
        self.hooks: list[RequestHook] = []
        self._trace_id: str | bool | None = False  # False: not looked up yet

    @property
    def trace_id(self) -> str | None:
        """The request's W3C trace id (the active OpenTelemetry span's, else ``traceparent``)."""
        found = self._trace_id
        if found is False:
            found = self._trace_id = trace_id_of(self.scope)
        return found if isinstance(found, str) else None


#: Runs when a request's response is done: ``hook(scope, record)``. It must not raise.
RequestHook = Callable[[Scope, Sent], None]

_hook_guard = FailureGuard(_log, "fastapi_error_codes: a request hook failed (logged once)")


def _new_request_id() -> str:
    """A new random request id (128 bits, hex)."""
    return os.urandom(16).hex()


class SentStatus:
    """ASGI middleware: the request's record, its request id, and the request hooks."""

    __slots__ = ("_header", "_header_str", "_hooks", "app")

    def __init__(self, app: ASGIApp, owner: Starlette | None = None) -> None:
        """Wrap *app*, the middleware stack of *owner* (whose config names the id header)."""
        self.app = app
        state = getattr(owner, "state", None)
        config = getattr(state, CONFIG_STATE_ATTR, None)
        header = getattr(config, "request_id_header", None)
        self._header_str: str | None = header.lower() if isinstance(header, str) else None
        self._header = self._header_str.encode("latin-1") if self._header_str else None
        hooks = getattr(state, _HOOKS_ATTR, None)
        self._hooks: tuple[RequestHook, ...] = tuple(hooks or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record its status and id; run the request hooks at its end."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = scope.get(_KEY)
        if isinstance(found, Sent):  # an app mounted in one with our handlers: one record
            for hook in self._hooks:
                if hook not in found.hooks:
                    found.hooks.append(hook)
            await self.app(scope, receive, send)
            return
        header = self._header
        request_id = None
        if header is not None:
            for name, value in scope["headers"]:
                if name == header:
                    if REQUEST_ID_RE.fullmatch(value):
                        request_id = value.decode("ascii")
                    break
            if request_id is None:
                request_id = _new_request_id()
        sent = scope[_KEY] = Sent(scope.get("app"), scope, request_id)
        sent.hooks.extend(self._hooks)
        echo = (header, request_id.encode("ascii")) if header and request_id else None

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent.status = message["status"]
                if echo is not None:
                    _add_header(message, echo)
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        except Exception:
            if sent.status is None:  # the server answers 500 for what escaped unanswered
                sent.status = 500
            raise
        finally:
            if sent.hooks and sent.status is not None:
                for hook in sent.hooks:
                    with _hook_guard:
                        hook(scope, sent)


def _add_header(message: Message, header: tuple[bytes, bytes]) -> None:
    """Add *header* to a response start unless the app set that header itself."""
    headers = message.get("headers")
    if headers is None:
        message["headers"] = [header]
        return
    name = header[0]
    for key, _value in headers:
        if key.lower() == name:
            return
    if isinstance(headers, list):
        headers.append(header)
    else:
        message["headers"] = [*headers, header]


def add_request_hook(app: Starlette, hook: RequestHook) -> None:
    """Run ``hook(scope, record)`` at the end of every HTTP request that passes through *app*."""
    hooks: list[RequestHook] | None = getattr(app.state, _HOOKS_ATTR, None)
    if hooks is None:
        hooks = []
        setattr(app.state, _HOOKS_ATTR, hooks)
    if hook not in hooks:
        hooks.append(hook)
        if app.middleware_stack is not None:  # built already: rebuild with the hook
            app.middleware_stack = None


def sent_record(scope: Mapping[str, Any]) -> Sent | None:
    """The request's :class:`Sent` record, if an app with our handlers is on its way."""
    sent = scope.get(_KEY)
    return sent if isinstance(sent, Sent) else None


def sent_status(scope: Mapping[str, Any]) -> int | None:
    """The status the response of this request started with, or None if it has not started."""
    sent = scope.get(_KEY)
    return sent.status if isinstance(sent, Sent) else None
