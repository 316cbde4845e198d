"""Every test here leaves the global error registry as it found it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.examples._registry import restore_registry


@pytest.fixture(autouse=True)
def _leave_the_registry_as_found() -> Iterator[None]:
    yield from restore_registry()
