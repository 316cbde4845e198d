"""The monitoring examples of docs/API.md run, and every public metrics name is documented."""

from __future__ import annotations

from pathlib import Path

import fastapi_error_codes.metrics
from tests._docs import python_blocks, run_blocks

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def monitoring_part() -> str:
    return API_MD.read_text("utf-8").split("## Monitoring & Metrics", 1)[1]


def test_monitoring_examples_run() -> None:
    blocks = python_blocks(monitoring_part())
    assert len(blocks) >= 3
    run_blocks(blocks, API_MD)


def test_every_public_metrics_name_is_documented() -> None:
    text = monitoring_part()
    missing = [n for n in fastapi_error_codes.metrics.__all__ if f"`{n}" not in text]
    assert missing == []
