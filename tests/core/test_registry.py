"""Registry rules: code range, one class per code, reloads, domains."""

from __future__ import annotations

import pytest

from fastapi_error_codes import (
    BaseAppException,
    ErrorDomain,
    ErrorRegistry,
    default_registry,
    register_domain,
    register_exception,
)


def declare(registry: ErrorRegistry, code: int, name: str, **kwargs: object) -> type:
    cls = type(name, (BaseAppException,), {"__module__": "app.errors", "__qualname__": name})
    return register_exception(error_code=code, message=name, registry=registry, **kwargs)(cls)  # type: ignore[arg-type]


def test_register_and_look_up(registry: ErrorRegistry) -> None:
    cls = declare(registry, 305, "Missing", status_code=404)
    info = registry.get(305)
    assert info is not None
    assert info.exception_class is cls
    assert (info.error_name, info.status_code, info.domain) == ("Missing", 404, "RESOURCE")
    assert info.message_key == "errors.305"
    assert registry.get_by_name("Missing") is info
    assert 305 in registry
    assert len(registry) == 1
    assert list(registry) == [info]


def test_default_registry_is_used(registry: ErrorRegistry) -> None:
    @register_exception(error_code=9001, message="m")
    class Declared(BaseAppException):
        pass

    assert default_registry.get(9001) is Declared.__error_info__
    assert registry.get(9001) is None


@pytest.mark.parametrize("code", [-1, 10000, 1.5, True, "12"])
def test_code_out_of_range(registry: ErrorRegistry, code: object) -> None:
    with pytest.raises(ValueError, match="0 to 9999"):
        register_exception(error_code=code, message="m")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [0, 9999])
def test_code_bounds_are_allowed(registry: ErrorRegistry, code: int) -> None:
    declare(registry, code, f"E{code}")
    assert code in registry


def test_status_must_be_an_error(registry: ErrorRegistry) -> None:
    with pytest.raises(ValueError, match="status_code"):
        register_exception(error_code=1, message="m", status_code=200)


def test_duplicate_code_names_both(registry: ErrorRegistry) -> None:
    declare(registry, 1000, "First")
    with pytest.raises(ValueError) as info:
        declare(registry, 1000, "Second")
    assert "app.errors.First" in str(info.value)
    assert "app.errors.Second" in str(info.value)
    assert "1000" in str(info.value)


def test_same_class_again_is_fine(registry: ErrorRegistry) -> None:
    cls = declare(registry, 1000, "Again")
    register_exception(error_code=1000, message="Again", registry=registry)(cls)
    assert len(registry) == 1


def test_reloaded_class_replaces_the_old_one(registry: ErrorRegistry) -> None:
    declare(registry, 1000, "Reloaded")
    new = declare(registry, 1000, "Reloaded")  # a new class object, same module and name
    info = registry.get(1000)
    assert info is not None
    assert info.exception_class is new


def test_reload_with_a_new_code_drops_the_old(registry: ErrorRegistry) -> None:
    declare(registry, 1000, "Moved")
    declare(registry, 1001, "Moved")
    assert 1000 not in registry
    assert 1001 in registry


def test_non_exception_class_is_rejected(registry: ErrorRegistry) -> None:
    with pytest.raises(TypeError, match="BaseAppException subclass"):
        register_exception(error_code=1, message="m", registry=registry)(ValueError)  # type: ignore[type-var]


def test_domain_by_name_and_object(registry: ErrorRegistry) -> None:
    declare(registry, 250, "A", domain="auth")
    declare(registry, 251, "B", domain=ErrorDomain.AUTH)
    assert registry.get(250).domain == "AUTH"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="outside domain AUTH"):
        declare(registry, 350, "C", domain="AUTH")
    with pytest.raises(ValueError, match=r"unknown error domain 'NOPE'.*AUTH"):
        declare(registry, 350, "D", domain="NOPE")


def test_custom_domain(registry: ErrorRegistry) -> None:
    register_domain("billing", 2000, 2099, "Billing")
    declare(registry, 2001, "Declined", domain="BILLING")
    assert registry.get(2001).domain == "BILLING"  # type: ignore[union-attr]


def test_unregister_and_clear(registry: ErrorRegistry) -> None:
    declare(registry, 1, "A")
    declare(registry, 2, "B")
    registry.unregister(1)
    assert [i.error_code for i in registry.all()] == [2]
    registry.clear()
    assert len(registry) == 0


def test_undeclared_subclass_inherits_the_code(registry: ErrorRegistry) -> None:
    parent = declare(registry, 3, "Parent", status_code=409)

    class Child(parent):  # type: ignore[valid-type, misc]
        pass

    exc = Child()
    assert (exc.error_code, exc.status_code, exc.error_name) == (3, 409, "Child")
