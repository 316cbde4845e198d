"""The environment loader both configs share: each field parsed by its declared type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
