"""Error domains: the predefined ranges, custom ones, lookups."""

from __future__ import annotations

import pytest

from fastapi_error_codes import (
    ErrorDomain,
    get_domain,
    get_domain_for_code,
    is_valid_code,
    list_domains,
    register_domain,
)


def test_predefined() -> None:
    ranges = {d.name: (d.start, d.end) for d in list_domains()}
    assert ranges == {
        "AUTH": (200, 299),
        "RESOURCE": (300, 399),
        "VALIDATION": (400, 499),
        "SERVER": (500, 599),
        "CUSTOM": (900, 999),
    }
    assert ErrorDomain.AUTH is get_domain("auth")
    assert 250 in ErrorDomain.AUTH
    assert 300 not in ErrorDomain.AUTH


def test_lookup_by_code() -> None:
    assert get_domain_for_code(404) is ErrorDomain.VALIDATION
    assert get_domain_for_code(950) is ErrorDomain.CUSTOM
    assert get_domain_for_code(1500) is None


def test_is_valid_code() -> None:
    assert is_valid_code(0)
    assert is_valid_code(9999)
    assert not is_valid_code(10000)
    assert not is_valid_code(-1)
    assert not is_valid_code(True)
    assert not is_valid_code("5")
    assert is_valid_code(210, "AUTH")
    assert not is_valid_code(310, ErrorDomain.AUTH)


def test_register_domain() -> None:
    domain = register_domain("payments", 1000, 1099, "Payments")
    assert domain.name == "PAYMENTS"
    assert get_domain("PAYMENTS") is domain
    assert register_domain("PAYMENTS", 1000, 1099) is domain
    assert list_domains()[-1] is domain


def test_overlap_is_rejected() -> None:
    with pytest.raises(ValueError, match="overlaps domain SERVER"):
        register_domain("X", 550, 650)
    register_domain("Y", 1000, 1010)
    with pytest.raises(ValueError, match="already registered"):
        register_domain("Y", 1000, 1020)


@pytest.mark.parametrize(
    ("name", "start", "end"), [("ok", 10, 5), ("ok", -1, 5), ("ok", 1, 10000), ("1bad", 1, 2)]
)
def test_bad_domains(name: str, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        register_domain(name, start, end)
