"""Registry rules: code range, one class per code, reloads, domains."""

from __future__ import annotations

import json

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


# The original fastapi-error-code's registry API, on our ErrorRegistry.


def plain(name: str) -> type[BaseAppException]:
    return type(name, (BaseAppException,), {"__module__": "app.errors", "__qualname__": name})


def test_register_in_the_original_form(registry: ErrorRegistry) -> None:
    cls = plain("AuthRequired")
    info = registry.register(201, cls, "Authentication required", status_code=401, team="id")
    assert registry.get(201) is info
    assert (info.status_code, info.domain, info.message_key) == (401, "AUTH", "errors.201")
    assert dict(info.metadata) == {"team": "id"}
    assert cls.__error_info__ is info
    exc = cls()
    assert (exc.error_code, exc.status_code, exc.message) == (201, 401, "Authentication required")
    by_keyword = registry.register(
        error_code=202, exception_class=plain("Other"), message="m", message_key="auth.other"
    )
    assert by_keyword.message_key == "auth.other"
    assert by_keyword.status_code == 400


def test_register_dispatches_on_the_first_argument(registry: ErrorRegistry) -> None:
    info = registry.register(1, plain("First"), "m")
    assert registry.register(info) is info
    assert registry.register(info=info) is info
    with pytest.raises(TypeError, match="no other argument"):
        registry.register(info, plain("X"), "m")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        registry.register(2, plain("Y"))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="must be a class"):
        registry.register(3, "not a class", "m")  # type: ignore[call-overload]


def test_register_in_the_original_form_is_checked(registry: ErrorRegistry) -> None:
    with pytest.raises(ValueError, match="status_code"):
        registry.register(1, plain("A"), "m", status_code=302)
    with pytest.raises(ValueError, match="0 to 9999"):
        registry.register(10000, plain("A"), "m")
    with pytest.raises(ValueError, match="unknown error domain"):
        registry.register(1, plain("A"), "m", domain="NOPE")
    with pytest.raises(ValueError, match="outside domain AUTH"):
        registry.register(301, plain("A"), "m", domain="AUTH")
    with pytest.raises(ValueError, match="message must be a str"):
        registry.register(1, plain("A"), None)  # type: ignore[call-overload]
    registry.register(1, plain("First"), "m")
    with pytest.raises(ValueError, match=r"already used by app\.errors\.First"):
        registry.register(1, plain("Second"), "m")
    assert len(registry) == 1


def test_a_class_that_is_no_app_exception_is_only_listed(registry: ErrorRegistry) -> None:
    class Legacy(Exception):
        pass

    registry.register(5, Legacy, "Legacy")  # type: ignore[call-overload]
    assert registry.get_exception(5) is Legacy
    assert not hasattr(Legacy, "__error_info__")


def test_original_lookups(registry: ErrorRegistry) -> None:
    cls = plain("Missing")
    registry.register(305, cls, "Not here", status_code=404, team="core")
    declare(registry, 201, "Denied")
    assert registry.is_registered(305)
    assert not registry.is_registered(306)
    assert registry.get_exception(305) is cls
    assert registry.get_exception(306) is None
    assert registry.get_message(305) == "Not here"
    assert registry.get_message(306) is None
    assert registry.get_metadata(305) == {
        "status_code": 404,
        "domain": "RESOURCE",
        "message_key": "errors.305",
        "team": "core",
    }
    assert registry.get_metadata(306) is None
    assert registry.get_all_codes() == [201, 305]
    info = registry.get_registry_info()
    assert list(info) == [201, 305]
    assert info[305] == {
        "class": cls,
        "message": "Not here",
        "metadata": registry.get_metadata(305),
    }
    registry.clear()
    assert registry.get_all_codes() == []


def test_positional_decorator_and_metadata(registry: ErrorRegistry) -> None:
    @register_exception(
        210, "Token expired", "auth.expired", 401, "AUTH", registry=registry, team="id"
    )
    class TokenExpired(BaseAppException):
        pass

    info = TokenExpired.__error_info__
    assert info is not None
    assert (info.error_code, info.message, info.message_key) == (
        210,
        "Token expired",
        "auth.expired",
    )
    assert (info.status_code, info.domain) == (401, "AUTH")
    assert dict(info.metadata) == {"team": "id"}
    attributes = {
        name: getattr(TokenExpired, name)
        for name in ("_error_code", "_default_message", "_message_key", "_status_code", "_domain")
    }
    assert attributes == {
        "_error_code": 210,
        "_default_message": "Token expired",
        "_message_key": "auth.expired",
        "_status_code": 401,
        "_domain": "AUTH",
    }


