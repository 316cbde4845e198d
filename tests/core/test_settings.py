"""The environment loader both configs share: each field parsed by its declared type."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from fastapi_error_codes import ErrorHandlerConfig
from fastapi_error_codes._settings import Settings


@dataclass(frozen=True)
class Sample(Settings):
    flag: bool = False
    count: int = 0
    ratio: float = 0.5
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    maybe: int | None = None
    where: str | Path | None = None
    items: Sequence[str] = ()
    numbers: tuple[int, ...] = ()
    table: Mapping[str, int] = field(default_factory=dict, metadata={"env": False})


def test_each_field_is_parsed_by_its_declared_type() -> None:
    env = {
        "FEC_FLAG": "Yes",
        "FEC_COUNT": " 7 ",
        "FEC_RATIO": "0.25",
        "FEC_NAME": "  spaced  ",
        "FEC_MODE": "b",
        "FEC_MAYBE": "3",
        "FEC_WHERE": "/tmp",
        "FEC_ITEMS": "a, b,,c ",
        "FEC_NUMBERS": "1,2",
        "FEC_TABLE": "ignored: not readable from text",
    }
    got = Sample.from_env(env)
    assert got == Sample(True, 7, 0.25, "spaced", "b", 3, "/tmp", ("a", "b", "c"), (1, 2))


def test_empty_optional_values_mean_none() -> None:
    assert Sample.from_env({"FEC_MAYBE": "", "FEC_WHERE": " "}) == Sample()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"FEC_FLAG": "maybe"}, r"FEC_FLAG='maybe' is not valid: use one of 1, true"),
        ({"FEC_COUNT": "many"}, r"FEC_COUNT='many' is not valid: expected a whole number"),
        ({"FEC_RATIO": "half"}, r"FEC_RATIO='half' is not valid: expected a number"),
        ({"FEC_NUMBERS": "1,x"}, r"FEC_NUMBERS='1,x' is not valid"),
    ],
)
def test_bad_text_names_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Sample.from_env(env)


def test_a_type_text_cannot_express_is_refused_by_name() -> None:
    @dataclass(frozen=True)
    class Odd(Settings):
        table: Mapping[str, int] = field(default_factory=dict)

    with pytest.raises(TypeError, match=r"Odd.table .* cannot be read from the environment"):
        Odd.from_env({"FEC_TABLE": "x"})
    assert Odd.from_env({}) == Odd()  # only a variable that is set is parsed


def test_prefix_and_replace() -> None:
    assert Sample.from_env({"APP_COUNT": "2"}, prefix="APP_").count == 2
    assert Sample().replace(count=5) == Sample(count=5)


def test_bool_fields_refuse_truthy_values() -> None:
    @dataclass(frozen=True)
    class Checked(Settings):
        flag: bool = False

        def __post_init__(self) -> None:
            self._check_flags()

    with pytest.raises(ValueError, match=r"Checked.flag must be True or False"):
        Checked(flag=1)  # type: ignore[arg-type]


def test_both_configs_share_the_method_name() -> None:
    env = {"FEC_DEBUG_MODE": "on"}
    assert ErrorHandlerConfig.from_env(env) == ErrorHandlerConfig.from_environment(env)
    assert ErrorHandlerConfig.from_env(env).debug_mode is True
    # framework_errors (classes) is declared not readable from text: a variable is ignored
    assert ErrorHandlerConfig.from_env({"FEC_FRAMEWORK_ERRORS": "x"}) == ErrorHandlerConfig()


def test_copy_update_and_dicts() -> None:
    sample = Sample(count=3, items=("a", "b"), table={"k": 1})
    copied = sample.copy()
    assert copied == sample and copied is not sample
    assert sample.update(count=4) == sample.replace(count=4)
    assert sample.update(count=4) == Sample(count=4, items=("a", "b"), table={"k": 1})
    with pytest.raises(ValueError, match="one of 'json'"):
        ErrorHandlerConfig().update(response_format="xml")  # validated like the constructor
    data = sample.to_dict()
    assert data["items"] == ["a", "b"] and type(data["items"]) is list
    assert data["table"] == {"k": 1} and type(data["table"]) is dict
    assert data["where"] is None and data["mode"] == "a"
    assert list(data) == [f.name for f in dataclasses.fields(Sample)]
    assert Sample.from_dict(data) == sample
    assert Sample.from_dict({"count": 9}) == Sample(count=9)  # missing keys: defaults


def test_from_dict_refuses_unknown_keys_naming_the_allowed() -> None:
    with pytest.raises(ValueError, match=r"unknown keys colour, size; allowed: flag, count"):
        Sample.from_dict({"size": 1, "colour": "red", "count": 2})
    with pytest.raises(TypeError, match="needs a mapping"):
        Sample.from_dict([("count", 1)])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Legacy(Settings):
    legacy_env: ClassVar[Mapping[str, str]] = {"OLD_COUNT": "count", "OLD_ITEMS": "items"}

    count: int = 0
    items: Sequence[str] = ()
    table: Mapping[str, int] = field(default_factory=dict, metadata={"env": False})


def test_legacy_names_are_read_and_ours_win() -> None:
    assert Legacy.from_env({"OLD_COUNT": "2", "OLD_ITEMS": "a,b"}) == Legacy(2, ("a", "b"))
    assert Legacy.from_env({"OLD_COUNT": "2", "FEC_COUNT": "5"}).count == 5
    # ours wins even when it is the one holding a bad value: the error names it
    with pytest.raises(ValueError, match=r"^FEC_COUNT='x'"):
        Legacy.from_env({"OLD_COUNT": "2", "FEC_COUNT": "x"})
    with pytest.raises(ValueError, match=r"^OLD_COUNT='x' is not valid: expected a whole number"):
        Legacy.from_env({"OLD_COUNT": "x"})


def test_legacy_names_are_read_only_with_the_default_prefix() -> None:
    assert Legacy.from_env({"OLD_COUNT": "2"}, prefix="APP_") == Legacy()
    assert Legacy.from_env({"OLD_COUNT": "2", "APP_COUNT": "3"}, prefix="APP_").count == 3


def test_a_legacy_name_of_an_unreadable_field_is_a_declaration_error() -> None:
    @dataclass(frozen=True)
    class Wrong(Settings):
        legacy_env: ClassVar[Mapping[str, str]] = {"OLD_TABLE": "table"}

        table: Mapping[str, int] = field(default_factory=dict, metadata={"env": False})

    with pytest.raises(TypeError, match=r"Wrong.legacy_env maps OLD_TABLE to 'table'"):
        Wrong.from_env({})


def test_validation_errors_name_the_variables_used() -> None:
    with pytest.raises(
        ValueError, match=r"language tag.*\(from environment variables: ERROR_LOCALE\)"
    ):
        ErrorHandlerConfig.from_env({"ERROR_LOCALE": "../x"})


@dataclass(frozen=True)
class Units(Settings):
    interval_ms: int = 1000
    window_s: int = 60
    count: int = 0
    delay_ms: float = 0.0
    timeout_s: float = 1.0
    ratio: float = 0.5
    maybe_ms: int | None = None
    steps_ms: tuple[int, ...] = ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FEC_INTERVAL_MS": "1s"},
            "FEC_INTERVAL_MS='1s' is not valid: "
            "expected a whole number of milliseconds, e.g. 1000 (no unit suffix)",
        ),
        (
            {"FEC_WINDOW_S": "1m"},
            "FEC_WINDOW_S='1m' is not valid: "
            "expected a whole number of seconds, e.g. 60 (no unit suffix)",
        ),
        ({"FEC_COUNT": "ten"}, "FEC_COUNT='ten' is not valid: expected a whole number, e.g. 10"),
        (
            {"FEC_DELAY_MS": "2.5ms"},
            "FEC_DELAY_MS='2.5ms' is not valid: "
            "expected a number of milliseconds, e.g. 1000 (no unit suffix)",
        ),
        (
            {"FEC_TIMEOUT_S": "0.5s"},
            "FEC_TIMEOUT_S='0.5s' is not valid: "
            "expected a number of seconds, e.g. 60 (no unit suffix)",
        ),
        ({"FEC_RATIO": "half"}, "FEC_RATIO='half' is not valid: expected a number, e.g. 0.5"),
        (
            {"FEC_MAYBE_MS": "5 ms"},
            "FEC_MAYBE_MS='5 ms' is not valid: "
            "expected a whole number of milliseconds, e.g. 1000 (no unit suffix)",
        ),
        (
            {"FEC_STEPS_MS": "10,20ms"},
            "FEC_STEPS_MS='10,20ms' is not valid: "
            "expected a whole number of milliseconds, e.g. 1000 (no unit suffix)",
        ),
    ],
)
def test_a_bad_number_names_the_variable_and_the_unit_of_its_name(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Units.from_env(env)
    assert str(caught.value) == message


def test_numbers_with_units_in_their_names_still_read_plain_numbers() -> None:
    env = {"FEC_INTERVAL_MS": " 250 ", "FEC_TIMEOUT_S": "0.5", "FEC_STEPS_MS": "10,20"}
    assert Units.from_env(env) == Units(interval_ms=250, timeout_s=0.5, steps_ms=(10, 20))


def test_the_metrics_interval_names_its_unit() -> None:
    from fastapi_error_codes.metrics.config import MetricsConfig

    with pytest.raises(ValueError) as caught:
        MetricsConfig.from_env({"FEC_FLUSH_INTERVAL_MS": "1s"})
    assert str(caught.value) == (
        "FEC_FLUSH_INTERVAL_MS='1s' is not valid: "
        "expected a whole number of milliseconds, e.g. 1000 (no unit suffix)"
    )
    with pytest.raises(ValueError, match=r"^METRICS_MAX_EVENTS='lots' is not valid: expected a"):
        MetricsConfig.from_env({"METRICS_MAX_EVENTS": "lots"})  # the original's names too
