"""SentryIntegration: sentry-sdk's lifecycle per worker, the capture API and the observer policy."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..._guard import FailureGuard
from ..._sent import sent_record
from ...handlers import ERRORS_LOGGER
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
    "SKIPPED_FIELD",
    "CaptureBudget",
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

#: Name of the ``error`` context field (and tag, when non-zero) of a budgeted capture: how many
#: captures of the same error code the budget skipped since the previous one was sent.
SKIPPED_FIELD = "skipped_since_last_capture"

#: The logger our error handlers log every answered error on (handlers.py): with our
#: integration active, sentry-sdk's LoggingIntegration must not turn it into a second event.
_HANDLER_LOGGER = ERRORS_LOGGER

#: Attribute set on an exception our observer decided about (captured it, or the budget
#: skipped it): sentry-sdk's automatic re-capture of it (the ASGI middleware's, when Starlette
#: re-raises an unexpected exception after our handler answered it) is not even built.
_OBSERVED_ATTR = "__fastapi_error_codes_observed__"

#: Mechanisms of sentry-sdk's automatic captures of a request's exception (the ASGI middleware,
#: a log record such as uvicorn's "Exception in ASGI application"); an app's explicit
#: ``sentry_sdk.capture_exception`` (mechanism ``generic``) is never dropped.
_AUTOMATIC_MECHANISMS = frozenset({"asgi", "starlette", "fastapi", "logging"})

#: Error codes (budget keys) one worker tracks at most; expired windows are pruned beyond it.
_MAX_BUDGET_KEYS = 10_000


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


class _Window:
    """One budget key's window: when it ends, captures used in it, skips not yet reported."""

    __slots__ = ("end", "pending", "used")

    def __init__(self, end: float) -> None:
        self.end = end
        self.used = 1
        self.pending = 0


