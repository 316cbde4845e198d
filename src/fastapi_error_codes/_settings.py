"""What both configs share: reading fields from the environment by their declared types, presets.

``ErrorHandlerConfig`` and ``MetricsConfig`` are frozen dataclasses. Each field is read from
``<PREFIX><FIELD NAME>`` and parsed by its annotation: ``bool`` (1/true/yes/on, 0/false/no/off),
``int``, ``float``, ``str`` and ``Literal[...]`` (checked by the config itself), ``X | None``
(an empty value means None), and sequences (comma-separated, stored as a tuple). A field whose
type cannot come from text (a mapping of classes) says so with ``metadata={"env": False}``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

__all__ = ["ENV_PREFIX", "Settings", "parse_bool"]

#: Prefix of the environment variables both configs read by default.
ENV_PREFIX = "FEC_"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SEQUENCES = (tuple, list, collections.abc.Sequence)

S = TypeVar("S", bound="Settings")
Parser = Callable[[str], Any]


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config class (computed once per class)."""
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); anything else raises ValueError."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"use one of {', '.join(_TRUE + _FALSE)}")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def _parse_str(text: str) -> str:
    return text.strip()


def _optional(parse: Parser) -> Parser:
    def parse_optional(text: str) -> Any:
        return parse(text) if text.strip() else None

    return parse_optional


def _sequence(parse: Parser) -> Parser:
    def parse_items(text: str) -> tuple[Any, ...]:
        return tuple(parse(item) for item in text.split(",") if item.strip())

    return parse_items


def _parser_for(annotation: Any) -> Parser | None:
    """The parser of one declared type, or None when text cannot express it."""
    if annotation is bool:
        return parse_bool
    if annotation is int:
        return _parse_int
    if annotation is float:
        return _parse_float
    if annotation is str:
        return _parse_str
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return _parse_str  # the config's own validation names the allowed values
    if origin is Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if str in options:  # str | Path: the text is the value
            inner: Parser | None = _parse_str
        elif len(options) == 1:
            inner = _parser_for(options[0])
        else:
            return None
        if inner is None:
            return None
        return _optional(inner) if type(None) in args else inner
    if origin in _SEQUENCES:
        item = _parser_for(args[0]) if args else _parse_str
        return _sequence(item) if item is not None else None
    return None


class Settings:
    """Mixin of the library's frozen dataclass configs: ``replace``, ``from_env``, presets."""

    def _check_flags(self) -> None:
        """Every field declared ``bool`` must hold True or False (not 1, not "yes")."""
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if hints[f.name] is bool and not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"{type(self).__name__}.{f.name} must be True or False")

    def replace(self: S, **changes: Any) -> S:
        """Return a copy with *changes* applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def _preset(cls: type[S], base: Mapping[str, Any], overrides: Mapping[str, Any]) -> S:
        """A preset: *base* values, then the caller's *overrides*."""
        return cls(**{**base, **overrides})

    @classmethod
    def from_env(
        cls: type[S], environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
    ) -> S:
        """Build a config from ``<prefix><FIELD>`` variables; bad values name the variable."""
        env = os.environ if environ is None else environ
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init or f.metadata.get("env", True) is False:
                continue
            var = prefix + f.name.upper()
            if var not in env:
                continue
            parse = _parser_for(hints[f.name])
            if parse is None:
                raise TypeError(
                    f"{cls.__name__}.{f.name} ({hints[f.name]}) cannot be read from the "
                    'environment: declare it with metadata={"env": False}'
                )
            try:
                values[f.name] = parse(env[var])
            except ValueError as exc:
                raise ValueError(f"{var}={env[var]!r} is not valid: {exc}") from None
        try:
            return cls(**values)
        except ValueError as exc:
            names = ", ".join(prefix + k.upper() for k in values)
            raise ValueError(f"{exc} (from environment variables: {names or 'none'})") from None
