"""The error core imports none of the optional extras and not the metrics package."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fastapi_error_codes

CHECK = """
import sys
import fastapi_error_codes, fastapi_error_codes.testing, fastapi_error_codes.openapi
banned = ("redis", "prometheus_client", "sentry_sdk", "fastapi_error_codes.metrics")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in banned or m.startswith(banned[-1]))
print(",".join(loaded))
"""


def test_core_imports_no_extras() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_all_is_sorted_and_complete() -> None:
    names = fastapi_error_codes.__all__

    def isort_style(name: str) -> tuple[int, str]:
        # ruff's RUF022 order: CONSTANTS, then Classes, then functions and the rest.
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(names) == sorted(names, key=isort_style)
    for name in names:
        assert hasattr(fastapi_error_codes, name), name
    assert not any("metric" in name.lower() for name in names)


def test_monitoring_names_load_from_the_package_on_first_use() -> None:
    """The original project's ``from fastapi_error_codes import MetricsConfig`` works."""
    code = (
        "import sys, fastapi_error_codes as f\n"
        "assert 'fastapi_error_codes.metrics' not in sys.modules\n"
        "from fastapi_error_codes import MetricsConfig, MetricsPreset\n"
        "from fastapi_error_codes.metrics import MetricsConfig as M\n"
        "assert MetricsConfig is M\n"
        "assert 'MetricsPreset' in dir(f)\n"
        "for name in f.MONITORING_NAMES:\n"
        "    getattr(f, name)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = fastapi_error_codes.NoSuchName  # type: ignore[attr-defined]
