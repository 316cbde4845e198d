"""Properties of mask_pii (hypothesis): never raises, never mutates, idempotent, no leak."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_error_codes.metrics import PiiMasker, mask_pii
from fastapi_error_codes.metrics.pii import EMAIL_MASK, MASK

MASKER = PiiMasker()
SMALL = PiiMasker(max_length=40)

sensitive_keys = st.sampled_from(
    [
        "password",
        "X-Api-Key",
        "user_password",
        "refreshToken",
        "Authorization",
        "session-id",
        "client_secret",
        "email",
        "phone",
        "SSN",
        "creditCard",
        "csrf_token",
    ]
)
plain_keys = st.sampled_from(["id", "name", "status", "path", "items", "value", "n"])
text = st.text(max_size=80)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    text,
    st.binary(max_size=40),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(sensitive_keys, plain_keys, text, st.integers())
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    )


data = st.recursive(scalars, _containers, max_leaves=30)


def _keyed_values(obj: Any, masker: PiiMasker) -> list[Any]:
    """Every value under a sensitive str key, anywhere in *obj*."""
    found: list[Any] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str) and masker.matches_key(key):
                found.append(value)
            found.extend(_keyed_values(value, masker))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            found.extend(_keyed_values(item, masker))
    return found


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data)
def test_never_raises_never_mutates_and_is_idempotent(value: Any) -> None:
    before = copy.deepcopy(value)
    once = mask_pii(value)
    assert value == before
    assert mask_pii(once) == once


@settings(max_examples=300)
@given(data)
def test_no_value_under_a_sensitive_key_survives(value: Any) -> None:
    for found in _keyed_values(MASKER.mask(value), MASKER):
        assert found in (MASK, EMAIL_MASK)


secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20)


@settings(max_examples=200)
@given(sensitive_keys, secret, st.sampled_from(["=", ": ", "="]), text, text)
def test_secret_key_value_in_free_text_is_masked(
    key: str, value: str, sep: str, before: str, after: str
) -> None:
    raw = f"SECRET{value}"
    line = f"{before} {key}{sep}{raw} {after}"
    assert raw not in MASKER.mask_text(line)
    assert raw not in MASKER.mask({"message": line, "nested": [{key: raw}]}).__repr__()


@settings(max_examples=200)
@given(sensitive_keys, secret, data)
def test_secret_under_key_at_any_place_is_gone(key: str, value: str, rest: Any) -> None:
    raw = f"SECRET{value}"
    doc = {"payload": [rest, {"inner": {key: raw}}], "raw": [(key.encode(), raw.encode())]}
    assert raw not in repr(MASKER.mask(doc))


def _luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        digits = prefix + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


@settings(max_examples=300)
@given(
    st.text(alphabet="0123456789", min_size=12, max_size=18),
    st.lists(st.sampled_from(["", " ", "-"]), min_size=19, max_size=19),
    st.sampled_from(["card ", "paid with ", "(", ""]),
    st.sampled_from([" ok", ".", "", ")"]),
)
def test_luhn_valid_cards_with_separators_are_masked(
    prefix: str, seps: list[str], before: str, after: str
) -> None:
    digits = _luhn_complete(prefix)
    card = "".join(d + (seps[i] if i < len(digits) - 1 else "") for i, d in enumerate(digits))
    out = MASKER.mask_text(before + card + after)
    assert digits not in out.replace(" ", "").replace("-", "")
    assert MASKER.mask_text(out) == out


@settings(max_examples=200)
@given(st.emails(), text)
def test_emails_in_text_are_masked(email: str, around: str) -> None:
    out = MASKER.mask_text(f"{around} {email} {around}")
    assert email not in out
    assert MASKER.mask_text(out) == out


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_text_is_bounded_and_idempotent_when_cut(value: str) -> None:
    out = SMALL.mask_text(value)
    if len(value) > 40:
        assert len(out) <= 40
    assert SMALL.mask_text(out) == out
