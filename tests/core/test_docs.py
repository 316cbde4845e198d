"""The examples of docs/API.md (error-core part) run, in order, in one namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fastapi_error_codes import default_registry
from tests._docs import python_blocks, run_blocks

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def core_examples() -> list[str]:
    return python_blocks(API_MD.read_text("utf-8").split("## Monitoring & Metrics")[0])


@pytest.fixture
def fresh_default_registry() -> Iterator[None]:
    """The examples declare codes (301, ...) that examples/app.py declares too: isolate them."""
    saved = default_registry.all()
    default_registry.clear()
    try:
        yield
    finally:
        default_registry.clear()
        for info in saved:
            default_registry.register(info)


@pytest.mark.usefixtures("fresh_default_registry")
def test_api_examples_run() -> None:
    blocks = core_examples()
    assert len(blocks) >= 15
    run_blocks(blocks, API_MD)


def test_every_public_name_is_documented() -> None:
    import fastapi_error_codes

    text = API_MD.read_text("utf-8")
    for name in fastapi_error_codes.__all__:
        if name != "__version__":
            assert f"`{name}" in text, name
