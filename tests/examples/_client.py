"""Helpers shared by the example tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse Prometheus text into {(name, labels): value}, with prometheus_client's parser.

    Label values may hold any character (route templates hold braces), so no regex here.
    """
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


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
