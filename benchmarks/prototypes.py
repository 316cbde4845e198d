"""Benchmark-only prototypes of speed changes to files this benchmark does not own.

``python -m benchmarks --rows 10,11 --prototypes`` (or ``FECB_PROTOTYPES=1``) runs the
in-process rows with these applied, to measure what they would save before anyone changes the
library. Each keeps the library's behaviour; none is part of the library.

1. ``observer-lookup``: an attribute an app's ``state`` does not have costs ~1.8 µs to look up
   (Starlette's ``State.__getattr__`` raises ``AttributeError``, ``getattr`` catches it).
   ``observers.notify`` does it for every error of an app without observers (metrics off):
   ``getattr(app.state, "fastapi_error_codes_observers", None)``. The prototype reads
   ``state._state`` (its dict), as ``_tree._link`` does since commit fc349aa.
2. ``bound-handler``: Starlette checks ``is_async_callable(handler)`` for every handled
   exception; for the ``ErrorResponder`` *instance* that is two ``inspect`` checks (~1.3 µs),
   for its bound ``__call__`` one (~0.5 µs). The prototype registers the bound method
   (``handlers._install``; ``_replaceable`` already recognises it as the library's).
"""

from __future__ import annotations

import os
from typing import Any

PROTOTYPES = ("observer-lookup", "bound-handler")
_applied: list[str] = []


def wanted() -> bool:
    """Whether this run applies the prototypes (``FECB_PROTOTYPES=1``)."""
    return os.environ.get("FECB_PROTOTYPES", "") not in ("", "0")


def applied() -> list[str]:
    """The prototypes applied in this process."""
    return list(_applied)


def install() -> list[str]:
    """Apply the process-wide prototype (once); the names of all of them."""
    if not _applied:
        _observer_lookup()
        _applied.extend(PROTOTYPES)
    return applied()


def _observer_lookup() -> None:
    from fastapi_error_codes import _tree, handlers, observers

    original = observers.notify

    def notify(request: Any, error: Any) -> None:
        scope = request.scope
        app = scope.get("app")
        values = getattr(getattr(app, "state", None), "_state", None)
        sent = observers.sent_record(scope)
        root = sent.root if sent is not None else app
        if isinstance(values, dict) and root is app and _tree.parent_of(app) is None:
            found = values.get(observers._STATE_KEY)
            if found:
                guard = found.guard
                for observer in found:
                    with guard:
                        observer(request, error)
            return
        original(request, error)

    handlers.notify = notify  # the name the responder calls


def adjust_app(app: Any) -> None:
    """Per app, after the setup and before serving: register the bound handler."""
    if not _applied:
        return
    from fastapi_error_codes.handlers import ErrorResponder

    for key, handler in list(app.exception_handlers.items()):
        if isinstance(handler, ErrorResponder):
            app.exception_handlers[key] = handler.__call__
    app.middleware_stack = None
