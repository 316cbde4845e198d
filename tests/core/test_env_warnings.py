"""``from_env`` warns, once and never raising, of ``FEC_*`` variables no config reads."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fastapi_error_codes import ErrorHandlerConfig, _settings
from fastapi_error_codes._settings import _KNOWN_ENV_FIELDS

LOGGER = "fastapi_error_codes"


@pytest.fixture(autouse=True)
def _fresh_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Each test starts with no variable warned about yet and captures the library's warnings."""
    _settings._WARNED.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        yield
    _settings._WARNED.clear()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The library's warnings captured so far."""
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


def test_a_misspelt_variable_is_warned_naming_the_closest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"FEC_REDISURL": "redis://h:6379/0", "FEC_DEBUG_MODES": "true"}
    assert ErrorHandlerConfig.from_env(env) == ErrorHandlerConfig()  # defaults: never raises
    assert _warnings(caplog) == [
        "Environment variable FEC_DEBUG_MODES is ignored: no fastapi-error-codes setting has "
        "that name; did you mean FEC_DEBUG_MODE?",
        "Environment variable FEC_REDISURL is ignored: no fastapi-error-codes setting has "
        "that name; did you mean FEC_REDIS_URL?",
    ]


def test_a_unit_left_out_of_the_name_suggests_the_one_with_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fastapi_error_codes.metrics.config import MetricsConfig

    assert MetricsConfig.from_env({"FEC_FLUSH_INTERVAL": "500"}).flush_interval_ms == 1000
    (message,) = _warnings(caplog)
    assert "FEC_FLUSH_INTERVAL is ignored" in message
    assert message.endswith("did you mean FEC_FLUSH_INTERVAL_MS?")


def test_a_name_like_none_says_so(caplog: pytest.LogCaptureFixture) -> None:
    ErrorHandlerConfig.from_env({"FEC_QQQQQQQQQQ": "1"})
    (message,) = _warnings(caplog)
    assert message.startswith("Environment variable FEC_QQQQQQQQQQ is ignored")
    assert message.endswith("no similar variable is known")


def test_each_variable_is_warned_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi_error_codes.metrics.config import MetricsConfig

    env = {"FEC_REDISURL": "x", "FEC_NAMESPACES": "y"}
    ErrorHandlerConfig.from_env(env)
    ErrorHandlerConfig.from_env(env)
    MetricsConfig.from_env(env)
    MetricsConfig.from_env({"FEC_REDISURL": "x", "FEC_AUTH_TOKENS": "z"})
    names = [m.split()[2] for m in _warnings(caplog)]
    assert names == ["FEC_NAMESPACES", "FEC_REDISURL", "FEC_AUTH_TOKENS"]


def test_values_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    ErrorHandlerConfig.from_env({"FEC_REDISURL": "redis://:hunter2-secret@h:6379/0"})
    assert len(_warnings(caplog)) == 1
    assert "hunter2" not in caplog.text


def test_a_variable_of_the_other_config_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi_error_codes.metrics.config import MetricsConfig

    ErrorHandlerConfig.from_env(
        {"FEC_REDIS_URL": "redis://h:6379/0", "FEC_FLUSH_INTERVAL_MS": "500", "FEC_ENABLED": "0"}
    )
    metrics = MetricsConfig.from_env({"FEC_DEFAULT_LOCALE": "ko", "FEC_DEBUG_MODE": "yes"})
    assert metrics == MetricsConfig()
    assert _warnings(caplog) == []


def test_the_metrics_fields_are_known_before_the_monitoring_part_is_loaded() -> None:
    """An app that reads only ErrorHandlerConfig shares a ConfigMap with metrics variables."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\n"
        "from fastapi_error_codes import ErrorHandlerConfig\n"
        "ErrorHandlerConfig.from_env({'FEC_REDIS_URL': 'redis://h/0',\n"
        "    'FEC_FLUSH_INTERVAL_MS': '500', 'FEC_SENTRY_BUDGET_INTERVAL_S': '60',\n"
        "    'FEC_REDISURL': 'x'})\n"
        "assert 'fastapi_error_codes.metrics' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
    assert result.stderr.splitlines() == [
        "WARNING Environment variable FEC_REDISURL is ignored: no fastapi-error-codes setting "
        "has that name; did you mean FEC_REDIS_URL?"
    ]


def test_the_known_list_is_exactly_the_metrics_fields() -> None:
    """The list stands in for MetricsConfig while it is not loaded: it must not drift."""
    from fastapi_error_codes.metrics.config import MetricsConfig

    readable = {
        f.name for f in MetricsConfig._init_fields() if f.metadata.get("env", True) is not False
    }
    assert set(_KNOWN_ENV_FIELDS) == readable


def test_legacy_variables_are_unaffected(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi_error_codes.metrics.config import MetricsConfig

    env = {
        "METRICS_MAX_EVENTS": "5000",
        "METRICS_MAX_EVENT": "1",  # not the prefix in use: not ours to judge
        "ERROR_LOCALE": "ko",
        "ERROR_LOCAL": "de",
    }
    assert MetricsConfig.from_env(env).max_events == 5000
    assert ErrorHandlerConfig.from_env(env).default_locale == "ko"
    assert _warnings(caplog) == []


def test_a_custom_prefix_is_the_apps_and_is_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    # APP_ is shared with the app's own variables (APP_DATABASE_URL): none of them is ours.
    env = {"APP_DEBUG_MODE": "on", "APP_DATABASE_URL": "postgres://x", "FEC_REDISURL": "x"}
    assert ErrorHandlerConfig.from_env(env, prefix="APP_").debug_mode is True
    assert _warnings(caplog) == []


def test_an_empty_prefix_checks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    ErrorHandlerConfig.from_env({"PATH": "/bin", "HOME": "/root"}, prefix="")
    assert _warnings(caplog) == []


def test_a_field_declared_not_from_text_says_so(caplog: pytest.LogCaptureFixture) -> None:
    assert ErrorHandlerConfig.from_env({"FEC_FRAMEWORK_ERRORS": "x"}) == ErrorHandlerConfig()
    assert _warnings(caplog) == [
        "Environment variable FEC_FRAMEWORK_ERRORS is ignored: "
        "ErrorHandlerConfig.framework_errors cannot be set from the environment"
    ]


def test_a_bad_value_still_raises_after_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match=r"^FEC_DEBUG_MODE='maybe' is not valid"):
        ErrorHandlerConfig.from_env({"FEC_DEBUG_MODE": "maybe", "FEC_DEBUGMODE": "on"})
    assert [m.split()[2] for m in _warnings(caplog)] == ["FEC_DEBUGMODE"]


def test_the_process_environment_is_checked_by_default(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEC_LOCALEDIR", "/tmp")
    ErrorHandlerConfig.from_env()
    assert any(
        m.startswith("Environment variable FEC_LOCALEDIR is ignored")
        and m.endswith("did you mean FEC_LOCALE_DIR?")
        for m in _warnings(caplog)
    )
