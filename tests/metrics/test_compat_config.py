"""MetricsConfig as the original fastapi-error-code spells it: presets, env, validation."""

from __future__ import annotations

import os

import pytest

from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env
from fastapi_error_codes.metrics.config import MetricsPreset

DSN = "https://key@o1.ingest.sentry.io/1"
ORIGINAL_FIELDS = (
    "enabled",
    "collection_interval_ms",
    "max_events",
    "prometheus_enabled",
    "sentry_enabled",
    "sentry_dsn",
    "dashboard_enabled",
    "pii_patterns",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FEC_* or METRICS_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("FEC_", "METRICS_")):
            monkeypatch.delenv(name)


def test_max_events_range() -> None:
    with pytest.raises(ValueError, match="max_events must be at least 100"):
        MetricsConfig(max_events=50)
    with pytest.raises(ValueError, match="max_events must not exceed 1000000"):
        MetricsConfig(max_events=2_000_000)
    assert MetricsConfig(max_events=100).max_events == 100


def test_sentry_enabled_needs_a_dsn() -> None:
    with pytest.raises(ValueError, match="sentry_dsn is required when sentry_enabled is True"):
        MetricsConfig(sentry_enabled=True, sentry_dsn=None)
    assert MetricsConfig(sentry_enabled=False, sentry_dsn=None).sentry_dsn is None
    config = MetricsConfig(sentry_enabled=True, sentry_dsn=DSN)
    assert config.sentry_enabled and config.sentry_dsn == DSN


def test_preset_production() -> None:
    config = MetricsPreset.production(sentry_dsn=DSN)
    assert config.enabled is True
    assert config.collection_interval_ms == 30000
    assert config.max_events == 50000
    assert config.prometheus_enabled is True
    assert config.sentry_enabled is True
    assert config.sentry_dsn == DSN
    assert config.dashboard_enabled is True
    with pytest.raises(ValueError, match="sentry_dsn is required for production preset"):
        MetricsPreset.production(sentry_dsn=None)  # type: ignore[arg-type]
    # this library's addition: overrides on top of the preset
    fleet = MetricsPreset.production(sentry_dsn=DSN, redis_url="redis://redis:6379/0")
    assert fleet.redis_url == "redis://redis:6379/0" and fleet.max_events == 50000


def test_other_presets() -> None:
    dev = MetricsPreset.development()
    assert (dev.enabled, dev.collection_interval_ms, dev.max_events) == (True, 60000, 1000)
    assert dev.prometheus_enabled and dev.dashboard_enabled and not dev.sentry_enabled
    testing = MetricsPreset.testing()
    assert (testing.enabled, testing.max_events) == (False, 500)
    assert not (testing.prometheus_enabled or testing.sentry_enabled or testing.dashboard_enabled)
    off = MetricsPreset.disabled()
    assert not (off.enabled or off.prometheus_enabled or off.sentry_enabled)
    assert not off.dashboard_enabled


def test_get_config_from_env_reads_the_original_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METRICS_ENABLED", "false")
    monkeypatch.setenv("METRICS_COLLECTION_INTERVAL_MS", "30000")
    monkeypatch.setenv("METRICS_MAX_EVENTS", "5000")
    monkeypatch.setenv("METRICS_PROMETHEUS_ENABLED", "false")
    monkeypatch.setenv("METRICS_SENTRY_ENABLED", "true")
    monkeypatch.setenv("METRICS_SENTRY_DSN", DSN)
    monkeypatch.setenv("METRICS_DASHBOARD_ENABLED", "false")
    monkeypatch.setenv("METRICS_PII_PATTERNS", "email,ssn,credit_card")
    config = get_config_from_env()
    assert config.enabled is False
    assert config.collection_interval_ms == 30000
    assert config.max_events == 5000
    assert config.prometheus_enabled is False
    assert config.sentry_enabled is True
    assert config.sentry_dsn == DSN
    assert config.dashboard_enabled is False
    assert config.pii_patterns == ("email", "ssn", "credit_card")
    assert MetricsConfig.from_env() == config


def test_get_config_from_env_defaults() -> None:
    config = get_config_from_env()
    assert config.enabled is True
    assert config.collection_interval_ms == 60000
    assert config.max_events == 10000
    assert config.prometheus_enabled is True
    assert config.sentry_enabled is False
    assert config.dashboard_enabled is True


def test_ours_win_when_both_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_MAX_EVENTS", "5000")
    monkeypatch.setenv("FEC_MAX_EVENTS", "2000")
    monkeypatch.setenv("METRICS_ENABLED", "false")
    config = get_config_from_env()
    assert (config.max_events, config.enabled) == (2000, False)


def test_another_prefix_does_not_read_the_original_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METRICS_MAX_EVENTS", "5000")
    assert get_config_from_env(prefix="MYAPP_").max_events == 10000


def test_a_bad_original_value_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stricter than the original, which silently used the default for a non-number.
    monkeypatch.setenv("METRICS_MAX_EVENTS", "many")
    with pytest.raises(ValueError, match=r"METRICS_MAX_EVENTS='many' is not valid"):
        get_config_from_env()
    monkeypatch.setenv("METRICS_MAX_EVENTS", "50")
    with pytest.raises(ValueError, match=r"at least 100.*METRICS_MAX_EVENTS"):
        get_config_from_env()


def test_to_dict_has_the_original_keys_and_ours() -> None:
    data = MetricsConfig(enabled=True, collection_interval_ms=30000, max_events=5000).to_dict()
    for key in ORIGINAL_FIELDS:
        assert key in data
    assert (data["collection_interval_ms"], data["max_events"]) == (30000, 5000)
    assert isinstance(data["pii_patterns"], list)
    assert data["redis_url"] is None and data["namespace"] == "fastapi_errors"


def test_equality() -> None:
    assert MetricsConfig(enabled=True, max_events=5000) == MetricsConfig(max_events=5000)
    assert MetricsConfig(max_events=5000) != MetricsConfig(enabled=False, max_events=5000)
