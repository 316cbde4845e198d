"""What both configs share: reading fields from the environment by their declared types, presets.

``ErrorHandlerConfig`` and ``MetricsConfig`` are frozen dataclasses. Each field is read from
``<PREFIX><FIELD NAME>`` and parsed by its annotation: ``bool`` (1/true/yes/on, 0/false/no/off),
``int``, ``float``, ``str`` and ``Literal[...]`` (checked by the config itself), ``X | None``
(an empty value means None), and sequences (comma-separated, stored as a tuple). A field whose
type cannot come from text (a mapping of classes) says so with ``metadata={"env": False}``.

A config may also declare other names of its variables in ``legacy_env`` (variable -> field),
e.g. those of the original fastapi-error-code (``ERROR_LOCALE``, ``METRICS_MAX_EVENTS``). They
are read only with the default prefix, and a ``<PREFIX><FIELD>`` variable that is set wins.

Configs also convert to and from plain dicts: ``to_dict``/``from_dict``, ``copy``/``update``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, Union

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


def _is_sequence(annotation: Any) -> bool:
    """Whether *annotation* is a sequence type (``Sequence[str]``, ``tuple[int, ...]``)."""
    return annotation in _SEQUENCES or typing.get_origin(annotation) in _SEQUENCES


def _plain(value: Any) -> Any:
    """A field value as ``to_dict`` gives it: tuples as lists, mappings as plain dicts."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


class Settings:
    """Mixin of the library's frozen dataclass configs.

    ``replace``/``update``, ``copy``, ``to_dict``/``from_dict``, ``from_env``, presets.
    """

    #: Other environment variables read by ``from_env`` with the default prefix only:
    #: variable name -> field name. A ``<PREFIX><FIELD>`` variable that is set wins.
    legacy_env: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def _check_flags(self) -> None:
        """Every field declared ``bool`` must hold True or False (not 1, not "yes")."""
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if hints[f.name] is bool and not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"{type(self).__name__}.{f.name} must be True or False")

    def replace(self: S, **changes: Any) -> S:
        """Return a copy with *changes* applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def update(self: S, **changes: Any) -> S:
        """Return a copy with *changes* applied (validated again); the same as :meth:`replace`."""
        return self.replace(**changes)

    def copy(self: S) -> S:
        """Return a new instance equal to this one."""
        return self.replace()

    @classmethod
    def _init_fields(cls) -> list[dataclasses.Field[Any]]:
        return [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Every field by name: tuples as lists, mappings as plain dicts, other values as they are.

        ``from_dict(config.to_dict())`` gives an equal config. Secrets (a DSN, a URL with a
        password, a token) are included: do not log the result.
        """
        return {f.name: _plain(getattr(self, f.name)) for f in self._init_fields()}

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Build a config from a mapping of field names; missing fields take their defaults.

        An unknown key raises ``ValueError`` naming the allowed keys; values are validated as
        by the constructor.
        """
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{cls.__name__}.from_dict() needs a mapping, got {type(data).__name__}"
            )
        allowed = [f.name for f in cls._init_fields()]
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise ValueError(
                f"{cls.__name__}.from_dict() got unknown keys {', '.join(unknown)}; "
                f"allowed: {', '.join(allowed)}"
            )
        hints = _hints(cls)
        # to_dict gives tuples as lists: a list for a field declared as a sequence is a tuple
        return cls(
            **{
                k: tuple(v) if isinstance(v, list) and _is_sequence(hints[k]) else v
                for k, v in data.items()
            }
        )

    @classmethod
    def _preset(cls: type[S], base: Mapping[str, Any], overrides: Mapping[str, Any]) -> S:
        """A preset: *base* values, then the caller's *overrides*."""
        return cls(**{**base, **overrides})

    @classmethod
    def _env_names(cls, prefix: str) -> dict[str, list[str]]:
        """Field -> the variables that may set it, the winning one first."""
        names: dict[str, list[str]] = {}
        for f in cls._init_fields():
            if f.metadata.get("env", True) is not False:
                names[f.name] = [prefix + f.name.upper()]
        if prefix == ENV_PREFIX:
            for var, name in cls.legacy_env.items():
                if name not in names:
                    raise TypeError(
                        f"{cls.__name__}.legacy_env maps {var} to {name!r}, which is not a field "
                        "read from the environment"
                    )
                names[name].append(var)
        return names

    @classmethod
    def from_env(
        cls: type[S], environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
    ) -> S:
        """Build a config from ``<prefix><FIELD>`` variables; bad values name the variable.

        With the default prefix the class's ``legacy_env`` names are read too; when a field's
        ``<prefix><FIELD>`` variable and a legacy one are both set, ``<prefix><FIELD>`` wins.
        """
        env = os.environ if environ is None else environ
        hints = _hints(cls)
        values: dict[str, Any] = {}
        used: list[str] = []
        for name, candidates in cls._env_names(prefix).items():
            # An empty legacy variable is unset (the original project read "" as the default).
            var = next(
                (v for i, v in enumerate(candidates) if v in env and (i == 0 or env[v].strip())),
                None,
            )
            if var is None:
                continue
            parse = _parser_for(hints[name])
            if parse is None:
                raise TypeError(
                    f"{cls.__name__}.{name} ({hints[name]}) cannot be read from the "
                    'environment: declare it with metadata={"env": False}'
                )
            try:
                values[name] = parse(env[var])
            except ValueError as exc:
                raise ValueError(f"{var}={env[var]!r} is not valid: {exc}") from None
            used.append(var)
        try:
            return cls(**values)
        except ValueError as exc:
            names = ", ".join(used)
            raise ValueError(f"{exc} (from environment variables: {names or 'none'})") from None
