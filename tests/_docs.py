"""Run the ```python blocks of a Markdown file: the docs' examples are tests too."""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of *text*, in order."""
    return _BLOCK.findall(text)


def run_blocks(blocks: list[str], source: Path, *, shared: bool = True) -> None:
    """Execute *blocks* in order (in one namespace if *shared*); name the one that fails."""
    namespace: dict[str, object] = {"__name__": f"docs_{source.stem}"}
    for index, block in enumerate(blocks):
        if not shared:
            namespace = {"__name__": f"docs_{source.stem}_{index}"}
        try:
            exec(compile(block, f"{source}:example-{index}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"example {index} of {source.name} failed:\n{block}") from exc
