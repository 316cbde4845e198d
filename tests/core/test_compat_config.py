"""ErrorHandlerConfig as the original fastapi-error-code spells it: env, update, dicts.

Where this library is deliberately stricter (tuples, validated values and variables), the
test says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fastapi_error_codes import ErrorHandlerConfig, MessageProvider

_ORIGINAL_VARS = (
    "ERROR_LOCALE",
    "ERROR_DEBUG",
    "ERROR_TRACEBACK",
    "ERROR_LOCALE_DIR",
    "ERROR_FALLBACK_LOCALES",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FEC_* or original variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FEC_") or name in _ORIGINAL_VARS:
            monkeypatch.delenv(name)


def test_from_environment_reads_the_original_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ERROR_LOCALE", "ko")
    monkeypatch.setenv("ERROR_DEBUG", "true")
    monkeypatch.setenv("ERROR_TRACEBACK", "true")
    monkeypatch.setenv("ERROR_LOCALE_DIR", str(tmp_path))
    monkeypatch.setenv("ERROR_FALLBACK_LOCALES", "en, ja")
    config = ErrorHandlerConfig.from_environment()
    assert config.default_locale == "ko"
    assert config.debug_mode is True
    assert config.include_traceback is True
    assert config.locale_dir == str(tmp_path)
    assert config.fallback_locales == ("en", "ja")  # a tuple here: the config is frozen
    assert ErrorHandlerConfig.from_env() == config


def test_from_environment_with_missing_variables_uses_defaults() -> None:
    config = ErrorHandlerConfig.from_environment()
    assert config.default_locale == "en"
    assert config.debug_mode is False
    assert config.include_traceback is False
    assert config.locale_dir is None  # no default directory here (the original: "locales")


def test_ours_win_when_both_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERROR_LOCALE", "ko")
    monkeypatch.setenv("FEC_DEFAULT_LOCALE", "ja")
    monkeypatch.setenv("ERROR_DEBUG", "false")
    monkeypatch.setenv("FEC_DEBUG_MODE", "true")
    config = ErrorHandlerConfig.from_environment()
    assert (config.default_locale, config.debug_mode) == ("ja", True)


def test_another_prefix_does_not_read_the_original_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ERROR_LOCALE", "ko")
    monkeypatch.setenv("MYAPP_DEBUG_MODE", "true")
    config = ErrorHandlerConfig.from_environment(prefix="MYAPP_")
    assert (config.default_locale, config.debug_mode) == ("en", True)


def test_a_bad_original_value_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stricter than the original, which read anything but true/1/yes/on as False.
    monkeypatch.setenv("ERROR_DEBUG", "ture")
    with pytest.raises(ValueError, match=r"ERROR_DEBUG='ture' is not valid"):
        ErrorHandlerConfig.from_environment()


def test_update_copy_and_dicts() -> None:
    config = ErrorHandlerConfig(default_locale="en", debug_mode=False)
    updated = config.update(default_locale="ko", debug_mode=True)
    assert (updated.default_locale, updated.debug_mode) == ("ko", True)
    assert config.default_locale == "en"
    assert config.copy() == config

    data = ErrorHandlerConfig(default_locale="ko", debug_mode=True, fallback_locales=["en"])
    as_dict = data.to_dict()
    for key in ("default_locale", "fallback_locales", "debug_mode", "include_traceback"):
        assert key in as_dict
    assert "locale_dir" in as_dict
    assert as_dict["default_locale"] == "ko"
    assert as_dict["debug_mode"] is True
    assert as_dict["fallback_locales"] == ["en"]


def test_from_dict() -> None:
    config = ErrorHandlerConfig.from_dict({"default_locale": "ko", "debug_mode": True})
    assert config.default_locale == "ko"
    assert config.debug_mode is True
    assert config.include_traceback is False
    full = {
        "default_locale": "ja",
        "debug_mode": True,
        "include_traceback": False,
        "fallback_locales": ["en", "ko"],
    }
    assert ErrorHandlerConfig.from_dict(full).fallback_locales == ("en", "ko")
    assert ErrorHandlerConfig.from_dict(ErrorHandlerConfig().to_dict()) == ErrorHandlerConfig()
    # Stricter than the original, which ignored keys it did not know.
    with pytest.raises(ValueError, match="allowed: default_locale"):
        ErrorHandlerConfig.from_dict({"defualt_locale": "ko"})


def test_message_provider_needs_the_default_locale_file(tmp_path: Path) -> None:
    (tmp_path / "ko.json").write_text(json.dumps({"errors": {"x": "엑스"}}), "utf-8")
    with pytest.raises(ValueError, match=r"en\.json.*not found.*: ko"):
        MessageProvider(str(tmp_path), default_locale="en")
    assert MessageProvider(str(tmp_path), default_locale="ko").get_message("errors.x") == "엑스"


def test_an_empty_variable_of_the_original_is_unset() -> None:
    config = ErrorHandlerConfig.from_environment({"ERROR_DEBUG": "", "ERROR_LOCALE": " "})
    assert (config.debug_mode, config.default_locale) == (False, "en")


def test_presets_take_the_original_positional_arguments() -> None:
    config = ErrorHandlerConfig.development("ko", None)
    assert (config.default_locale, config.fallback_locales, config.debug_mode) == ("ko", (), True)
    assert ErrorHandlerConfig.production(fallback_locales=None).fallback_locales == ()
    with pytest.raises(TypeError, match="at most 3 positional"):
        ErrorHandlerConfig.production("en", None, None, "extra")
