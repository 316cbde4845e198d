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
import threading
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
        "_headers",
        "_trace_id",
        "answered",
        "counted",
        "error",
        "event_id",
        "hooks",
        "request_id",
        "root",
        "sentry_event_id",
        "status",
    )

    def __init__(self, root: object, scope: Scope, request_id: str | None = None) -> None:
        """Start a record for a request entering *root* (the outermost app with our handlers).

        It keeps the request's headers (its trace id is read from them), never the scope: the
        scope holds the record, and a cycle would leave both to the cyclic garbage collector.
        """
        self.status: int | None = None
        self.root = root
        self._headers = scope.get("headers")
        self.request_id = request_id
        #: Set by the first request hook that counted this request (counted once).
        self.counted = False
        #: The event id the metrics collector gave the error answered, when one was recorded.
        self.event_id: str | None = None
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
            found = self._trace_id = trace_id_of(self._headers)
        return found if isinstance(found, str) else None


#: Runs when a request's response is done: ``hook(scope, record)``. It must not raise.
RequestHook = Callable[[Scope, Sent], None]

_hook_guard = FailureGuard(_log, "fastapi_error_codes: a request hook failed (logged once)")


#: Request ids drawn from one ``os.urandom`` read (a system call per id cost ~1 µs): the
#: same 128 random bits per id, taken in batches. ``list.pop`` hands each out exactly once
#: (atomic); a forked child empties its copy, so it never sends its parent's ids.
_ID_BATCH = 64
_ids: list[str] = []
_ids_lock = threading.Lock()


def _refill_ids() -> None:
    with _ids_lock:
        if not _ids:
            pool = os.urandom(16 * _ID_BATCH).hex()
            _ids.extend(pool[i : i + 32] for i in range(0, 32 * _ID_BATCH, 32))


def _forget_ids() -> None:
    """In a forked child: drop the parent's ids (and a lock another thread may have held)."""
    global _ids_lock
    _ids_lock = threading.Lock()
    _ids.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_ids)


def _new_request_id() -> str:
    """A new random request id (128 bits from ``os.urandom``, hex)."""
    while True:
        try:
            return _ids.pop()
        except IndexError:
            _refill_ids()


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
        if self._hooks:
            sent.hooks.extend(self._hooks)
        echo = (header, request_id.encode("ascii")) if header and request_id else None

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = sent.status = message["status"]
                if status >= 400:
                    # Read now, while the app's tracing span is still open: request counting
                    # keeps it with an error response no handler answered, after the response.
                    sent.trace_id  # noqa: B018
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
                    try:
                        hook(scope, sent)
                    except Exception as exc:  # as ``with _hook_guard:``, without its calls
                        _hook_guard.failed(exc)


def _add_header(message: Message, header: tuple[bytes, bytes]) -> None:
    """Add *header* to a response start unless the app set that header itself.

    The list is copied, never changed in place: it is often the Response object's own
    ``raw_headers``, and a Response an app reuses (a module-level one) would keep the first
    request's id for every later request.
    """
    headers = message.get("headers") or ()
    name, size = header[0], len(header[0])
    for key, _value in headers:
        if len(key) == size and key.lower() == name:  # lower() keeps the length
            return
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
