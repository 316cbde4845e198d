"""The app tree: sub-applications mounted under an app whose errors the library answers.

Starlette gives every mounted application (``app.mount("/admin", sub)``) its own middleware
stack, exception handlers and ``state``: an error raised in ``sub`` never reaches the handlers
of the app it is mounted in. So when the middleware stack of an app with our handlers is built
(at its lifespan startup or first request, after every ``mount``), :func:`install_build_hooks`
runs its *build hooks*: the first one walks the app's mounts and links each mounted
application to the app it is mounted in (:func:`parent_of`), with the path template of the
mount point; the error handlers adopt a linked app that has none of its own, and monitoring
adopts it too (:func:`on_mount`). Observers and route templates then follow the links:
:func:`app_chain` and :func:`mount_prefix`.

Only Starlette applications are linked (a ``FastAPI`` app, possibly behind a middleware wrapper
that keeps it as ``.app``); a plain ``Router`` mounted with ``Mount(routes=...)`` runs inside
the app's own stack and needs no link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Host, Mount, Router

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.types import ASGIApp

__all__ = [
    "LINK_ATTR",
    "MountLink",
    "add_build_hook",
    "add_stack_wrapper",
    "app_chain",
    "install_build_hooks",
    "link_mounts",
    "mount_prefix",
    "mounted_apps",
    "on_mount",
    "parent_of",
]

#: ``app.state`` attribute of a mounted app: its :class:`MountLink`.
LINK_ATTR = "fastapi_error_codes_mounted_in"
#: ``app.state`` attribute: the build hooks of an app (see :func:`install_build_hooks`).
_HOOKS_ATTR = "fastapi_error_codes_build_hooks"
#: ``app.state`` attribute: what wraps the app's built middleware stack (outermost last).
_WRAPPERS_ATTR = "fastapi_error_codes_stack_wrappers"
#: Attribute on the app object marking that its ``build_middleware_stack`` runs the hooks.
_WRAPPED_ATTR = "_fastapi_error_codes_build_wrapped"

#: How deep links are followed (mount cycles are impossible in practice, but stay bounded).
_MAX_DEPTH = 16
#: How many ``.app`` wrappers (middleware instances) are looked through to find an app.
_MAX_WRAPPERS = 8

_PARAM_RE = re.compile(r"\{[^}]*\}")

BuildHook = Callable[[Starlette], None]
MountHook = Callable[[Starlette, Starlette], None]


@dataclass(slots=True)
class MountLink:
    """Where an app is mounted: the app it is mounted in and the path templates it is at."""

    parent: Starlette
    templates: list[str] = field(default_factory=list)
    _patterns: list[re.Pattern[str]] = field(default_factory=list)

    def add(self, template: str) -> None:
        """Record one more mount point (an app may be mounted at several paths)."""
        if template not in self.templates:
            self.templates.append(template)
            self._patterns.append(_template_pattern(template))

    def template_for(self, concrete: str) -> tuple[str, str]:
        """The template of the mount point a request came through, and *concrete* less it.

        *concrete* is the request's concrete prefix up to this mount point; its end is the
        part this mount matched (``/org/42/admin`` ends with ``/admin``).
        """
        # Longest first: of /v2 and /beta/v2, a request through /beta/v2 is filed there.
        candidates = sorted(zip(self.templates, self._patterns, strict=True), key=_longest)
        for template, pattern in candidates:
            found = pattern.search(concrete)
            if found is not None:
                return template, concrete[: found.start()]
        return (self.templates[0] if self.templates else ""), concrete


def _longest(item: tuple[str, re.Pattern[str]]) -> int:
    return -len(item[0])


def _template_pattern(template: str) -> re.Pattern[str]:
    """A template as a pattern matching the end of a concrete path (``{id}``: one segment)."""
    parts = _PARAM_RE.split(template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts) + r"\Z")


def _link(app: object) -> MountLink | None:
    """Where *app* is mounted, once the app it is mounted in was built; else None."""
    state = getattr(app, "state", None)
    # Starlette's State keeps its attributes in ``_state``: one lookup, where getattr on a
    # missing one raises and catches inside State (most of this call's cost, every request).
    values = getattr(state, "_state", None)
    link = values.get(LINK_ATTR) if isinstance(values, dict) else getattr(state, LINK_ATTR, None)
    return link if isinstance(link, MountLink) else None


def parent_of(app: object) -> Starlette | None:
    """The app *app* is mounted in, once that app's middleware stack was built; else None."""
    link = _link(app)
    return link.parent if link is not None else None


