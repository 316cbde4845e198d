"""The one place every handled error passes: observers registered per app.

The exception handlers of :func:`fastapi_error_codes.setup_exception_handler` build a
:class:`HandledError` for every error they answer and call :func:`notify`. Monitoring (metrics,
Sentry) registers observers with :func:`add_error_observer`; the error core imports none of
them. An observer runs inside the request, so it must be cheap and must not raise: a failing
observer is counted and logged once, never allowed to change the response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

__all__ = ["ErrorObserver", "HandledError", "add_error_observer", "get_error_observers", "notify"]

_log = logging.getLogger("fastapi_error_codes")

_STATE_KEY = "fastapi_error_codes_observers"


@dataclass(frozen=True, slots=True)
class HandledError:
    """What the handler answered for one error: code, name, status, message and the cause."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    detail: Any
    exception: BaseException


ErrorObserver = Callable[[Request, HandledError], None]


class _ObserverList(list[ErrorObserver]):
    """The observers of one app, with a count of their failures."""

    failures: int = 0
    logged: bool = False


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


def get_error_observers(app: ASGIApp) -> list[ErrorObserver]:
    """Return the observers registered on *app* (a copy)."""
    return list(_observers(app))


def notify(request: Request, error: HandledError) -> None:
    """Call every observer of the request's app; failures are counted, logged once, swallowed."""
    observers: _ObserverList | None = getattr(request.app.state, _STATE_KEY, None)
    if not observers:
        return
    for observer in observers:
        try:
            observer(request, error)
        except Exception:
            observers.failures += 1
            if not observers.logged:
                observers.logged = True
                _log.exception("fastapi_error_codes: an error observer failed (logged once)")
