"""The route template of a request: what errors are counted and logged under, never raw paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi_error_codes._tree import mount_prefix

__all__ = ["route_template"]


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's full template (``/admin/v1/users/{user_id}``), never the raw path.

    FastAPI 0.137 and later keep an included router's route, without the ``include_router``
    prefix, in ``scope["route"]``; the full template is on the effective route context it
    records beside it. Older versions have only ``scope["route"]``, already prefixed. In an
    app mounted in another one, the template of its mount point comes first.
    """
    path: object = None
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, Mapping):
        path = getattr(fastapi_scope.get("effective_route_context"), "path", None)
    if not isinstance(path, str) or not path:
        path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return None
    return mount_prefix(scope) + path