def app_chain(app: object) -> Iterator[Any]:
    """*app*, then the app it is mounted in, and so on up to the outermost one."""
    current: object | None = app
    for _ in range(_MAX_DEPTH):
        if current is None:
            return
        yield current
        current = parent_of(current)


def mount_prefix(scope: Mapping[str, Any]) -> str:
    """The path template the request's app is mounted at (``/admin``), or ``""``."""
    app = scope.get("app")
    if _link(app) is None:
        return ""
    # The concrete prefix of this request: its root_path less the server's own root path.
    root_path = scope.get("root_path", "")
    app_root = scope.get("app_root_path", "")
    concrete = root_path[len(app_root) :] if isinstance(root_path, str) else ""
    parts: list[str] = []
    for current in app_chain(app):
        link = _link(current)
        if link is None:
            break
        template, concrete = link.template_for(concrete)
        parts.append(template)
    return "".join(reversed(parts))


def _unwrap(app: object) -> Starlette | None:
    """The Starlette app behind *app* (itself, or behind a few middleware wrappers)."""
    current = app
    for _ in range(_MAX_WRAPPERS):
        if isinstance(current, Starlette):
            return current
        current = getattr(current, "app", None)
        if current is None:
            return None
    return None


def mounted_apps(app: Starlette) -> Iterator[tuple[str, Starlette]]:
    """Every app mounted directly in *app* (through plain routers too), with its template."""

    def walk(routes: list[Any], prefix: str, depth: int) -> Iterator[tuple[str, Starlette]]:
        if depth > _MAX_DEPTH:
            return
        for route in routes:
            if isinstance(route, Mount):
                template = prefix + route.path
            elif isinstance(route, Host):
                template = prefix
            else:
                continue
            inner = getattr(route, "app", None)
            sub = _unwrap(inner)
            if sub is not None and sub is not app:
                yield template, sub
            elif isinstance(inner, Router):
                yield from walk(list(inner.routes), template, depth + 1)
        for route in routes:  # FastAPI's included routers (0.137 and later) keep their own
            router = getattr(route, "original_router", None)
            if isinstance(router, Router):
                context = getattr(route, "include_context", None)
                included = getattr(context, "prefix", "") or ""
                yield from walk(list(router.routes), prefix + included, depth + 1)

    yield from walk(list(app.router.routes), "", 0)


_mount_hooks: list[MountHook] = []


def on_mount(hook: MountHook) -> None:
    """Call ``hook(parent, sub)`` for each app found mounted in an app with our handlers."""
    if hook not in _mount_hooks:
        _mount_hooks.append(hook)


def link_mounts(app: Starlette) -> None:
    """Link every app mounted in *app* to it and run the mount hooks (a build hook).

    The hooks run at every build (they are idempotent): a second ``setup_exception_handler``
    reaches the apps mounted before it.
    """
    found: list[Starlette] = []
    for template, sub in mounted_apps(app):
        link = _link(sub)
        if link is None or link.parent is not app:
            link = MountLink(app)
            setattr(sub.state, LINK_ATTR, link)
        link.add(template)
        if sub not in found:
            found.append(sub)
    for sub in found:
        for hook in list(_mount_hooks):
            hook(app, sub)


def _add_once(app: Starlette, attr: str, item: Any) -> None:
    """Append *item* to the list on ``app.state.<attr>`` (made if missing), unless there."""
    items: list[Any] | None = getattr(app.state, attr, None)
    if items is None:
        items = []
        setattr(app.state, attr, items)
    if item not in items:
        items.append(item)
    install_build_hooks(app)


def add_build_hook(app: Starlette, hook: BuildHook) -> None:
    """Run ``hook(app)`` whenever *app*'s middleware stack is built (startup, first request)."""
    _add_once(app, _HOOKS_ATTR, hook)


def add_stack_wrapper(app: Starlette, wrap: Callable[[ASGIApp, Starlette], ASGIApp]) -> None:
    """Wrap *app*'s built middleware stack in ``wrap(stack, app)`` (an ASGI middleware), once."""
    _add_once(app, _WRAPPERS_ATTR, wrap)


def install_build_hooks(app: Starlette) -> None:
    """Make *app* run its build hooks before building its middleware stack (once)."""
    if getattr(app, _WRAPPED_ATTR, False):
        return
    original: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        for hook in list(getattr(app.state, _HOOKS_ATTR, None) or ()):
            hook(app)
        stack = original()
        for wrap in list(getattr(app.state, _WRAPPERS_ATTR, None) or ()):
            stack = wrap(stack, app)
        return stack

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
    setattr(app, _WRAPPED_ATTR, True)
    if app.middleware_stack is not None:  # already serving: rebuild at the next call
        app.middleware_stack = None
