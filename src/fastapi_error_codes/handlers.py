"""setup_exception_handler: one handler answers every error with the same body.

Every error passes through :meth:`ErrorResponder.__call__`, which resolves it to a declared
error (the app's own, or a built-in one for framework errors), localises the message, renders
the body in the configured format, logs it (one line), and calls the observers of
:mod:`fastapi_error_codes.observers` exactly once.

Where the handlers sit: declared and framework errors are handled in Starlette's
``ExceptionMiddleware``. Any other exception (an unexpected one, one raised in a middleware,
one raised after the response started) reaches Starlette's outermost ``ServerErrorMiddleware``
and :meth:`ErrorResponder.server_error`, which answers and counts it; Starlette then re-raises
it to the server, which logs its traceback (the handler's own line carries none: one traceback
per exception, where a server without logging configured still shows it). Apps mounted in the
app (``app.mount``) are answered and observed the same way (:mod:`fastapi_error_codes._tree`).
"""

from __future__ import annotations

import http
import logging
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from fastapi import exception_handlers as fastapi_exception_handlers
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from fastapi_error_codes._bodies import build_body, json_safe
from fastapi_error_codes._builtin import INTERNAL_STATUS, VALIDATION_STATUS, builtin_error
from fastapi_error_codes._routes import route_template
from fastapi_error_codes._sent import SentStatus, sent_record, sent_status
from fastapi_error_codes._time import utc_timestamp
from fastapi_error_codes._trace import mark_span
from fastapi_error_codes._tree import add_build_hook, add_stack_wrapper, link_mounts, on_mount
from fastapi_error_codes.config import CONFIG_STATE_ATTR, ErrorHandlerConfig
from fastapi_error_codes.errors import BaseAppException, ErrorInfo
from fastapi_error_codes.i18n import MessageProvider, format_message, negotiate_locale
from fastapi_error_codes.observers import HandledError, notify, setup_monitoring
from fastapi_error_codes.openapi import install_openapi

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.types import ExceptionHandler

__all__ = [
    "CONFIG_STATE_ATTR",
    "ERRORS_LOGGER",
    "ErrorResponder",
    "installed_config",
    "setup_exception_handler",
]

_log = logging.getLogger("fastapi_error_codes")
#: The line of every answered error (a child of ``fastapi_error_codes``: configured with it).
#: Its own name lets Sentry's logging integration skip these lines alone, since the error
#: observer reports the same errors with their code (see metrics/sentry).
ERRORS_LOGGER = "fastapi_error_codes.errors"
_errors_log = logging.getLogger(ERRORS_LOGGER)

#: ``app.state`` attribute holding the ErrorResponder (mounted apps adopt the same one).
_RESPONDER_ATTR = "fastapi_error_codes_responder"
#: ``app.state`` attribute: True on a mounted app answered by the responder of its parent.
_ADOPTED_ATTR = "fastapi_error_codes_adopted"

#: FastAPI's own default handlers: a mounted app that has only these has none of its own.
_FASTAPI_DEFAULTS: tuple[object, ...] = (
    fastapi_exception_handlers.http_exception_handler,
    fastapi_exception_handlers.request_validation_exception_handler,
    fastapi_exception_handlers.websocket_request_validation_exception_handler,
)

#: The keys the responder handles in Starlette's ExceptionMiddleware. Starlette moves an
#: ``Exception`` (or 500) handler to its outermost ServerErrorMiddleware, which re-raises to
#: the server afterwards: that one is :meth:`ErrorResponder.server_error`.
_HANDLED_TYPES: tuple[type[Exception], ...] = (
    BaseAppException,
    StarletteHTTPException,
    RequestValidationError,
)

#: The start of the message of the RuntimeError Starlette raises, from the error itself, when
#: a handled exception comes after the response started (a failing streaming body).
_STARTED_MESSAGE = "Caught handled exception, but response already started"