class CaptureBudget:
    """At most *budget* captures per key and *interval_s*; what it turns away is counted.

    A key's window opens at its first capture (or the first one after the previous window
    ended) and lasts *interval_s* on *clock* (monotonic: immune to wall-clock jumps). One short
    lock, no I/O: a decision costs about a microsecond. ``budget == 0`` means no budget.
    """

    __slots__ = ("_lock", "_windows", "budget", "clock", "interval_s", "skipped")

    def __init__(
        self, budget: int, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.interval_s = float(interval_s)
        self.clock = clock
        #: Captures skipped so far (cumulative).
        self.skipped = 0
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    @property
    def unbounded(self) -> bool:
        """True when every capture is allowed (``budget == 0``)."""
        return self.budget <= 0

    def take(self, key: Hashable) -> int | None:
        """None: skip this capture. Else it may go, and this many were skipped before it."""
        if self.budget <= 0:
            return 0
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= _MAX_BUDGET_KEYS:
                    self._prune(now)
                self._windows[key] = _Window(now + self.interval_s)
                return 0
            if now >= window.end:
                window.end = now + self.interval_s
                window.used = 0
            if window.used < self.budget:
                window.used += 1
                reported, window.pending = window.pending, 0
                return reported
            window.pending += 1
            self.skipped += 1
            return None

    def reset(self) -> None:
        """Forget every window and count (a forked worker starts afresh)."""
        self._lock = threading.Lock()  # one held across fork() would never be released here
        self._windows = {}
        self.skipped = 0

    def _prune(self, now: float) -> None:
        """Make room: drop ended windows (their unreported skips are lost), else all of them."""
        ended = [key for key, window in self._windows.items() if now >= window.end]
        for key in ended:
            del self._windows[key]
        if len(self._windows) >= _MAX_BUDGET_KEYS:
            self._windows.clear()


def _budget_key(error_code: int, exception: BaseException | None) -> Hashable:
    """Declared errors share a budget per code; unexpected ones (all 500) one per type."""
    if exception is not None and not _declared(exception):
        return (error_code, type(exception))
    return error_code


def _mark_observed(exception: BaseException | None) -> None:
    if exception is not None:
        # A type without a __dict__: at worst sentry-sdk's re-capture is built, then dropped.
        with contextlib.suppress(Exception):
            setattr(exception, _OBSERVED_ATTR, True)


def _observed(exception: object) -> bool:
    try:
        return getattr(exception, _OBSERVED_ATTR, False) is True
    except Exception:
        return False


def _drop_observed(event: Any, hint: Any) -> Any:
    """Global event processor: drop sentry-sdk's automatic capture of an observed exception.

    The fallback where the event could not be stopped before it was built (an SDK whose ASGI
    middleware or logging handler offers no hook): it runs after the event was built, but
    before it is serialised, masked and sent, so the budget holds all the same.
    """
    try:
        exc_info = hint.get("exc_info") if isinstance(hint, Mapping) else None
        exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
        if exc is None or not _observed(exc):
            return event
        values = (event.get("exception") or {}).get("values") or ()
        if any((v.get("mechanism") or {}).get("type") in _AUTOMATIC_MECHANISMS for v in values):
            return None
    except Exception:  # never break an event we do not understand
        pass
    return event


_installed: set[str] = set()
_install_lock = threading.Lock()


def _install_once(name: str, install: Callable[[], None]) -> None:
    """Run *install* once per process (what it patches or registers stays for good)."""
    with _install_lock:
        if name not in _installed:
            install()
            _installed.add(name)


def _register_drop_processor() -> None:
    from sentry_sdk.scope import add_global_event_processor

    add_global_event_processor(_drop_observed)


def _wrap_asgi_capture() -> None:
    """Skip the ASGI middleware's capture of an exception our observer already decided about.

    Starlette re-raises an unexpected exception after our handler answered it; sentry-sdk's
    ASGI middleware then captures it again. Building that event (frames, locals, source
    lines) costs more than anything else on the path, and dedupe drops it after our capture
    anyway — or would send it when the budget skipped ours. Other exceptions: as before.
    """
    try:
        from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
    except Exception:  # no ASGI integration in this SDK: nothing re-captures
        return
    original = getattr(SentryAsgiMiddleware, "_capture_request_exception", None)
    if original is None:  # an SDK without the hook: the event processor drops the event
        return

    def _capture_request_exception(self: Any, exc: Exception) -> Any:
        if _observed(exc):
            return None
        return original(self, exc)

    middleware: Any = SentryAsgiMiddleware  # patched in place: every app's middleware
    middleware._capture_request_exception = _capture_request_exception


def _not_observed_record(record: logging.LogRecord) -> bool:
    """Logging filter: False for a record whose exception our observer already decided about."""
    exc_info = record.exc_info
    return not (isinstance(exc_info, tuple) and len(exc_info) > 1 and _observed(exc_info[1]))


def _silence_duplicate_log_events(sdk: Any) -> None:
    """Our observer is the capture policy of our errors: no logging-integration duplicates.

    * The handlers log every answered error on ``fastapi_error_codes`` (5xx with the traceback)
      *before* notifying observers: ``ignore_logger`` keeps that line from becoming an event
      (and a breadcrumb: the observer leaves its own, with the route template, for 4xx).
    * A server logs an unexpected exception that Starlette re-raised after our handler (uvicorn:
      ``Exception in ASGI application`` on ``uvicorn.error``): the logging integration's event
      handler gets a filter that skips a record whose exception we decided about. Any other
      record of any logger reaches Sentry as before.
    """
    try:
        from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
    except Exception:  # an SDK without the logging integration: nothing to silence
        return
    ignore_logger(_HANDLER_LOGGER)
    integration = sdk.get_client().get_integration(LoggingIntegration)
    handler = getattr(integration, "_handler", None)  # its EventHandler (None: events off)
    if isinstance(handler, logging.Handler):
        handler.addFilter(_not_observed_record)  # else the event processor drops the event


#: sentry-sdk clients our own ``sentry_sdk.init`` created: any other active client is the app's,
#: reused as it is (never replaced). Weak: a closed and dropped client leaves the set.
_own_clients: weakref.WeakSet[Any] = weakref.WeakSet()
#: The app's clients our hooks were chained onto: once per client, however often we start.
_attached_clients: weakref.WeakSet[Any] = weakref.WeakSet()
#: Conflicts with the app's own Sentry setup already reported in this process.
_warned: set[str] = set()
_client_lock = threading.Lock()


def _app_client(sdk: Any) -> Any:
    """The active sentry-sdk client the app initialised itself (not our init), or None."""
    client = sdk.get_client()
    if client.is_active():
        with _client_lock:
            if client not in _own_clients:
                return client
    return None


def _remember_own_client(sdk: Any) -> None:
    """Note the client our ``sentry_sdk.init`` just created: ours to replace (after a fork)."""
    with _client_lock:
        _own_clients.add(sdk.get_client())


def _warn_once(key: str, message: str, *args: Any) -> None:
    """Log *message* as a WARNING on ``fastapi_error_codes``, the first time *key* comes up."""
    with _client_lock:
        if key in _warned:
            return
        _warned.add(key)
    _log.warning(message, *args)


def _dsn_parts(dsn: Any) -> tuple[Any, ...] | None:
    """What identifies a DSN (keys included: for comparison only, never logged), or None."""
    if not isinstance(dsn, str) or not dsn.strip():
        return None
    try:
        parts = urlsplit(dsn.strip())
        return (
            parts.scheme,
            parts.hostname,
            parts.port,
            parts.username,
            parts.password,
            parts.path.rstrip("/"),
        )
    except ValueError:
        return (dsn.strip(),)


def _dsn_label(dsn: Any) -> str:
    """Host and project id of a DSN, never its keys: what a log line may show of it."""
    if not isinstance(dsn, str) or not dsn.strip():
        return "no DSN"
    try:
        parts = urlsplit(dsn.strip())
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        return "an unparseable DSN"
    project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"host {host}, project {project or '?'}"


def _merge_integrations(theirs: Iterable[Any], ours: list[Any]) -> list[Any]:
    """The app's integrations, plus each of ours (Starlette, FastAPI) the app did not give."""
    merged = list(theirs)
    given = {getattr(integration, "identifier", None) for integration in merged}
    merged.extend(i for i in ours if getattr(i, "identifier", None) not in given)
    return merged


class SentryIntegration:
    """Sentry for one worker: capture by error code, PII masked, never in the request's way."""

    def __init__(
        self,
        config: MetricsConfig,
        *,
        init_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare (not start) Sentry; *init_options* go to ``sentry_sdk.init`` as well.

        *clock* (monotonic seconds) times the capture budget's intervals; tests pass their own.
        """
        self.config = config
        self._budget = CaptureBudget(
            config.sentry_capture_budget, config.sentry_budget_interval_s, clock
        )
        self._budget_pid = os.getpid()
        #: Called with 1 for each capture the budget skipped (e.g. to sum them fleet-wide);
        #: runs inside the failure guard, so a callback that raises is only counted.
        self.on_skipped: Callable[[int], None] | None = None
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
    def skipped(self) -> int:
        """Captures the budget skipped in this process so far (cumulative)."""
        return self._budget.skipped

    @property
    def budget(self) -> CaptureBudget:
        """The capture budget of :meth:`observe` (per error code and interval)."""
        return self._budget

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
        """Start sentry-sdk in this worker process; a second call (same process) is a no-op.

        A client the app initialised itself (``sentry_sdk.init`` before ours) is reused as it
        is, never replaced: its options stay the app's, our hooks are chained after its own.
        """
        if not self._enabled:
            return
        pid = os.getpid()
        with self._lock:
            if self._pid == pid and self._sdk is not None:
                return
            sdk = _import_sentry_sdk()
            client: Any = None
            looked = False  # whether the app's own client was looked for (and hooked) safely
            with self._guard:
                client = _app_client(sdk)
                if client is not None:
                    self._adopt(client)
                looked = True
            if not looked:  # the app's setup could not be read or hooked: leave it alone
                return
            if client is None:
                try:
                    sdk.init(**self._sentry_options())
                except Exception:  # a malformed DSN or option: degrade to "off", never crash
                    # A configuration error, not a best-effort one: its own line, each attempt.
                    _log.exception("fastapi_error_codes: sentry_sdk.init failed; Sentry stays off")
                    self._guard.failures += 1
                    return
            with self._guard:
                if client is None:
                    _remember_own_client(sdk)  # ours: replaced, not reused, after a fork
                # Our observer decides what of our errors is captured. Nothing else may build
                # a second event of one (a few ms each, for every 5xx, and sent whenever the
                # budget skipped ours): not the handlers' log line, not a server's log of a
                # re-raised exception, not the ASGI middleware's re-capture.
                _silence_duplicate_log_events(sdk)
                _install_once("drop_processor", _register_drop_processor)
                _install_once("asgi_capture", _wrap_asgi_capture)
            if self._budget_pid != pid:
                self._budget.reset()  # a forked child: its own windows, counts and lock
                self._budget_pid = pid
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
        # Ours < MetricsConfig.sentry_options < the constructor's init_options.
        extra = {**self.config.sentry_options, **self._init_options}
        their_integrations = extra.pop("integrations", None)
        options.update(extra)
        if their_integrations is not None:
            options["integrations"] = _merge_integrations(
                their_integrations, options["integrations"]
            )
        user_before_send = options.get("before_send")
        user_before_tx = options.get("before_send_transaction")
        user_before_crumb = options.get("before_breadcrumb")
        options["before_send"] = self._chain(user_before_send, self._before_send)
        options["before_send_transaction"] = self._chain(user_before_tx, self._before_send)
        options["before_breadcrumb"] = self._chain(user_before_crumb, self._before_breadcrumb)
        return options

    def _adopt(self, client: Any) -> None:
        """Use the app's own client: report conflicts once, chain our hooks onto it once.

        Its options (DSN, environment, release, sample rates, integrations...) stay as the app
        set them; only ``before_send``, ``before_send_transaction`` and ``before_breadcrumb``
        gain ours, after the app's own (masking has the final word, as with our own init).
        """
        options = client.options
        self._report_conflicts(options)
        with _client_lock:
            if client in _attached_clients:
                return
            hooks = {
                "before_send": self._chain(options.get("before_send"), self._before_send),
                "before_send_transaction": self._chain(
                    options.get("before_send_transaction"), self._before_send
                ),
                "before_breadcrumb": self._chain(
                    options.get("before_breadcrumb"), self._before_breadcrumb
                ),
            }
            options.update(hooks)
            _attached_clients.add(client)

    def _report_conflicts(self, options: Mapping[str, Any]) -> None:
        """Warn (once per process) where our config differs from the app's Sentry setup."""
        app_dsn = options.get("dsn")
        if _dsn_parts(app_dsn) != _dsn_parts(self.config.sentry_dsn):
            _warn_once(
                "dsn",
                "fastapi_error_codes: Sentry was already initialised by the app with another "
                "DSN (%s; MetricsConfig.sentry_dsn: %s): the app's client is used and "
                "MetricsConfig.sentry_dsn is ignored",
                _dsn_label(app_dsn),
                _dsn_label(self.config.sentry_dsn),
            )
        environment = self.config.sentry_environment
        app_environment = options.get("environment")
        if environment and environment != app_environment:
            _warn_once(
                "environment",
                "fastapi_error_codes: Sentry was already initialised by the app with "
                "environment %r: the app's client is used and MetricsConfig.sentry_environment "
                "%r is ignored",
                app_environment,
                environment,
            )
        ignored = sorted({*self.config.sentry_options, *self._init_options})
        if ignored:
            _warn_once(
                "options",
                "fastapi_error_codes: Sentry was already initialised by the app: the app's "
                "options win and these sentry_sdk.init options are ignored: %s",
                ", ".join(ignored),
            )

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
            scope.set_level(level)
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
        """Error observer: capture 5xx by code (within the budget), breadcrumb 4xx; never raises.

        The budget is checked first: a skipped capture costs a dict lookup under a short lock
        and never reaches sentry-sdk.
        """
        if not self.initialized:
            return
        with self._guard:
            status = error.status_code
            if error.response_started:  # the client got the status sent before the error
                info = describe_exception(error.exception)
                status = info[2] if info is not None else 500
            if status >= 500 or self.config.sentry_capture_4xx:
                skipped = self._budget.take(_budget_key(error.error_code, error.exception))
                if skipped is None:
                    _mark_observed(error.exception)
                    callback = self.on_skipped
                    if callback is not None:
                        callback(1)
                    return
                self._capture_handled(request, error, skipped)
                _mark_observed(error.exception)
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
                        "request_id": error.request_id,
                    },
                )

    def _capture_handled(self, request: Request, error: HandledError, skipped: int) -> None:
        sdk = self._sdk
        declared = _declared(error.exception)
        with sdk.new_scope() as scope:
            _tag_scope(
                scope, error.error_code, error.error_name, error.status_code, declared=declared
            )
            scope.set_level("error" if error.status_code >= 500 else "warning")
            context = _error_context(
                error.error_code, error.error_name, error.status_code, error.message, error.detail
            )
            context.update(method=request.scope.get("method"), route=_route_path(request))
            if not self._budget.unbounded:
                context[SKIPPED_FIELD] = skipped
                if skipped:
                    scope.set_tag(SKIPPED_FIELD, str(skipped))
            if error.request_id:
                scope.set_tag("request_id", error.request_id)
                context["request_id"] = error.request_id
            if error.trace_id:
                context["trace_id"] = error.trace_id
            scope.set_context("error", context)
            event_id = sdk.capture_exception(error.exception)
        record = sent_record(request.scope)
        if record is not None and isinstance(event_id, str):
            record.sentry_event_id = event_id  # the exemplar of the error's series links it

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
