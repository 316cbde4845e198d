"""Helpers shared by the example tests."""

from __future__ import annotations

import re

#: One sample line of the Prometheus text format: name, optional labels, value.
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse Prometheus text into {(name, labels): value} (no comments, no timestamps)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        out[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return out


def by_code(text: str) -> dict[int, float]:
    """The ``fastapi_errors_by_code`` values per error code (summed over statuses)."""
    result: dict[int, float] = {}
    for (name, labels), value in samples(text).items():
        if name == "fastapi_errors_by_code":
            code = int(dict(labels)["error_code"])
            result[code] = result.get(code, 0) + value
    return result


def total(text: str) -> float:
    """The ``fastapi_errors_total`` value."""
    return samples(text)[("fastapi_errors_total", frozenset())]
