"""Every example of docs/MIGRATING.md runs, each in a fresh interpreter.

A fresh interpreter per run keeps the instrumentator's metrics (registered on
prometheus_client's global registry) and the examples' declared error codes out of this
test process.
"""

from __future__ import annotations

import subprocess
import sys

from tests._docs import python_blocks
from tests._servers import repo_root

MIGRATING = repo_root() / "docs" / "MIGRATING.md"

RUNNER = """
import sys
from pathlib import Path
from tests._docs import python_blocks, run_blocks
path = Path(sys.argv[1])
blocks = python_blocks(path.read_text("utf-8"))
run_blocks([blocks[int(sys.argv[2])]], path)
"""


def test_migrating_examples_run() -> None:
    blocks = python_blocks(MIGRATING.read_text("utf-8"))
    assert len(blocks) >= 2
    for index in range(len(blocks)):
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(MIGRATING), str(index)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=repo_root(),
        )
        assert result.returncode == 0, f"example {index}:\n{result.stderr[-4000:]}"
