"""SentryIntegration: sentry-sdk's lifecycle per worker, the capture API and the observer policy."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._guard import FailureGuard
from .._http import route_template
from ..pii import PiiMasker
from . import scrub

if TYPE_CHECKING:
    from starlette.requests import Request

    from ...observers import HandledError
    from ..config import MetricsConfig

__all__ = [
    "BREADCRUMB_CATEGORY",
    "INSTALL_HINT",
    "SentryIntegration",
    "describe_exception",
    "fingerprint_for",
]

#: The one line a user needs when sentry-sdk is missing.
INSTALL_HINT = "pip install 'fastapi-error-codes[sentry]'"

_log = logging.getLogger("fastapi_error_codes")

#: Breadcrumb category of declared 4xx errors.
BREADCRUMB_CATEGORY = "fastapi_error_codes"

_UNEXPECTED_CODE = 500
_UNEXPECTED_NAME = "InternalServerError"


def _import_sentry_sdk() -> Any:
    try:
        import sentry_sdk
    except ImportError:
        raise ImportError(
            f"MetricsConfig(sentry_enabled=True) needs sentry-sdk: {INSTALL_HINT}"
        ) from None
    return sentry_sdk


def describe_exception(exc: BaseException | None) -> tuple[int, str, int, bool] | None:
    """``(error_code, error_name, status_code, declared)`` read from an exception, if any."""
    if exc is None:
        return None
    status = getattr(exc, "status_code", None)
    if isinstance(status, bool) or not isinstance(status, int):
        return (_UNEXPECTED_CODE, _UNEXPECTED_NAME, 500, False)
    code = getattr(exc, "error_code", None)
    if isinstance(code, bool) or not isinstance(code, int):
        code = status  # framework errors: the code is the HTTP status
    name = getattr(exc, "error_name", None)
    if not isinstance(name, str) or not name:
        name = type(exc).__name__
    return (code, name, status, True)


def fingerprint_for(error_code: int, *, declared: bool = True) -> list[str]:
    """Group declared errors by code; unexpected ones by code *and* stack (bugs stay apart)."""
    if declared:
        return ["fastapi-error-codes", str(error_code)]
    return ["{{ default }}", str(error_code)]


def _declared(exc: BaseException | None) -> bool:
    """False only for an unexpected exception (its events are grouped by stack as well)."""
    info = describe_exception(exc)
    return info[3] if info is not None else True


def _error_tags(error_code: int, error_name: str, status_code: int | None) -> dict[str, str]:
    """The tags Sentry filters our errors by: ``error_code``, ``error_name``, ``status_code``."""
    tags = {"error_code": str(error_code), "error_name": error_name}
    if status_code is not None:
        tags["status_code"] = str(status_code)
    return tags


def _error_context(
    error_code: int, error_name: str, status_code: int | None, message: str, detail: Any
) -> dict[str, Any]:
    """The ``error`` context of a captured event: what the handler answered."""
    return {
        "error_code": error_code,
        "error_name": error_name,
        "status_code": status_code,
        "message": message,
        "detail": detail,
    }


def _tag_scope(
    scope: Any, error_code: int, error_name: str, status_code: int | None, *, declared: bool
) -> None:
    """Tag a sentry-sdk scope by error code and fingerprint it, so issues group by our codes."""
    for key, value in _error_tags(error_code, error_name, status_code).items():
        scope.set_tag(key, value)
    scope.fingerprint = fingerprint_for(error_code, declared=declared)


def _tag_event(event: Any, hint: Any) -> Any:
    """Tag an event nobody tagged (e.g. the Starlette integration's) from its exception."""
    tags = event.get("tags")
    if isinstance(tags, Mapping) and "error_code" in tags:
        return event
    exc_info = hint.get("exc_info") if isinstance(hint, Mapping) else None
    exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
    info = describe_exception(exc)
    if info is None:
        return event
    code, name, status, declared = info
    event = dict(event)
    new_tags = dict(tags) if isinstance(tags, Mapping) else {}
    for key, value in _error_tags(code, name, status).items():
        new_tags.setdefault(key, value)
    event["tags"] = new_tags
    if not event.get("fingerprint"):
        event["fingerprint"] = fingerprint_for(code, declared=declared)
    return event


class SentryIntegration:
    """Sentry for one worker: capture by error code, PII masked, never in the request's way."""

    def __init__(
        self, config: MetricsConfig, *, init_options: Mapping[str, Any] | None = None
    ) -> None:
        """Prepare (not start) Sentry; *init_options* go to ``sentry_sdk.init`` as well."""
        self.config = config
        self.masker = PiiMasker(config.pii_patterns, max_length=config.max_text_length)
        self._init_options = dict(init_options or {})
        self._enabled = bool(config.sentry_enabled and config.sentry_dsn)
        self._sdk: Any = None
        if config.sentry_enabled:
            _import_sentry_sdk()  # fail at setup, with the install hint, not in a worker later
        self._pid: int | None = None
        self._lock = threading.Lock()
        # Every best-effort path (capture, observer, hooks, flush) runs under this one guard.
        self._guard = FailureGuard(
            _log, "fastapi_error_codes: Sentry integration failed (logged once)"
        )

    @property
    def failures(self) -> int:
        """Internal failures swallowed so far (capture, observer, hooks, flush, init)."""
        return self._guard.failures

    @property
    def enabled(self) -> bool:
        """True when Sentry is on and has a DSN (whether or not initialised yet)."""
        return self._enabled

    @property
    def dsn(self) -> str | None:
        """The Sentry DSN of the config (``MetricsConfig.sentry_dsn``)."""
        return self.config.sentry_dsn

    @property
    def pii_patterns(self) -> tuple[str, ...]:
        """The extra PII patterns of the config, masked besides the built-in ones."""
        return tuple(self.config.pii_patterns)

    @property
    def initialized(self) -> bool:
        """True once :meth:`initialize` ran in this process."""
        return self._sdk is not None and self._pid == os.getpid()

    # --- lifecycle --------------------------------------------------------------------------

    def initialize(self) -> None:
        """Start sentry-sdk in this worker process; a second call (same process) is a no-op."""
        if not self._enabled:
            return
        pid = os.getpid()
        with self._lock:
            if self._pid == pid and self._sdk is not None:
                return
            sdk = _import_sentry_sdk()
            try:
                sdk.init(**self._sentry_options())
            except Exception:  # a malformed DSN or option: degrade to "off", never crash
                # A configuration error, not a best-effort one: its own line, at every attempt.
                _log.exception("fastapi_error_codes: sentry_sdk.init failed; Sentry stays off")
                self._guard.failures += 1
                return
            self._sdk = sdk
            self._pid = pid

    def _sentry_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            # send_default_pii stays at its default (off; deprecated in newer SDKs).
            "dsn": self.config.sentry_dsn,
            # Our handlers answer 5xx and report them through observe(), tagged: the Starlette
            # integration must not capture them first (its untagged event would win the dedupe).
            "integrations": _web_integrations(),
        }
        if self.config.sentry_environment:
            options["environment"] = self.config.sentry_environment
        options.update(self._init_options)
        user_before_send = options.get("before_send")
        user_before_tx = options.get("before_send_transaction")
        user_before_crumb = options.get("before_breadcrumb")
        options["before_send"] = self._chain(user_before_send, self._before_send)
        options["before_send_transaction"] = self._chain(user_before_tx, self._before_send)
        options["before_breadcrumb"] = self._chain(user_before_crumb, self._before_breadcrumb)
        return options

    @staticmethod
    def _chain(user: Any, ours: Any) -> Any:
        """Run the app's own hook first, ours last: masking always has the final word."""
        if user is None:
            return ours

        def hook(item: Any, hint: Any) -> Any:
            try:
                item = user(item, hint)
            except Exception:
                return None
            return None if item is None else ours(item, hint)

        return hook

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait up to *timeout* s for queued events; True if the queue drained in time."""
        if not self.initialized:
            return True
        start = time.monotonic()
        with self._guard:
            self._sdk.flush(timeout=timeout)
            return time.monotonic() - start < timeout
        return False

    # --- the spec's capture API ---------------------------------------------------------------

    def capture_event(
        self,
        error_code: int,
        error_name: str,
        message: str,
        detail: Any = None,
        level: str = "error",
        *,
        status_code: int | None = None,
        exception: BaseException | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Capture one error by code (tags + fingerprint); returns the event id or None.

        The first five parameters are the original's, positional as there; *detail* lands in
        the ``error`` context, masked (with everything else) by ``before_send``.
        """
        if not self.initialized:
            return None
        sdk = self._sdk
        with self._guard, sdk.new_scope() as scope:
            declared = _declared(exception)
            _tag_scope(scope, error_code, error_name, status_code, declared=declared)
            for key, value in (tags or {}).items():
                scope.set_tag(str(key), str(value))
            scope.set_context(
                "error", _error_context(error_code, error_name, status_code, message, detail)
            )
            scope.level = level
            if exception is not None:
                event_id: str | None = sdk.capture_exception(exception)
            else:
                event_id = sdk.capture_message(message, level=level)
            return event_id
        return None

    def capture_exception(self, exception: BaseException, detail: Any = None) -> str | None:
        """Capture *exception* (tags/fingerprint read from it); returns the event id or None."""
        if not self.initialized:
            return None
        sdk = self._sdk
        with self._guard, sdk.new_scope() as scope:
            info = describe_exception(exception)
            if info is not None:
                code, name, status, declared = info
                _tag_scope(scope, code, name, status, declared=declared)
            if detail is not None:
                scope.set_context("error", {"detail": detail})
            event_id: str | None = sdk.capture_exception(exception)
            return event_id
        return None

    def add_breadcrumb(
        self,
        category: str,
        message: str,
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record a breadcrumb (masked by ``before_breadcrumb``) for the events that follow."""
        if not self.initialized:
            return
        with self._guard:
            self._sdk.add_breadcrumb(category=category, message=message, level=level, data=data)

    def configure_scope(self, data: dict[str, Any]) -> None:
        """Set ``tags``, ``user``, ``contexts``, ``level`` or extras on the current scope."""
        if not self.initialized:
            return
        with self._guard:
            scope = self._sdk.get_isolation_scope()
            for key, value in data.items():
                if key == "tags" and isinstance(value, Mapping):
                    for tag, tag_value in value.items():
                        scope.set_tag(str(tag), str(tag_value))
                elif key == "user" and isinstance(value, Mapping):
                    scope.set_user(dict(value))
                elif key == "contexts" and isinstance(value, Mapping):
                    for name, ctx in value.items():
                        scope.set_context(str(name), dict(ctx) if isinstance(ctx, Mapping) else {})
                elif key == "level" and isinstance(value, str):
                    scope.set_level(value)
                elif key == "extra" and isinstance(value, Mapping):
                    for extra, extra_value in value.items():
                        scope.set_extra(str(extra), extra_value)
                else:
                    scope.set_extra(str(key), value)

    # --- the error observer --------------------------------------------------------------------

    def observe(self, request: Request, error: HandledError) -> None:
        """Error observer: capture 5xx by code, breadcrumb 4xx; cheap, never raises."""
        if not self.initialized:
            return
        with self._guard:
            status = error.status_code
            if status >= 500 or self.config.sentry_capture_4xx:
                self._capture_handled(request, error)
            else:
                self._sdk.add_breadcrumb(
                    category=BREADCRUMB_CATEGORY,
                    type="error",
                    level="warning",
                    message=f"{error.error_code} {error.error_name}: {error.message}",
                    data={
                        "error_code": error.error_code,
                        "error_name": error.error_name,
                        "status_code": status,
                        "method": request.scope.get("method"),
                        "route": _route_path(request),
                    },
                )

    def _capture_handled(self, request: Request, error: HandledError) -> None:
        sdk = self._sdk
        declared = _declared(error.exception)
        with sdk.new_scope() as scope:
            _tag_scope(
                scope, error.error_code, error.error_name, error.status_code, declared=declared
            )
            scope.level = "error" if error.status_code >= 500 else "warning"
            context = _error_context(
                error.error_code, error.error_name, error.status_code, error.message, error.detail
            )
            context.update(method=request.scope.get("method"), route=_route_path(request))
            scope.set_context("error", context)
            sdk.capture_exception(error.exception)

    # --- hooks ------------------------------------------------------------------------------

    def _before_send(self, event: Any, hint: Any) -> Any:
        """Tag by error code (if nobody did) and mask the whole event; never raises."""
        with self._guard:
            return self.mask_event(_tag_event(event, hint))
        return scrub.minimal_event(event)  # never the unmasked event

    def _before_breadcrumb(self, crumb: Any, hint: Any) -> Any:
        """Mask a breadcrumb; one that cannot be masked is dropped, never sent raw."""
        with self._guard:
            return scrub.mask_breadcrumb(crumb, self.masker)
        return None

    def mask_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a Sentry event with every user-data field masked; ids left intact."""
        return scrub.mask_event(event, self.masker)


def _route_path(request: Request) -> str | None:
    """The route template (``/users/{user_id}``), never the raw path: paths can hold secrets."""
    return route_template(request.scope)


def _web_integrations() -> list[Any]:
    """Starlette/FastAPI integrations that leave 5xx capture to our observer."""
    found: list[Any] = []
    try:
        from sentry_sdk.integrations.starlette import StarletteIntegration

        found.append(StarletteIntegration(failed_request_status_codes=set()))
        from sentry_sdk.integrations.fastapi import FastApiIntegration

        found.append(FastApiIntegration(failed_request_status_codes=set()))
    except Exception:  # DidNotEnable (framework missing) or an older SDK: keep the defaults
        pass
    return found
