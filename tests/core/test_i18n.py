"""MessageProvider and Accept-Language negotiation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fastapi_error_codes import (
    ErrorHandlerConfig,
    MessageProvider,
    negotiate_locale,
    parse_accept_language,
)
from fastapi_error_codes.i18n import format_message


class TestParse:
    def test_orders_by_q_then_position(self) -> None:
        header = "da, en-GB;q=0.8, en;q=0.7, fr;q=0.8"
        assert parse_accept_language(header) == [
            ("da", 1.0),
            ("en-GB", 0.8),
            ("fr", 0.8),
            ("en", 0.7),
        ]

    @pytest.mark.parametrize(
        "header", ["", None, "en;q=0", "en;q=abc", "en;q=2", "../../etc/passwd", "e n"]
    )
    def test_drops_invalid(self, header: str | None) -> None:
        assert parse_accept_language(header) == []

    def test_whitespace_and_case(self) -> None:
        assert parse_accept_language(" ko-KR ; Q=0.5 ,EN") == [("EN", 1.0), ("ko-KR", 0.5)]

    def test_huge_header_is_bounded(self) -> None:
        assert len(parse_accept_language(",".join(["en"] * 10_000))) <= 32


class TestNegotiate:
    available = ("en", "ko", "de", "de-CH", "pt-BR")

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("ko", "ko"),
            ("KO-kr", "ko"),
            ("fr, de-CH;q=0.9", "de-CH"),
            ("de-AT", "de"),
            ("pt", "pt-BR"),
            ("fr;q=1, en;q=0.1", "en"),
            ("en;q=0.1, ko;q=0.5", "ko"),
            ("fr", None),
            ("*", None),
            ("", None),
        ],
    )
    def test_cases(self, header: str, expected: str | None) -> None:
        assert negotiate_locale(header, self.available) == expected

    def test_nothing_available(self) -> None:
        assert negotiate_locale("en", []) is None


class TestProvider:
    def test_chain(self, locale_dir: Path) -> None:
        provider = MessageProvider(locale_dir, default_locale="en", fallback_locales=["de"])
        assert provider.get_message("errors.404", "ko") == "찾을 수 없습니다"
        assert provider.get_message("errors.404", "de-CH") == "Nüt da"
        # ko has no such key: fallbacks (de) before the default (en).
        assert provider.get_message("errors.3001", "fr", user_id=1) == "Benutzer 1 nicht gefunden"
        assert provider.get_message("errors.500", "de") == "Something went wrong"
        assert provider.get_message("nope", "ko", default="Default {x}", x=1) == "Default 1"
        assert provider.get_message("nope", "ko") == "nope"
        assert provider.get_message("errors.404") == "Nothing here"

    def test_params_are_only_plain_names(self, locale_dir: Path) -> None:
        provider = MessageProvider(locale_dir)
        text = provider.get_message("x", default="{a} {missing} {a.__class__} {0}", a="v")
        assert text == "v {missing} {a.__class__} {0}"
        assert format_message("{a}", {}) == "{a}"

    def test_available_locales(self, locale_dir: Path) -> None:
        assert MessageProvider(locale_dir).get_available_locales() == ["de", "de-CH", "en", "ko"]

    def test_reload_and_clear(self, locale_dir: Path) -> None:
        provider = MessageProvider(locale_dir)
        assert provider.get_message("errors.404", "ko") == "찾을 수 없습니다"
        (locale_dir / "ko.json").write_text(json.dumps({"errors": {"404": "없음"}}), "utf-8")
        assert provider.get_message("errors.404", "ko") == "찾을 수 없습니다"  # cached
        provider.reload_locale("ko")
        assert provider.get_message("errors.404", "ko") == "없음"
        (locale_dir / "fr.json").write_text(json.dumps({"errors": {"404": "Introuvable"}}), "utf-8")
        provider.clear_cache()
        assert provider.get_message("errors.404", "fr") == "Introuvable"

    def test_broken_file(self, locale_dir: Path) -> None:
        (locale_dir / "xx.json").write_text("{not json", "utf-8")
        provider = MessageProvider(locale_dir)
        with pytest.raises(ValueError, match=r"xx\.json"):
            provider.reload_locale("xx")
        with pytest.raises(ValueError, match=r"xx\.json"):
            provider.load_all()

    def test_broken_file_in_request_path_falls_back(
        self, locale_dir: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        (locale_dir / "xx.json").write_text("[1, 2]", "utf-8")
        provider = MessageProvider(locale_dir)
        assert provider.get_message("errors.404", "xx") == "Nothing here"
        assert "broken" in caplog.text

    def test_non_string_leaf(self, tmp_path: Path) -> None:
        (tmp_path / "en.json").write_text(json.dumps({"a": {"b": 1}}), "utf-8")
        with pytest.raises(ValueError, match=r"'a\.b'"):
            MessageProvider(tmp_path).load_all()

    def test_missing_dir(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="not a directory"):
            MessageProvider(tmp_path / "nope")

    def test_header_never_becomes_a_path(self, locale_dir: Path) -> None:
        provider = MessageProvider(locale_dir)
        assert provider.get_message("k", "../../etc/passwd", default="d") == "d"

    def test_missing_default_locale_file(self, locale_dir: Path) -> None:
        with pytest.raises(ValueError, match=r"fr\.json.* not found.*: de, de-CH, en, ko"):
            MessageProvider(locale_dir, default_locale="fr")

    def test_empty_dir_names_no_locales(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"en\.json.* not found.*: none"):
            MessageProvider(tmp_path)

    def test_default_locale_matches_its_file_in_any_spelling(self, locale_dir: Path) -> None:
        assert MessageProvider(locale_dir, default_locale="DE_ch").get_message("errors.404") == (
            "Nüt da"
        )


def test_setup_refuses_a_locale_dir_without_the_default_file(
    make_client: Callable[..., object], locale_dir: Path
) -> None:
    # The handler builds its provider at setup: the mistake shows there, not on a request.
    with pytest.raises(ValueError, match=r"ja\.json"):
        make_client(ErrorHandlerConfig(locale_dir=locale_dir, default_locale="ja"))