def test_message_made_from_the_class_name(
    registry: ErrorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @register_exception(9002, registry=registry)
    class PaymentFailedException(BaseAppException):
        pass

    assert PaymentFailedException().message == "Payment Failed"
    assert "9002" in caplog.text
    assert "Payment Failed" in caplog.text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("UserNotFoundException", "User Not Found"),
        ("HTTPException", "HTTP"),
        ("AuthRequiredException", "Auth Required"),
        ("PaymentFailedException", "Payment Failed"),
        ("HTTPSProxyError", "HTTPS Proxy Error"),
        ("XMLHttpRequestException", "XML Http Request"),
        ("IOError", "IO Error"),
        ("OAuth2TokenExpiredException", "O Auth2Token Expired"),
        ("AException", "A"),
        ("Denied", "Denied"),
        ("user_not_found", "user_not_found"),
        # Deliberately not the original's: it cuts 10 characters, one more than "Exception".
        ("Error404Exception", "Error404"),
        ("Exception", "Exception"),
    ],
)
def test_class_name_to_message(name: str, message: str) -> None:
    from fastapi_error_codes.registry import _class_name_to_message

    assert _class_name_to_message(name) == message


def test_decorator_metadata_is_read_only_and_hash_free(registry: ErrorRegistry) -> None:
    import copy
    import dataclasses
    import pickle

    tags = {"team": "payments", "tags": ["a"]}
    cls = declare(registry, 1000, "Declined", **tags)
    tags["team"] = "changed"
    info = registry.get(1000)
    assert info is not None
    assert info.metadata["team"] == "payments"
    with pytest.raises(TypeError):
        info.metadata["team"] = "x"  # type: ignore[index]
    assert hash(info) == hash(info)  # a list value does not make it unhashable
    assert copy.deepcopy(info) == info
    assert cls.__error_info__ is info  # type: ignore[attr-defined]
    unbound = dataclasses.replace(info, exception_class=None)  # a class of no real module
    assert pickle.loads(pickle.dumps(unbound)) == unbound
    assert unbound != dataclasses.replace(unbound, metadata={})


def test_metadata_defaults_to_empty(registry: ErrorRegistry) -> None:
    declare(registry, 1000, "Plain")
    info = registry.get(1000)
    assert info is not None
    assert dict(info.metadata) == {}


def test_registry_keyword_is_no_metadata(registry: ErrorRegistry) -> None:
    declare(registry, 1000, "Kept")
    assert default_registry.get(1000) is None
    assert dict(registry.get(1000).metadata) == {}  # type: ignore[union-attr]


def test_catalogue_shows_metadata(registry: ErrorRegistry) -> None:
    from fastapi_error_codes import error_catalog

    declare(registry, 1000, "Declined", team="payments", tier=1)
    declare(registry, 1001, "Plain")
    catalog = error_catalog(registry, include_builtin=False)
    assert dict(catalog.entries[0].metadata) == {"team": "payments", "tier": 1}
    rows = json.loads(catalog.to_json())
    assert rows[0]["metadata"] == {"team": "payments", "tier": 1}
    assert rows[1]["metadata"] == {}
    lines = catalog.to_markdown().splitlines()
    assert lines[0].endswith("| Built-in | Metadata |")
    assert lines[1] == "|---:|---|---:|---|---|---|---|"
    assert lines[2] == "| 1000 | Declined | 400 | Declined |  | no | team=payments, tier=1 |"
    assert lines[3] == "| 1001 | Plain | 400 | Plain |  | no |  |"


def test_catalogue_without_metadata_keeps_its_shape(registry: ErrorRegistry) -> None:
    from fastapi_error_codes import error_catalog

    declare(registry, 1001, "Plain")
    catalog = error_catalog(registry, include_builtin=False)
    assert "metadata" not in catalog.to_list()[0]
    assert "Metadata" not in catalog.to_markdown()


def test_catalogue_metadata_json_cannot_hold_is_text(registry: ErrorRegistry) -> None:
    import copy
    import pickle

    from fastapi_error_codes import error_catalog

    declare(registry, 1000, "Odd", owner=ErrorDomain.AUTH, note="a|b")
    catalog = error_catalog(registry, include_builtin=False)
    assert json.loads(catalog.to_json())[0]["metadata"]["owner"].startswith("ErrorDomain(")
    assert "note=a\\|b" in catalog.to_markdown()
    entry = catalog.entries[0]
    assert copy.deepcopy(entry) == entry
    assert pickle.loads(pickle.dumps(entry)) == entry