@dataclass(slots=True)
class _Resolved:
    """An error resolved to what the body shows, before localisation."""

    message_key: str
    error_code: int
    error_name: str
    status_code: int
    message: str
    localise: bool
    detail: Any = None
    errors: list[dict[str, Any]] | None = None
    headers: Mapping[str, str] | None = None
    timestamp: str | None = None


#: A message that is a dotted locale key (``errors.auth.required``), not prose.
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+$")


def _escape_pointer(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _default_phrase(status: int) -> str | None:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return None


class ErrorResponder:
    """The exception handler installed for every error type; holds the precomputed setup."""

    def __init__(self, config: ErrorHandlerConfig) -> None:
        self.config = config
        self.provider: MessageProvider | None = None
        self.locales: list[str] = []
        if config.locale_dir is not None:
            provider = MessageProvider(
                config.locale_dir, config.default_locale, config.fallback_locales
            )
            provider.load_all()  # read the files now: requests never touch the disk
            self.provider = provider
            self.locales = provider.get_available_locales()
        self._overrides: dict[int, ErrorInfo] = {
            status: cls.__error_info__
            for status, cls in config.framework_errors.items()
            if cls.__error_info__ is not None
        }

    def framework_info(self, status: int) -> ErrorInfo:
        """Return the declared error answering a framework error with HTTP *status*."""
        return self._overrides.get(status) or builtin_error(status)

    async def __call__(self, conn: HTTPConnection, exc: Exception) -> Response | None:
        """Answer *exc* with an error body (or close a WebSocket) and notify observers."""
        return await self._answer(conn, exc, reraised=False)

    async def server_error(self, conn: HTTPConnection, exc: Exception) -> Response | None:
        """The handler of Starlette's ServerErrorMiddleware, which re-raises *exc* afterwards.

        It gets what escaped the app's middleware, and errors raised after the response
        started: those are counted under their own code with the status the client got.
        The server logs the traceback of what is re-raised: the handler's line carries none.
        """
        if sent_status(conn.scope) is not None:
            while (
                isinstance(exc, RuntimeError)
                and isinstance(exc.__cause__, Exception)
                and str(exc).startswith(_STARTED_MESSAGE)
            ):
                exc = exc.__cause__
        sent = sent_record(conn.scope)
        if sent is not None:
            if sent.answered is exc:
                # A mounted app answered it already; its re-raise reached the outer app's
                # ServerErrorMiddleware: the response is out, the error counted and logged once.
                return Response(status_code=INTERNAL_STATUS)
            sent.answered = exc
        return await self._answer(conn, exc, reraised=True)

    async def _answer(
        self, conn: HTTPConnection, exc: Exception, *, reraised: bool
    ) -> Response | None:
        if conn.scope.get("type") == "websocket":
            await self._close_websocket(conn, exc)
            return None
        request = conn if isinstance(conn, Request) else Request(conn.scope)
        try:
            if isinstance(exc, StarletteHTTPException) and exc.status_code < 400:
                # Not an error (e.g. 304 raised to stop processing): answer it plainly.
                return Response(status_code=exc.status_code, headers=exc.headers)
            resolved = self.resolve(exc)
            response, handled = self.respond(request, resolved, exc, reraised=reraised)
        except Exception:
            _log.exception("fastapi_error_codes: building the error response failed")
            resolved = self._fallback()
            response, handled = self.respond(
                request, resolved, exc, localise=False, reraised=reraised
            )
        try:
            mark_span(handled.error_code, handled.error_name, handled.status_code)
            notify(request, handled)
        except Exception:  # notify swallows observer errors; this guards the lookup itself
            _log.debug("fastapi_error_codes: notifying observers failed", exc_info=True)
        return response

    # -- resolving -------------------------------------------------------------------------

    def resolve(self, exc: Exception) -> _Resolved:
        """Map any exception to the declared error that answers it."""
        if isinstance(exc, BaseAppException):
            # A message given at the raise is shown as written (its {placeholders} filled from
            # the detail), unless it is a locale key such as "errors.auth.required", which is
            # looked up like a declared one: both as the original fastapi-error-code did.
            as_key = not exc.message_is_default and _KEY_RE.match(exc.message) is not None
            return _Resolved(
                message_key=exc.message if as_key else exc.message_key,
                **exc.public_fields(),
                localise=exc.message_is_default or as_key,
                detail=exc.detail,
                headers=exc.headers,
                timestamp=exc.timestamp,
            )
        if isinstance(exc, StarletteHTTPException):
            return self._resolve_http(exc)
        if isinstance(exc, RequestValidationError):
            info = self.framework_info(VALIDATION_STATUS)
            resolved = self._from_info(info)
            resolved.errors = [self._field_error(e) for e in exc.errors()]
            return resolved
        resolved = self._from_info(self.framework_info(INTERNAL_STATUS))
        resolved.detail = self._debug_detail(exc)
        return resolved

    def _from_info(self, info: ErrorInfo) -> _Resolved:
        return _Resolved(message_key=info.message_key, **info.public_fields(), localise=True)

    def _resolve_http(self, exc: StarletteHTTPException) -> _Resolved:
        resolved = self._from_info(self.framework_info(exc.status_code))
        resolved.status_code = exc.status_code
        resolved.headers = exc.headers
        detail: Any = exc.detail
        if isinstance(detail, str):
            if detail and detail != _default_phrase(exc.status_code):
                # The app wrote its own message: show it as written.
                resolved.message = detail
                resolved.localise = False
        elif detail is not None:
            resolved.detail = detail
        return resolved

    def _field_error(self, error: Mapping[str, Any]) -> dict[str, Any]:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        return {
            "location": loc,
            "pointer": "".join("/" + _escape_pointer(p) for p in loc),
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }

    def _debug_detail(self, exc: Exception) -> Any:
        if not (self.config.debug_mode or self.config.include_traceback):
            return None
        detail: dict[str, Any] = {}
        if self.config.debug_mode:
            detail["exception"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
            try:
                detail["exception_message"] = str(exc)
            except Exception:
                detail["exception_message"] = None
        if self.config.include_traceback:
            detail["traceback"] = [
                line
                for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__)
                for line in chunk.rstrip("\n").split("\n")
            ]
        return detail

    def _fallback(self) -> _Resolved:
        resolved = self._from_info(builtin_error(INTERNAL_STATUS))
        resolved.localise = False
        return resolved

    # -- answering -------------------------------------------------------------------------

    def _localise(
        self, request: Request, resolved: _Resolved, params: Mapping[str, Any]
    ) -> tuple[str, str]:
        default_locale = self.config.default_locale
        if not resolved.localise:
            return format_message(resolved.message, params), default_locale
        template, language = resolved.message, default_locale
        if self.provider is not None:
            locale = negotiate_locale(request.headers.get("accept-language"), self.locales)
            found = self.provider.lookup(resolved.message_key, locale)
            if found is not None:
                template, language = found
            if resolved.errors:
                for entry in resolved.errors:
                    field = self.provider.lookup(f"validation.{entry['type']}", locale)
                    if field is not None:
                        name = str(entry["location"][-1]) if entry["location"] else ""
                        entry["message"] = format_message(field[0], {"field": name})
        return format_message(template, params), language

    def respond(
        self,
        request: Request,
        resolved: _Resolved,
        exc: Exception,
        *,
        localise: bool = True,
        reraised: bool = False,
    ) -> tuple[Response, HandledError]:
        """Render, log and return the response for *resolved* with its HandledError.

        *reraised*: Starlette re-raises *exc* to the server afterwards (which logs it).
        """
        config = self.config
        record = sent_record(request.scope)
        request_id = record.request_id if record is not None else None
        trace_id = record.trace_id if record is not None else None
        detail = json_safe(resolved.detail)
        params = detail if isinstance(detail, dict) else {}
        if localise:
            message, language = self._localise(request, resolved, params)
        else:
            message, language = resolved.message, config.default_locale
        response_format = config.response_format
        body = build_body(
            response_format,
            error_code=resolved.error_code,
            error_name=resolved.error_name,
            status_code=resolved.status_code,
            message=json_safe(message),  # echoed input may hold lone surrogates
            detail=detail,
            errors=json_safe(resolved.errors) if resolved.errors is not None else None,
            timestamp=resolved.timestamp or utc_timestamp(),
            # Only a problem body has an instance: the default one does not build the URL.
            instance=json_safe(request.url.path) if response_format == "problem+json" else None,
            type_base=config.problem_type_base,
        )
        if config.request_id_in_body:
            if request_id is not None:
                body["request_id"] = request_id
            if trace_id is not None:
                body["trace_id"] = trace_id
        if resolved.headers:
            headers = dict(resolved.headers)
            vary = [v for k, v in headers.items() if k.lower() == "vary"]
            headers = {
                k: v for k, v in headers.items() if k.lower() not in ("vary", "content-language")
            }
            headers["Vary"] = ", ".join([*vary, "Accept-Language"])
            headers["Content-Language"] = language
        else:  # what the above makes of no headers
            headers = {"Vary": "Accept-Language", "Content-Language": language}
        response = JSONResponse(
            body,
            status_code=resolved.status_code,
            headers=headers,
            media_type=config.media_type,
        )
        # A response that started before the error (a streaming body) cannot be replaced:
        # the client got its status, and the error is counted with that status.
        sent = record.status if reraised and record is not None else None
        status = resolved.status_code if sent is None else sent
        handled = HandledError(
            error_code=resolved.error_code,
            error_name=resolved.error_name,
            status_code=status,
            message=message,
            detail={"errors": resolved.errors} if resolved.errors is not None else detail,
            exception=exc,
            response_started=sent is not None,
            request_id=request_id,
            trace_id=trace_id,
        )
        self._log(
            request,
            resolved,
            handled,
            with_traceback=resolved.status_code >= 500 and not reraised,
        )
        if record is not None:
            record.error = handled  # request counting counts it by route, once
        return response, handled

    def _log(
        self,
        request: Request,
        resolved: _Resolved,
        handled: HandledError,
        *,
        with_traceback: bool,
    ) -> None:
        """The one line of an answered error: its level by class, structured fields in extra."""
        config = self.config
        exc, status = handled.exception, handled.status_code
        name = config.log_level_5xx if resolved.status_code >= 500 else config.log_level_4xx
        level = logging.getLevelName(name)
        if level >= logging.DEBUG and not _errors_log.isEnabledFor(level):
            return  # nor at DEBUG, the level of an error logged already: no line either way
        if getattr(exc, LOGGED_ATTR, False):  # whoever raised it has logged it already
            level, with_traceback = logging.DEBUG, False
        if not _errors_log.isEnabledFor(level):
            return
        started = status != resolved.status_code
        _errors_log.log(
            level,
            "%s %s -> %d %s (error_code=%d)%s%s",
            request.method,
            request.url.path,
            status,
            resolved.error_name,
            resolved.error_code,
            " after the response started" if started else "",
            f" request_id={handled.request_id}" if handled.request_id else "",
            exc_info=exc if with_traceback else None,
            extra={
                "error_code": resolved.error_code,
                "error_name": resolved.error_name,
                "status_code": status,
                "route": route_template(request.scope),
                "method": request.method,
                "request_id": handled.request_id,
                "trace_id": handled.trace_id,
            },
        )

    async def _close_websocket(self, conn: HTTPConnection, exc: Exception) -> None:
        status = getattr(exc, "status_code", INTERNAL_STATUS)
        server_error = not isinstance(status, int) or status >= 500
        config = self.config
        # On the parent logger: observers never see a WebSocket's error, so this line is its
        # only report (Sentry's logging integration turns it into an event).
        _log.log(
            logging.getLevelName(config.log_level_5xx if server_error else config.log_level_4xx),
            "websocket %s -> closed after %s",
            conn.url.path,
            type(exc).__name__,
            exc_info=exc if server_error and not isinstance(exc, StarletteHTTPException) else None,
        )
        if isinstance(conn, WebSocket):
            await conn.close(code=1011 if server_error else 1008)


#: An exception carrying this attribute set to True was logged by whoever raised it (the
#: monitoring's 503s: a failing store is logged once per failure streak): the handlers log it
#: at DEBUG only, so a storm of requests does not become a storm of log lines.
LOGGED_ATTR = "fastapi_error_codes_logged"


def installed_config(app: Starlette) -> ErrorHandlerConfig | None:
    """The config ``setup_exception_handler`` installed on *app*, or None if it has not run."""
    config = getattr(app.state, CONFIG_STATE_ATTR, None)
    return config if isinstance(config, ErrorHandlerConfig) else None


def setup_exception_handler(
    app: FastAPI,
    config: ErrorHandlerConfig | None = None,
    metrics_config: object | None = None,
) -> None:
    """Answer every error of *app* with the library's body; optionally wire monitoring.

    Calling it again replaces the handlers and the config (nothing is installed twice).
    *metrics_config* (a ``fastapi_error_codes.metrics.MetricsConfig``) goes to the setup that
    monitoring registered for its type (``setup_metrics``), through
    :func:`fastapi_error_codes.observers.setup_monitoring`: the error core never imports it.
    """
    if config is None:
        config = ErrorHandlerConfig()
    if not isinstance(config, ErrorHandlerConfig):
        raise TypeError(f"config must be an ErrorHandlerConfig, got {type(config).__name__}")
    _install(app, ErrorResponder(config))
    setattr(app.state, _ADOPTED_ATTR, False)  # set up by itself: its own config from now on
    install_openapi(app, config)
    if metrics_config is not None:
        setup_monitoring(app, metrics_config)


def _install(app: Starlette, responder: ErrorResponder, *, keep_own: bool = False) -> None:
    """Make *responder* answer every error of *app*, and of the apps mounted in it.

    *keep_own*: leave in place a handler the app registered itself (not FastAPI's default, not
    ours): a mounted app keeps its own error pages.
    """
    handlers: list[tuple[type[Exception], Any]] = [(t, responder) for t in _HANDLED_TYPES]
    handlers.append((Exception, responder.server_error))
    for key, handler in handlers:
        if keep_own and not _replaceable(app.exception_handlers.get(key)):
            continue
        app.add_exception_handler(key, cast("ExceptionHandler", handler))
    setattr(app.state, CONFIG_STATE_ATTR, responder.config)
    setattr(app.state, _RESPONDER_ATTR, responder)
    add_build_hook(app, link_mounts)
    add_stack_wrapper(app, SentStatus)
    if app.middleware_stack is not None:  # already built: take the new handlers at the next call
        app.middleware_stack = None


def _replaceable(handler: object) -> bool:
    """Whether *handler* is none, FastAPI's default, or the library's (not the app's own)."""
    if handler is None or handler in _FASTAPI_DEFAULTS:
        return True
    return isinstance(handler, ErrorResponder) or isinstance(
        getattr(handler, "__self__", None), ErrorResponder
    )


def _adopt(parent: Starlette, sub: Starlette) -> None:
    """A mounted app without our handlers is answered by its parent's responder.

    One that called ``setup_exception_handler`` itself keeps its own config; handlers the app
    registered itself (its error pages) stay. Runs at every build of the parent: a new config
    of the parent reaches the apps it adopted.
    """
    responder = getattr(parent.state, _RESPONDER_ATTR, None)
    if not isinstance(responder, ErrorResponder):
        return
    adopted = getattr(sub.state, _ADOPTED_ATTR, False)
    if installed_config(sub) is not None and not adopted:
        return  # set up by itself
    if adopted and getattr(sub.state, _RESPONDER_ATTR, None) is responder:
        return
    _install(sub, responder, keep_own=True)
    setattr(sub.state, _ADOPTED_ATTR, True)


on_mount(_adopt)
