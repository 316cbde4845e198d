"""MetricsConfig: the spec's defaults, presets, validation and environment loading."""

from __future__ import annotations

import dataclasses

import pytest

from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env


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
