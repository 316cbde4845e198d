"""MetricsConfig: the spec's defaults, presets, validation and environment loading."""

from __future__ import annotations

import dataclasses

import pytest

from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env
from fastapi_error_codes.metrics.config import MAX_EVENTS_RANGE, MetricsPreset


def test_spec_defaults() -> None:
    c = MetricsConfig()
    assert (c.enabled, c.collection_interval_ms, c.max_events) == (True, 60000, 10000)
    assert (c.prometheus_enabled, c.sentry_enabled, c.sentry_dsn) == (True, False, None)
    assert (c.dashboard_enabled, c.pii_patterns) == (True, ())
    assert (c.redis_url, c.namespace, c.flush_interval_ms) == (None, "fastapi_errors", 1000)
    assert (c.max_series, c.metrics_path, c.dashboard_prefix) == (1000, "/metrics", "/api/metrics")
    assert c.auth_token is None


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MetricsConfig().enabled = False  # type: ignore[misc]


def test_presets() -> None:
    assert MetricsConfig.development().redis_url is None
    assert MetricsConfig.production(redis_url="redis://r:6379/0").redis_url == "redis://r:6379/0"
    assert MetricsConfig.testing().flush_interval_ms < 1000
    off = MetricsConfig.disabled()
    assert not (
        off.enabled or off.prometheus_enabled or off.dashboard_enabled or off.sentry_enabled
    )


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("namespace", "{evil}", "braces"),
        ("namespace", "has space", "letters, digits"),
        ("redis_url", "http://x", "redis://"),
        ("max_series", 0, ">= 1"),
        ("flush_interval_ms", True, "number"),
        ("collection_interval_ms", 1500, "multiple of 1000"),
        ("metrics_path", "metrics", "start with '/'"),
        ("auth_token", "short", "16 characters"),
        ("pii_patterns", "email", "list of non-empty strings"),
        ("enabled", "yes", "True or False"),
        ("max_events", 99, "at least 100 .*from 100 to 1000000"),
        ("max_events", 1_000_001, "not exceed 1000000 .*from 100 to 1000000"),
        ("max_events", 500.0, "whole number from 100 to 1000000"),
        ("max_events", True, "whole number"),
        ("sentry_enabled", True, "sentry_dsn is required when sentry_enabled is True"),
    ],
)
def test_bad_values_name_what_is_allowed(field: str, value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        MetricsConfig(**{field: value})  # type: ignore[arg-type]


def test_every_redis_scheme_is_accepted() -> None:
    for url in (
        "redis://h:6379/0",
        "rediss://h:6380/1",
        "unix:///run/redis.sock",
        "redis+cluster://h:7000",
        "redis+sentinel://s1:26379,s2:26379/mymaster/0",
    ):
        assert MetricsConfig(redis_url=url).redis_url == url


def test_from_env() -> None:
    env = {
        "FEC_REDIS_URL": "redis://r:6379/0",
        "FEC_FLUSH_INTERVAL_MS": "250",
        "FEC_SENTRY_ENABLED": "true",
        "FEC_SENTRY_DSN": "https://k@o.ingest.example/1",
        "FEC_PII_PATTERNS": "custom_field, national_id",
        "FEC_AUTH_TOKEN": "",
        "UNRELATED": "x",
    }
    c = get_config_from_env(env)
    assert c.redis_url == "redis://r:6379/0"
    assert c.flush_interval_ms == 250
    assert c.sentry_enabled is True
    assert c.sentry_dsn == "https://k@o.ingest.example/1"
    assert c.pii_patterns == ("custom_field", "national_id")
    assert c.auth_token is None
    assert get_config_from_env({}) == MetricsConfig()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"FEC_FLUSH_INTERVAL_MS": "soon"}, "FEC_FLUSH_INTERVAL_MS"),
        ({"FEC_ENABLED": "maybe"}, "FEC_ENABLED"),
        ({"FEC_NAMESPACE": "{x}"}, "FEC_NAMESPACE"),
    ],
)
def test_bad_env_names_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        get_config_from_env(env)


def test_immutable_and_hashable() -> None:
    config = MetricsConfig(pii_patterns=["national_id"])
    assert config.pii_patterns == ("national_id",)
    with pytest.raises(AttributeError):
        config.pii_patterns.append("x")  # type: ignore[attr-defined]
    assert hash(config) == hash(MetricsConfig(pii_patterns=("national_id",)))
    assert len({config, MetricsConfig(pii_patterns=("national_id",)), MetricsConfig()}) == 2


def test_from_env_is_the_same_loader_as_get_config_from_env() -> None:
    env = {"FEC_MAX_SERIES": "50", "FEC_PII_PATTERNS": "a,b"}
    assert MetricsConfig.from_env(env) == get_config_from_env(env)
    assert MetricsConfig.from_env(env).pii_patterns == ("a", "b")


def test_config_repr_hides_secrets() -> None:
    config = MetricsConfig(
        redis_url="redis://:hunter2@redis:6379/0",
        auth_token="a-very-secret-token-value",
        sentry_dsn="https://key@sentry.example/1",
    )
    text = repr(config)
    for secret in ("hunter2", "a-very-secret-token-value", "key@sentry"):
        assert secret not in text


def test_max_events_bounds_are_allowed() -> None:
    low, high = MAX_EVENTS_RANGE
    assert (low, high) == (100, 1_000_000)
    assert MetricsConfig(max_events=low).max_events == low
    assert MetricsConfig(max_events=high).max_events == high


