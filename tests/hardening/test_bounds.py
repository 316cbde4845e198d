"""Size bounds of what leaves the worker, and config values that must be refused."""

from __future__ import annotations

import json

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig

CAP = 1024


@pytest.mark.parametrize(
    "detail",
    [
        {"ids": list(range(100_000))},
        {f"field{i}": "v" * 50 for i in range(20_000)},
        [["nested"] * 1000] * 100,
    ],
    ids=["long list", "many keys", "nested lists"],
)
def test_a_stored_event_is_bounded_whatever_the_detail(detail: object) -> None:
    collector = ErrorMetricsCollector(
        MetricsConfig.testing(flush_interval_ms=60_000, max_text_length=CAP)
    )
    try:
        collector.record(460, "InvalidIds", 400, "bad ids", detail, "/orders", "POST")
        assert collector.flush()
        (event,) = collector.store.recent_events(1)
    finally:
        collector.close(timeout=1)
    assert event["m"] == "bad ids"
    assert len(json.dumps(event["d"], separators=(",", ":"))) <= 4 * CAP  # as stored


@pytest.mark.parametrize(
    ("namespace", "needle"),
    [
        ("{tag}", "braces"),
        ("a}b", "braces"),
        ("ns*", "not allowed"),
        ("ns?", "not allowed"),
        ("ns[ab]", "not allowed"),
        ("ns with space", "not allowed"),
        ("ns\nfoo", "not allowed"),
        ("", "not allowed"),
        ("n" * 65, "not allowed"),
    ],
)
def test_namespaces_that_could_escape_their_keys_are_refused(namespace: str, needle: str) -> None:
    # Glob characters would widen the SCAN of clear(); braces would change the hash tag.
    with pytest.raises(ValueError, match=needle):
        MetricsConfig(namespace=namespace)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("auth_token", "short"),
        ("max_series", 0),
        ("max_series", True),
        ("max_text_length", 8),
        ("max_pending", 10),
        ("max_events", -1),
        ("redis_timeout_ms", 0),
        ("redis_max_connections", 1),
        ("retention_s", 10),
        ("metrics_path", "metrics"),
        ("dashboard_prefix", "/api/metrics/"),
        ("redis_url", "http://127.0.0.1:6379"),
    ],
)
def test_unsafe_config_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        MetricsConfig(**{field: value})
