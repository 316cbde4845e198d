"""The examples of docs/API.md (error-core part) run, in order, in one namespace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastapi_error_codes import default_registry

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def core_examples() -> list[str]:
    text = API_MD.read_text("utf-8").split("## Monitoring & Metrics")[0]
    return _BLOCK.findall(text)


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
    namespace: dict[str, object] = {"__name__": "docs_api_examples"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{API_MD}:example-{index}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"example {index} of docs/API.md failed:\n{block}") from exc


def test_every_public_name_is_documented() -> None:
    import fastapi_error_codes

    text = API_MD.read_text("utf-8")
    for name in fastapi_error_codes.__all__:
        if name != "__version__":
            assert f"`{name}" in text, name
