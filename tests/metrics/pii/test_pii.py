"""PiiMasker / mask_pii: key matching, value scanning, odd input, truncation and speed."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import namedtuple
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from fastapi_error_codes.metrics import DEFAULT_PII_PATTERNS, PiiMasker, mask_pii
from fastapi_error_codes.metrics.pii import EMAIL_MASK, MASK, TRUNCATION_MARKER, _masker_for

SPEC_PATTERNS = (
    "email",
    "password",
    "ssn",
    "credit_card",
    "api_key",
    "token",
    "secret",
    "phone",
)


@pytest.fixture
def masker() -> PiiMasker:
    return PiiMasker()


class TestPatterns:
    def test_defaults_hold_the_specs_eight_and_credential_keys(self) -> None:
        assert DEFAULT_PII_PATTERNS[:8] == SPEC_PATTERNS
        for extra in ("authorization", "cookie", "session", "csrf", "private_key", "credential"):
            assert extra in DEFAULT_PII_PATTERNS

    @pytest.mark.parametrize(
        "key",
        [
            "password",
            "PASSWORD",
            "user_password",
            "X-Api-Key",
            "x_api_key",
            "apiKey",
            "refreshToken",
            "access-token",
            "Authorization",
            "Set-Cookie",
            "sessionid",
            "client_secret",
            "creditCard",
            "credit-card-number",
            "private_key_pem",
            "aws_credentials",
            "X-CSRF-Token",
            "phone_number",
            "ssn",
            "userEmail",
        ],
    )
    def test_sensitive_keys_match(self, masker: PiiMasker, key: str) -> None:
        assert masker.matches_key(key)
        assert masker.mask({key: "s3cr3t-value"}) == {key: MASK}

    @pytest.mark.parametrize("key", ["user_id", "name", "status", "path", "method", "count"])
    def test_plain_keys_do_not_match(self, masker: PiiMasker, key: str) -> None:
        assert not masker.matches_key(key)
        assert masker.mask({key: "visible"}) == {key: "visible"}

    def test_patterns_add_to_the_defaults(self) -> None:
        masker = PiiMasker(["tenant-ref"])
        assert masker.mask({"Tenant_Ref": "t-1", "password": "x"}) == {
            "Tenant_Ref": MASK,
            "password": MASK,
        }
        assert masker.patterns[: len(DEFAULT_PII_PATTERNS)] == DEFAULT_PII_PATTERNS
        assert "tenant_ref" in masker.patterns

    def test_a_single_string_is_one_pattern_not_its_letters(self) -> None:
        assert mask_pii({"internal": "x", "a": "y"}, "internal") == {"internal": MASK, "a": "y"}

    def test_mask_pii_caches_one_masker_per_pattern_tuple(self) -> None:
        mask_pii({"a": 1}, ["cached_field"])
        before = _masker_for.cache_info().hits
        assert mask_pii({"cached_field": 1}, ["cached_field"]) == {"cached_field": MASK}
        assert _masker_for.cache_info().hits == before + 1

    @pytest.mark.parametrize("bad", [[""], ["  "], [3]])
    def test_bad_patterns_are_rejected(self, bad: list[Any]) -> None:
        with pytest.raises(ValueError, match="non-empty strings"):
            PiiMasker(bad)

    def test_max_length_is_validated(self) -> None:
        with pytest.raises(ValueError, match="max_length"):
            PiiMasker(max_length=3)


class TestKeyedValues:
    def test_email_value_of_a_sensitive_key_becomes_the_email_mask(self) -> None:
        assert mask_pii({"email": "user@example.com"}) == {"email": EMAIL_MASK}

    def test_whole_subtree_of_a_sensitive_key_is_masked(self, masker: PiiMasker) -> None:
        data = {"credentials": {"user": "bob", "pw": "hunter2"}, "ok": 1}
        assert masker.mask(data) == {"credentials": MASK, "ok": 1}

    def test_nested_any_depth(self, masker: PiiMasker) -> None:
        data: Any = {"token": "t0"}
        for i in range(50):
            data = {"level": i, "child": [data]}
        out = masker.mask(data)
        for _ in range(50):
            out = out["child"][0]
        assert out == {"token": MASK}

    def test_raw_asgi_header_pairs(self, masker: PiiMasker) -> None:
        headers = [(b"host", b"example.org"), (b"x-api-key", b"sk_live_123"), (b"cookie", b"s=1")]
        assert masker.mask({"headers": headers}) == {
            "headers": [(b"host", b"example.org"), (b"x-api-key", MASK), (b"cookie", MASK)]
        }

    def test_header_pairs_as_sentry_serialises_them(self, masker: PiiMasker) -> None:
        headers = [["b'host'", "b'example.org'"], ["b'authorization'", "b'Bearer abc'"]]
        assert masker.mask(headers) == [["b'host'", "b'example.org'"], ["b'authorization'", MASK]]

    def test_pydantic_error_input_under_a_sensitive_loc(self, masker: PiiMasker) -> None:
        errors = [
            {"type": "string_too_short", "loc": ("body", "password"), "input": "hunter2"},
            {"type": "missing", "loc": ("body", "name"), "input": "visible"},
        ]
        out = masker.mask(errors)
        assert out[0]["input"] == MASK
        assert out[1]["input"] == "visible"

    def test_non_string_keys(self, masker: PiiMasker) -> None:
        data = {1: "a@b.co", (1, 2): "x", None: "y", b"token": b"abc", 2.5: {"secret": 1}}
        assert masker.mask(data) == {
            1: EMAIL_MASK,
            (1, 2): "x",
            None: "y",
            b"token": MASK,
            2.5: {"secret": MASK},
        }

    def test_keys_that_are_pii_are_masked_too(self, masker: PiiMasker) -> None:
        assert masker.mask({"user@example.com": 3}) == {EMAIL_MASK: 3}


class TestValueScanning:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("mail user@example.com now", f"mail {EMAIL_MASK} now"),
            ("card 4111 1111 1111 1111 expired", "card *** expired"),
            ("card 4111-1111-1111-1111", "card ***"),
            ("amex 378282246310005.", "amex ***."),
            ("card 4111 1111 1111 1111 2024", "card *** 2024"),
            ("Authorization: Bearer abc.def-ghi", "Authorization: ***"),
            ("sent bearer abc.def-ghi", "sent bearer ***"),
            ("header Basic dXNlcjpwYXNzd29yZA==", "header Basic ***"),
            ("a basic information", "a basic information"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "jwt *** end"),
            ("GET /reset?token=abc123&user=bob", "GET /reset?token=***&user=bob"),
            ("/login?email=u@x.io&next=/", f"/login?email={EMAIL_MASK}&next=/"),
            ("password=hunter2 and api-key: k-123", "password=*** and api-key: ***"),
            ("refreshToken = 'r-1'", "refreshToken = '***'"),
            ('{"password": "p\\"w", "name": "bob"}', '{"password": "***", "name": "bob"}'),
            ("redis://user:hunter2@db:6379/0", "redis://***:***@db:6379/0"),
            ("ssn 123-45-6789 on file", "ssn *** on file"),
            (
                "[(b'host', b'x'), (b'x-api-key', b'sk_1')]",
                "[(b'host', b'x'), (b'x-api-key', b'***')]",
            ),
            ("secret={'a': 1, 'b': 2} rest", "secret=*** rest"),
            ("User not found", "User not found"),
            ("\u0130stanbul password=x", "\u0130stanbul password=***"),  # lower() grows
            ("order 4111 1111 1111 1112", "order 4111 1111 1111 1112"),  # fails Luhn
        ],
    )
    def test_text(self, masker: PiiMasker, text: str, expected: str) -> None:
        assert masker.mask_text(text) == expected
        assert masker.mask(text) == expected

    def test_request_validation_error_repr(self, masker: PiiMasker) -> None:
        # The pitfall: str(RequestValidationError) embeds the inputs as a Python repr.
        exc = RequestValidationError(
            [
                {
                    "type": "string_too_short",
                    "loc": ("body", "password"),
                    "msg": "String should have at least 20 characters",
                    "input": "hunter2-raw",
                    "ctx": {"min_length": 20},
                },
                {
                    "type": "missing",
                    "loc": ("body", "profile"),
                    "msg": "Field required",
                    "input": {"password": "other-raw", "email": "e@x.io"},
                },
            ]
        )
        masked = masker.mask_text(str(exc))
        for raw in ("hunter2-raw", "other-raw", "e@x.io"):
            assert raw in str(exc)
            assert raw not in masked

    def test_bytes_stay_bytes(self, masker: PiiMasker) -> None:
        assert masker.mask(b"to bob@example.com") == b"to " + EMAIL_MASK.encode()
        assert masker.mask(bytearray(b"plain")) == b"plain"
        assert masker.mask(b"\xff\xfe token=x") == b"\xff\xfe token=***"


class TestOddInput:
    def test_never_mutates(self, masker: PiiMasker) -> None:
        data = {"password": "p", "list": [{"token": "t"}, "a@b.co"], "t": ("x", {"secret": 1})}
        before = copy.deepcopy(data)
        masker.mask(data)
        assert data == before

    def test_cycles(self, masker: PiiMasker) -> None:
        data: dict[str, Any] = {"token": "t", "items": []}
        data["items"].append(data)
        data["self"] = data
        out = masker.mask(data)
        assert out["token"] == MASK
        assert out["self"] == "<cycle>"
        assert out["items"] == ["<cycle>"]

    def test_shared_but_acyclic_objects_are_not_cycles(self, masker: PiiMasker) -> None:
        shared = {"a": 1}
        assert masker.mask([shared, shared]) == [{"a": 1}, {"a": 1}]

    def test_huge_string_is_cut_with_a_marker(self, masker: PiiMasker) -> None:
        text = "word " * 100_000
        start = time.perf_counter()
        out = masker.mask_text(text)
        assert time.perf_counter() - start < 0.1
        assert len(out) <= masker.max_length
        assert out.endswith(TRUNCATION_MARKER)

    def test_no_half_secret_survives_the_cut(self) -> None:
        masker = PiiMasker(max_length=64)
        for shift in range(40):
            text = "x " * shift + "card 4111 1111 1111 1111 and user@example.com " + "y " * 60
            out = masker.mask_text(text)
            assert "4111 1111" not in out and "1111 1111" not in out
            assert "example" not in out
            assert len(out) <= 64

    def test_very_deep_nesting_does_not_raise(self, masker: PiiMasker) -> None:
        data: Any = "x"
        for _ in range(10_000):
            data = [data]
        out = masker.mask(data)
        depth = 0
        while isinstance(out, list):
            out = out[0]
            depth += 1
        assert out == MASK
        assert depth < 10_000

    def test_containers_keep_their_type(self, masker: PiiMasker) -> None:
        point = namedtuple("point", "x y")
        out = masker.mask(
            {"s": {"a@b.co", "x"}, "f": frozenset({"y"}), "t": ("a@b.co",), "n": point(1, "a@b.co")}
        )
        assert out == {
            "s": {EMAIL_MASK, "x"},
            "f": frozenset({"y"}),
            "t": (EMAIL_MASK,),
            "n": point(1, EMAIL_MASK),
        }
        assert type(out["n"]) is point

    def test_objects_become_masked_text(self, masker: PiiMasker) -> None:
        class Holder:
            def __str__(self) -> str:
                return "Holder(password=hunter2)"

        class Broken:
            def __str__(self) -> str:
                raise RuntimeError("no")

        assert masker.mask([Holder(), Broken()]) == ["Holder(password=***)", "<unrepresentable>"]

    def test_dataclasses_and_pydantic_models(self, masker: PiiMasker) -> None:
        @dataclasses.dataclass
        class Login:
            user: str
            password: str

        class Signup(BaseModel):
            email: str
            name: str

        assert masker.mask(Login("bob", "pw")) == {"user": "bob", "password": MASK}
        assert masker.mask(Signup(email="a@b.co", name="bob")) == {
            "email": EMAIL_MASK,
            "name": "bob",
        }

    def test_scalars_pass_through(self, masker: PiiMasker) -> None:
        import datetime
        import decimal
        import uuid

        values = [None, True, 3, 2.5, decimal.Decimal("1.5"), datetime.date(2020, 1, 1)]
        values.append(uuid.UUID(int=4111111111111111))
        assert masker.mask(values) == values


class TestSpeed:
    def test_small_event_is_fast(self, masker: PiiMasker) -> None:
        event = {
            "message": "User 42 not found",
            "detail": {"user_id": 42, "email": "a@b.co", "password": "x"},
            "path": "/users/42",
        }
        masker.mask(event)
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            masker.mask(event)
        per_call = (time.perf_counter() - start) / n
        assert per_call < 100e-6, f"{per_call * 1e6:.1f} µs per small event"

    def test_short_plain_string_takes_the_fast_path(self, masker: PiiMasker) -> None:
        text = "Resource not found"
        assert masker.mask_text(text) is text


def test_long_texts_are_not_remembered_by_the_masker() -> None:
    masker = PiiMasker()
    masker.mask_text("short text")
    masker.mask_text("x" * 100_000)
    assert "short text" in masker._text_cache
    assert all(len(t) <= 256 for t in masker._text_cache)