def test_sentry_needs_a_dsn() -> None:
    with pytest.raises(ValueError, match="sentry_dsn is required"):
        MetricsConfig(sentry_enabled=True, sentry_dsn="")
    with pytest.raises(ValueError, match=r"sentry_dsn is required.*FEC_SENTRY_ENABLED"):
        get_config_from_env({"FEC_SENTRY_ENABLED": "true"})
    assert MetricsConfig(sentry_dsn="https://k@h/1").sentry_enabled is False  # DSN alone: off


def test_our_presets_stay_valid() -> None:
    for config in (
        MetricsConfig(),
        MetricsConfig.development(),
        MetricsConfig.production(),
        MetricsConfig.testing(),
        MetricsConfig.disabled(),
    ):
        assert MAX_EVENTS_RANGE[0] <= config.max_events <= MAX_EVENTS_RANGE[1]
        assert not config.sentry_enabled


def test_metrics_preset_values() -> None:
    dev = MetricsPreset.development()
    assert (dev.enabled, dev.collection_interval_ms, dev.max_events) == (True, 60000, 1000)
    assert (dev.prometheus_enabled, dev.sentry_enabled, dev.dashboard_enabled) == (
        True,
        False,
        True,
    )
    prod = MetricsPreset.production("https://k@h/1")
    assert (prod.enabled, prod.collection_interval_ms, prod.max_events) == (True, 30000, 50000)
    assert (prod.sentry_enabled, prod.sentry_dsn) == (True, "https://k@h/1")
    assert prod.prometheus_enabled and prod.dashboard_enabled
    test = MetricsPreset.testing()
    assert (test.enabled, test.max_events) == (False, 500)
    assert not (test.prometheus_enabled or test.sentry_enabled or test.dashboard_enabled)
    assert MetricsPreset.disabled() == MetricsConfig.disabled()


def test_metrics_preset_overrides_and_errors() -> None:
    prod = MetricsPreset.production("https://k@h/1", redis_url="redis://r:6379/0")
    assert prod.redis_url == "redis://r:6379/0" and prod.max_events == 50000
    assert MetricsPreset.development(max_events=200).max_events == 200
    assert MetricsPreset.testing(namespace="t").namespace == "t"
    assert MetricsPreset.disabled(namespace="off").namespace == "off"
    for dsn in ("", None):
        with pytest.raises(ValueError, match="sentry_dsn is required for production preset"):
            MetricsPreset.production(dsn)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_events"):
        MetricsPreset.development(max_events=10)
    with pytest.raises(TypeError):
        MetricsPreset.testing(colour="red")


def test_to_dict_has_every_field_and_round_trips() -> None:
    config = MetricsConfig(pii_patterns=["iban"], redis_url="redis://r:6379/0")
    data = config.to_dict()
    assert list(data) == [f.name for f in dataclasses.fields(MetricsConfig)]
    assert data["pii_patterns"] == ["iban"] and type(data["pii_patterns"]) is list
    assert data["redis_url"] == "redis://r:6379/0"
    assert MetricsConfig.from_dict(data) == config
    assert config.copy() == config and config.copy() is not config
    assert config.update(max_events=200).max_events == 200
    with pytest.raises(ValueError, match="unknown keys colour; allowed: enabled, "):
        MetricsConfig.from_dict({"colour": "red"})


def test_original_variables() -> None:
    env = {
        "METRICS_ENABLED": "false",
        "METRICS_COLLECTION_INTERVAL_MS": "30000",
        "METRICS_MAX_EVENTS": "5000",
        "METRICS_PROMETHEUS_ENABLED": "false",
        "METRICS_SENTRY_ENABLED": "true",
        "METRICS_SENTRY_DSN": "https://k@h/1",
        "METRICS_DASHBOARD_ENABLED": "false",
        "METRICS_PII_PATTERNS": "email, ssn",
    }
    assert get_config_from_env(env) == MetricsConfig(
        enabled=False,
        collection_interval_ms=30000,
        max_events=5000,
        prometheus_enabled=False,
        sentry_enabled=True,
        sentry_dsn="https://k@h/1",
        dashboard_enabled=False,
        pii_patterns=("email", "ssn"),
    )
    assert set(MetricsConfig.legacy_env) == set(env)
    # only the original's eight fields have METRICS_ names
    assert get_config_from_env({"METRICS_NAMESPACE": "x"}) == MetricsConfig()


def test_ours_win_and_errors_name_the_variable_that_held_the_value() -> None:
    env = {"METRICS_MAX_EVENTS": "5000", "FEC_MAX_EVENTS": "700"}
    assert get_config_from_env(env).max_events == 700
    assert get_config_from_env(env, prefix="APP_") == MetricsConfig()
    with pytest.raises(ValueError, match=r"^METRICS_MAX_EVENTS='lots' is not valid"):
        get_config_from_env({"METRICS_MAX_EVENTS": "lots"})
    with pytest.raises(ValueError, match=r"at least 100.*\(from environment variables: METRICS"):
        MetricsConfig.from_env({"METRICS_MAX_EVENTS": "50"})
    with pytest.raises(ValueError, match=r"at least 100.*\(from environment variables: FEC_MAX"):
        MetricsConfig.from_env({"METRICS_MAX_EVENTS": "5000", "FEC_MAX_EVENTS": "50"})
