"""The monitoring examples of docs/API.md run, and every public metrics name is documented."""

from __future__ import annotations

import re
from pathlib import Path

import fastapi_error_codes.metrics

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def monitoring_part() -> str:
    return API_MD.read_text("utf-8").split("## Monitoring & Metrics", 1)[1]


def test_monitoring_examples_run() -> None:
    blocks = _BLOCK.findall(monitoring_part())
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "docs_api_monitoring_examples"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{API_MD}:monitoring-example-{index}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"monitoring example {index} failed:\n{block}") from exc


def test_every_public_metrics_name_is_documented() -> None:
    text = monitoring_part()
    missing = [n for n in fastapi_error_codes.metrics.__all__ if f"`{n}" not in text]
    assert missing == []
