"""Keep the examples' declared errors out of the global registry of other tests.

Importing an example registers its errors in ``default_registry`` (as a user's app does).
Tests elsewhere declare their own classes with the same natural codes (``UserNotFound`` is
301 in docs/API.md too), so the example tests import the examples lazily, inside tests, and
put the registry back as they found it afterwards.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

from fastapi_error_codes import default_registry


def example(name: str) -> ModuleType:
    """Import ``examples.<name>`` (inside a test, never at collection time)."""
    return importlib.import_module(f"examples.{name}")


def restore_registry() -> Iterator[None]:
    """Generator for an autouse fixture: the registry after a test is the one before it."""
    saved = default_registry.all()
    yield
    default_registry.clear()
    for info in saved:
        default_registry.register(info)
