"""ErrorHandlerConfig: validation, presets, environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fastapi_error_codes import (
    BaseAppException,
    ErrorHandlerConfig,
    ErrorRegistry,
    register_exception,
)


def test_defaults() -> None:
    config = ErrorHandlerConfig()
    assert config.default_locale == "en"
    assert config.fallback_locales == ()
    assert not config.debug_mode
    assert not config.include_traceback
    assert config.locale_dir is None
    assert config.response_format == "json"
    assert config.media_type == "application/json"
    assert config.problem_type_base is None


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ErrorHandlerConfig().debug_mode = True  # type: ignore[misc]


def test_presets() -> None:
    dev = ErrorHandlerConfig.development()
    assert dev.debug_mode and dev.include_traceback
    prod = ErrorHandlerConfig.production(response_format="problem+json")
    assert not prod.debug_mode and not prod.include_traceback
    assert prod.media_type == "application/problem+json"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"response_format": "xml"}, "one of 'json', 'problem\\+json'"),
        ({"default_locale": ""}, "language tag"),
        ({"default_locale": "../x"}, "language tag"),
        ({"fallback_locales": "ko"}, "list of language tags"),
        ({"fallback_locales": ["ko", "!"]}, "language tag"),
        ({"debug_mode": "yes"}, "True or False"),
        ({"include_traceback": 1}, "True or False"),
        ({"locale_dir": "/no/such/dir"}, "existing directory"),
        ({"problem_type_base": "errors/"}, "absolute URI"),
        ({"framework_errors": {404: ValueError}}, "@register_exception"),
        ({"framework_errors": {200: BaseAppException}}, "400-599"),
    ],
)
def test_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ErrorHandlerConfig(**kwargs)  # type: ignore[arg-type]


def test_framework_error_status_must_match(registry: ErrorRegistry) -> None:
    @register_exception(error_code=1, message="m", status_code=410, registry=registry)
    class Gone(BaseAppException):
        pass

    with pytest.raises(ValueError, match="declared with status 410"):
        ErrorHandlerConfig(framework_errors={404: Gone})
    assert ErrorHandlerConfig(framework_errors={410: Gone}).framework_errors[410] is Gone


def test_replace_validates() -> None:
    with pytest.raises(ValueError):
        ErrorHandlerConfig().replace(response_format="yaml")
    assert ErrorHandlerConfig().replace(debug_mode=True).debug_mode


def test_from_environment(tmp_path: Path) -> None:
    env = {
        "FEC_DEFAULT_LOCALE": "ko",
        "FEC_FALLBACK_LOCALES": "ja, en",
        "FEC_DEBUG_MODE": "true",
        "FEC_INCLUDE_TRACEBACK": "0",
        "FEC_LOCALE_DIR": str(tmp_path),
        "FEC_RESPONSE_FORMAT": "problem+json",
        "FEC_PROBLEM_TYPE_BASE": "https://e.example/",
        "UNRELATED": "x",
    }
    config = ErrorHandlerConfig.from_environment(env)
    assert config == ErrorHandlerConfig(
        default_locale="ko",
        fallback_locales=("ja", "en"),
        debug_mode=True,
        include_traceback=False,
        locale_dir=str(tmp_path),
        response_format="problem+json",
        problem_type_base="https://e.example/",
    )
    assert ErrorHandlerConfig.from_environment({}) == ErrorHandlerConfig()


def test_from_environment_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match=r"FEC_DEBUG_MODE='maybe'.*true"):
        ErrorHandlerConfig.from_environment({"FEC_DEBUG_MODE": "maybe"})
    with pytest.raises(ValueError, match=r"json.*FEC_RESPONSE_FORMAT"):
        ErrorHandlerConfig.from_environment({"FEC_RESPONSE_FORMAT": "xml"})


def test_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_RESPONSE_FORMAT", "problem+json")
    config = ErrorHandlerConfig.from_environment(prefix="APP_")
    assert config.response_format == "problem+json"


def test_hashable_and_equal(registry: ErrorRegistry) -> None:
    @register_exception(error_code=1, message="m", status_code=404, registry=registry)
    class Missing(BaseAppException):
        pass

    one = ErrorHandlerConfig(framework_errors={404: Missing}, fallback_locales=["ko"])
    two = ErrorHandlerConfig(framework_errors={404: Missing}, fallback_locales=("ko",))
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two, ErrorHandlerConfig()}) == 2


def test_to_dict_and_from_dict_round_trip(registry: ErrorRegistry, tmp_path: Path) -> None:
    @register_exception(error_code=1, message="m", status_code=404, registry=registry)
    class Missing(BaseAppException):
        pass

    config = ErrorHandlerConfig(
        default_locale="ko",
        fallback_locales=("ja", "en"),
        locale_dir=tmp_path,
        response_format="problem+json",
        framework_errors={404: Missing},
    )
    data = config.to_dict()
    assert data == {
        "default_locale": "ko",
        "fallback_locales": ["ja", "en"],
        "debug_mode": False,
        "include_traceback": False,
        "locale_dir": tmp_path,
        "response_format": "problem+json",
        "problem_type_base": None,
        "log_level_4xx": "INFO",
        "log_level_5xx": "ERROR",
        "request_id_header": "X-Request-ID",
        "request_id_in_body": False,
        "framework_errors": {404: Missing},  # classes round-trip as objects
    }
    assert type(data["framework_errors"]) is dict
    assert ErrorHandlerConfig.from_dict(data) == config
    assert ErrorHandlerConfig.from_dict(ErrorHandlerConfig().to_dict()) == ErrorHandlerConfig()
    assert ErrorHandlerConfig.from_dict({}) == ErrorHandlerConfig()


def test_from_dict_validates_and_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown keys locale; allowed: default_locale, "):
        ErrorHandlerConfig.from_dict({"locale": "ko"})
    with pytest.raises(ValueError, match="language tag"):
        ErrorHandlerConfig.from_dict({"default_locale": "../x"})


def test_copy_and_update() -> None:
    config = ErrorHandlerConfig(debug_mode=True)
    assert config.copy() == config and config.copy() is not config
    assert config.update(default_locale="ko") == config.replace(default_locale="ko")
    with pytest.raises(ValueError, match="language tag"):
        config.update(default_locale="")


def test_original_variables(tmp_path: Path) -> None:
    env = {
        "ERROR_LOCALE": "ko",
        "ERROR_FALLBACK_LOCALES": "ja, en",
        "ERROR_DEBUG": "true",
        "ERROR_TRACEBACK": "1",
        "ERROR_LOCALE_DIR": str(tmp_path),
    }
    assert ErrorHandlerConfig.from_env(env) == ErrorHandlerConfig(
        default_locale="ko",
        fallback_locales=("ja", "en"),
        debug_mode=True,
        include_traceback=True,
        locale_dir=str(tmp_path),
    )
    assert set(ErrorHandlerConfig.legacy_env) == set(env)


def test_ours_win_over_the_original_variables() -> None:
    env = {"ERROR_LOCALE": "ko", "FEC_DEFAULT_LOCALE": "de", "ERROR_DEBUG": "true"}
    config = ErrorHandlerConfig.from_environment(env)
    assert (config.default_locale, config.debug_mode) == ("de", True)
    # another prefix is a namespace of its own: the original names are not read
    assert ErrorHandlerConfig.from_environment(env, prefix="APP_") == ErrorHandlerConfig()


def test_bad_original_values_name_their_variable() -> None:
    with pytest.raises(ValueError, match=r"ERROR_DEBUG='maybe' is not valid"):
        ErrorHandlerConfig.from_env({"ERROR_DEBUG": "maybe"})
    with pytest.raises(ValueError, match=r"existing directory.*ERROR_LOCALE_DIR"):
        ErrorHandlerConfig.from_env({"ERROR_LOCALE_DIR": "/no/such/dir"})
