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


# The original fastapi-error-code's class API, beside ours (one registry for both).


def test_both_constructions_build_the_same_domain() -> None:
    ours = ErrorDomain("TEST", 600, 699)
    assert ErrorDomain("TEST", (600, 699)) == ours
    assert ErrorDomain(name="TEST", code_range=(600, 699)) == ours
    assert ErrorDomain(name="TEST", start=600, end=699) == ours
    assert hash(ErrorDomain("TEST", (600, 699))) == hash(ours)
    described = ErrorDomain("TEST", (600, 699), description="Tests")
    assert (described.start, described.end, described.description) == (600, 699, "Tests")
    assert ours.code_range == (600, 699)
    assert ErrorDomain.AUTH.code_range == (200, 299)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("T", (600, 699), 700), {}, TypeError),
        (("T", (600, 699)), {"code_range": (600, 699)}, TypeError),
        (("T",), {}, TypeError),
        (("T", 600), {}, TypeError),
        (("T", (600,)), {}, ValueError),
        (("T", (699, 600)), {}, ValueError),
        (("T", ("a", "b")), {}, ValueError),
        (("lower", (600, 699)), {}, ValueError),
    ],
)
def test_bad_constructions(
    args: tuple[object, ...], kwargs: dict[str, object], error: type
) -> None:
    with pytest.raises(error):
        ErrorDomain(*args, **kwargs)  # type: ignore[call-overload]


def test_start_after_end_says_invalid_code_range() -> None:
    with pytest.raises(ValueError, match="Invalid code range"):
        ErrorDomain.register_domain("INVALID", (500, 400))


def test_domains_stay_immutable() -> None:
    import dataclasses
    import pickle

    domain = ErrorDomain("TEST", (600, 699))
    with pytest.raises(dataclasses.FrozenInstanceError):
        domain.start = 0  # type: ignore[misc]
    assert dataclasses.replace(domain, end=650) == ErrorDomain("TEST", 600, 650)
    assert pickle.loads(pickle.dumps(domain)) == domain
    assert repr(domain) == "ErrorDomain(name='TEST', start=600, end=699, description='')"


def test_is_valid_and_in() -> None:
    domain = ErrorDomain("TEST", (600, 699))
    assert domain.is_valid(600)
    assert domain.is_valid(699)
    assert not domain.is_valid(700)
    assert not domain.is_valid("650")
    assert 650 in domain
    assert 599 not in domain


def test_class_register_domain_shares_the_registry() -> None:
    business = ErrorDomain.register_domain("BUSINESS", (1000, 1999))
    assert get_domain("BUSINESS") is business
    assert ErrorDomain.get_domain("BUSINESS") is business
    assert ErrorDomain.get_domain("business") is business
    spelled = ErrorDomain.register_domain("billing", 2000, 2099, "Billing")
    assert spelled == ErrorDomain("BILLING", 2000, 2099, "Billing")
    assert business in list_domains()
    assert ErrorDomain.list_domains()[-2:] == ["BUSINESS", "BILLING"]
    assert ErrorDomain.get_domain_for_code(1500) is business
    # registered through the module function, seen by the class
    module_made = register_domain("SHIPPING", (3000, 3099))
    assert ErrorDomain.get_domain("SHIPPING") is module_made


def test_class_register_domain_refuses_a_taken_name() -> None:
    # As in the original: even an identical range raises; the module function accepts it.
    with pytest.raises(ValueError, match="already registered"):
        ErrorDomain.register_domain("AUTH", (200, 299))
    assert register_domain("AUTH", 200, 299) is ErrorDomain.AUTH
    with pytest.raises(ValueError, match="overlaps domain SERVER"):
        ErrorDomain.register_domain("X", (550, 650))


def test_class_lookups() -> None:
    assert ErrorDomain.get_domain("NOPE") is None
    assert ErrorDomain.get_domain_for_code(201) is ErrorDomain.AUTH
    assert ErrorDomain.get_domain_for_code(1000) is None
    assert ErrorDomain.list_domains() == ["AUTH", "RESOURCE", "VALIDATION", "SERVER", "CUSTOM"]
    assert [d.name for d in list_domains()] == ErrorDomain.list_domains()


def test_class_is_valid_code_is_false_for_an_unknown_domain() -> None:
    assert ErrorDomain.is_valid_code(201, "AUTH") is True
    assert ErrorDomain.is_valid_code(299, "auth") is True
    assert ErrorDomain.is_valid_code(300, "AUTH") is False
    assert ErrorDomain.is_valid_code(201, ErrorDomain.AUTH) is True
    assert ErrorDomain.is_valid_code(100, "NONEXISTENT") is False
    # ours, the module function, says why instead
    with pytest.raises(ValueError, match="unknown error domain"):
        is_valid_code(100, "NONEXISTENT")


def test_the_original_domains_dict_is_the_registry() -> None:
    saved = ErrorDomain._domains.copy()
    ErrorDomain.register_domain("TEMPORARY", (800, 899))
    assert "TEMPORARY" in ErrorDomain._domains
    ErrorDomain._domains.clear()
    ErrorDomain._domains.update(saved)
    assert get_domain("TEMPORARY") is None


def test_module_register_domain_takes_a_tuple_too() -> None:
    assert register_domain("PAYMENTS", (1000, 1099)).code_range == (1000, 1099)
