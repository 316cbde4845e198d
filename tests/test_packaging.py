"""The wheel ships the package data the code loads at run time (script, page, py.typed)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHIPPED = (
    "fastapi_error_codes/py.typed",
    "fastapi_error_codes/metrics/stores/apply_batch.lua",
    "fastapi_error_codes/metrics/dashboard/static/dashboard.html",
)


def test_the_wheel_holds_the_package_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("fastapi_error_codes-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [name for name in SHIPPED if name not in names] == []
