"""The one seam between the error core and monitoring: handled errors and their observers.

The exception handlers of :func:`fastapi_error_codes.setup_exception_handler` build a
:class:`HandledError` for every error they answer and call :func:`notify`. Monitoring (metrics,
Sentry, or an app's own code) registers observers with :func:`add_error_observer`; the error
core imports none of them. An observer runs inside the request, so it must be cheap and must
not raise: a failing observer is counted and logged once, never allowed to change the response.

``setup_exception_handler(app, metrics_config=...)`` hands its monitoring configuration to the
setup function that monitoring registered for that configuration's type with
:func:`register_monitoring`, so the dependency points from monitoring to the core only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.types import ASGIApp

if TYPE_CHECKING:
    from fastapi import FastAPI

from fastapi_error_codes._guard import FailureGuard
from fastapi_error_codes._sent import sent_record
from fastapi_error_codes._tree import app_chain, parent_of

__all__ = [
    "ErrorObserver",
    "HandledError",
    "MonitoringSetup",
    "add_error_observer",
    "get_error_observers",
    "notify",
    "register_monitoring",
    "remove_error_observer",
    "setup_monitoring",
]

_log = logging.getLogger("fastapi_error_codes")

_STATE_KEY = "fastapi_error_codes_observers"

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class HandledError:
    """What the handler answered for one error: code, name, status, message and the cause."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    detail: Any
    exception: BaseException
    #: True when the response had started before the error (a failing streaming body):
    #: ``status_code`` is then the status the client got, not the error's own.
    response_started: bool = False
    #: The request's id (sent back in ``X-Request-ID``) and its W3C trace id, when known.
    request_id: str | None = None
    trace_id: str | None = None


#: A callable the handlers call with the request and each error they answered.
ErrorObserver = Callable[[Request, HandledError], None]

#: What monitoring registers: installs itself on an app from its configuration.
MonitoringSetup = Callable[["FastAPI", Any], object]


class _ObserverList(list[ErrorObserver]):
    """The observers of one app, with the guard that counts their failures."""

    def __init__(self) -> None:
        super().__init__()
        self.guard = FailureGuard(
            _log, "fastapi_error_codes: an error observer failed (logged once)", logging.ERROR
        )


def _observers(app: Any) -> _ObserverList:
    state = app.state
    found = getattr(state, _STATE_KEY, None)
    if found is None:
        found = _ObserverList()
        setattr(state, _STATE_KEY, found)
    return found  # type: ignore[no-any-return,unused-ignore]


def add_error_observer(app: ASGIApp, observer: ErrorObserver) -> None:
    """Register *observer* to be called with every error the app's handlers answer."""
    observers = _observers(app)
    if observer not in observers:
        observers.append(observer)


def remove_error_observer(app: ASGIApp, observer: ErrorObserver) -> None:
    """Stop calling *observer* for the errors of *app* (nothing happens if it is not there)."""
    observers = _observers(app)
    if observer in observers:
        observers.remove(observer)


def get_error_observers(app: ASGIApp) -> list[ErrorObserver]:
    """Return the observers registered on *app* (a copy)."""
    return list(_observers(app))


def notify(request: Request, error: HandledError) -> None:
    """Call every observer of the request's app, and of the apps it is mounted in, once each.

    The outermost app with the library's handlers that the request entered is one of them
    even when no link leads there from the request's app.

    Failures are counted, logged once and swallowed.
    """
    scope = request.scope
    app = scope.get("app")
    sent = sent_record(scope)
    root = sent.root if sent is not None else app
    observers: _ObserverList | None = getattr(getattr(app, "state", None), _STATE_KEY, None)
    if root is app and parent_of(app) is None:  # the usual case: an app mounted nowhere
        if observers:
            guard = observers.guard
            for observer in observers:
                with guard:
                    observer(request, error)
        return
    chain = list(app_chain(app))
    if root not in chain:  # an app the links do not reach (behind an opaque wrapper, ...)
        chain.extend(app_chain(root))
    called: list[ErrorObserver] = []
    for current in chain:
        found: _ObserverList | None = getattr(current.state, _STATE_KEY, None)
        for observer in found or ():
            if observer in called:
                continue
            called.append(observer)
            with found.guard:  # type: ignore[union-attr]
                observer(request, error)


_setups: dict[type, MonitoringSetup] = {}


def register_monitoring(config_type: type[C], setup: Callable[[FastAPI, C], object]) -> None:
    """Let ``setup_exception_handler(app, metrics_config=...)`` install *config_type* configs."""
    _setups[config_type] = setup


def setup_monitoring(app: FastAPI, config: object) -> object:
    """Install the monitoring that *config*'s type registered; other types raise TypeError."""
    for klass in type(config).__mro__:
        setup = _setups.get(klass)
        if setup is not None:
            return setup(app, config)
    known = ", ".join(sorted(t.__qualname__ for t in _setups)) or "none registered"
    raise TypeError(
        f"metrics_config must be a monitoring configuration ({known}), got {type(config).__name__}"
    )
