"""What both configs share: reading fields from the environment by their declared types, presets.

``ErrorHandlerConfig`` and ``MetricsConfig`` are frozen dataclasses. Each field is read from
``<PREFIX><FIELD NAME>`` and parsed by its annotation: ``bool`` (1/true/yes/on, 0/false/no/off),
``int``, ``float``, ``str`` and ``Literal[...]`` (checked by the config itself), ``X | None``
(an empty value means None), and sequences (comma-separated, stored as a tuple). A field whose
type cannot come from text (a mapping of classes) says so with ``metadata={"env": False}``.

A config may also declare other names of its variables in ``legacy_env`` (variable -> field),
e.g. those of the original fastapi-error-code (``ERROR_LOCALE``, ``METRICS_MAX_EVENTS``). They
are read only with the default prefix, and a ``<PREFIX><FIELD>`` variable that is set wins.

A variable that starts with the prefix but that no config reads (a misspelt ``FEC_REDISURL``)
is logged once per process as a warning on the ``fastapi_error_codes`` logger, naming the
closest known variable; it never raises (a deployment may set variables of a newer version).

Configs also convert to and from plain dicts: ``to_dict``/``from_dict``, ``copy``/``update``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import logging
import os
import threading
import types
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, Union

__all__ = ["ENV_PREFIX", "Settings", "parse_bool"]

#: Prefix of the environment variables both configs read by default.
ENV_PREFIX = "FEC_"

_log = logging.getLogger("fastapi_error_codes")

#: Names after the prefix that ``from_env`` knows although no loaded config may declare them.
#: They are the fields of ``MetricsConfig``: the error core must not import the monitoring part
#: (tests/test_layers.py; importing it also loads the Redis and Prometheus clients), so an app
#: that reads only ``ErrorHandlerConfig`` has not loaded it, while a shared ConfigMap or
#: docker-compose.yml sets its variables for every process. Fields of loaded configs are found
#: by themselves (``Settings.__subclasses__()``); tests/core/test_env_warnings.py keeps this
#: list equal to MetricsConfig's. deploy/, examples/, docs/, Dockerfile and docker-compose.yml
#: use no other ``FEC_`` variable; one the project reads outside a config belongs here too.
_KNOWN_ENV_FIELDS: frozenset[str] = frozenset(
    {
        "enabled",
        "collection_interval_ms",
        "max_events",
        "prometheus_enabled",
        "sentry_enabled",
        "sentry_dsn",
        "dashboard_enabled",
        "pii_patterns",
        "redis_url",
        "namespace",
        "flush_interval_ms",
        "retention_s",
        "max_series",
        "max_route_series",
        "max_text_length",
        "max_pending",
        "max_events_per_flush",
        "redis_timeout_ms",
        "redis_max_connections",
        "redis_min_replicas",
        "redis_shards",
        "read_concurrency",
        "read_cache_ms",
        "metrics_path",
        "dashboard_prefix",
        "auth_token",
        "include_in_schema",
        "count_requests",
        "sentry_base_url",
        "sentry_capture_4xx",
        "sentry_environment",
        "sentry_capture_budget",
        "sentry_budget_interval_s",
    }
)

#: Unknown variables already warned about in this process (one warning per variable).
_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()

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


def _expected_number(kind: type, field_name: str) -> str:
    """The form a number field wants, with the unit its name implies (``_ms``, ``_s``)."""
    whole = "a whole number" if kind is int else "a number"
    if field_name.endswith("_ms"):
        return f"{whole} of milliseconds, e.g. 1000 (no unit suffix)"
    if field_name.endswith("_s"):
        return f"{whole} of seconds, e.g. 60 (no unit suffix)"
    return f"{whole}, e.g. 10" if kind is int else f"{whole}, e.g. 0.5"


def _number(kind: type[int] | type[float], field_name: str) -> Parser:
    """A parser of ``int`` or ``float`` whose error names the expected form and unit."""
    expected = _expected_number(kind, field_name)

    def parse_number(text: str) -> int | float:
        try:
            return kind(text.strip())
        except ValueError:
            raise ValueError(f"expected {expected}") from None

    return parse_number


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


def _parser_for(annotation: Any, field_name: str = "") -> Parser | None:
    """The parser of one declared type, or None when text cannot express it.

    *field_name* gives a number's unit in its error (``flush_interval_ms``: milliseconds).
    """
    if annotation is bool:
        return parse_bool
    if annotation is int or annotation is float:
        return _number(annotation, field_name)
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
            inner = _parser_for(options[0], field_name)
        else:
            return None
        if inner is None:
            return None
        return _optional(inner) if type(None) in args else inner
    if origin in _SEQUENCES:
        item = _parser_for(args[0], field_name) if args else _parse_str
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


def _settings_classes() -> list[type[Settings]]:
    """Every dataclass config of this process: the subclasses of ``Settings``, recursively."""
    found: list[type[Settings]] = []
    pending = list(Settings.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return [cls for cls in found if dataclasses.is_dataclass(cls)]


def _warn_unknown(env: Mapping[str, str], prefix: str) -> None:
    """Log each ``FEC_`` variable that no config reads, once per process.

    Only the library's own prefix is checked: an app that passes its own (``APP_``) shares it
    with variables of its own, which are none of the library's business.
    """
    if prefix != ENV_PREFIX:
        return
    candidates = [var for var in env if var.startswith(prefix)]
    if not candidates:
        return
    known = {prefix + name.upper() for name in _KNOWN_ENV_FIELDS}
    unreadable: dict[str, str] = {}  # variable -> "Config.field" declared env=False
    for cls in _settings_classes():
        for f in cls._init_fields():
            var = prefix + f.name.upper()
            if f.metadata.get("env", True) is not False:
                known.add(var)
            else:
                unreadable.setdefault(var, f"{cls.__name__}.{f.name}")
        if prefix == ENV_PREFIX:
            known.update(cls.legacy_env)
    for var in sorted(candidates):
        if var in known:
            continue
        with _WARNED_LOCK:
            if var in _WARNED:
                continue
            _WARNED.add(var)
        if var in unreadable:
            _log.warning(
                "Environment variable %s is ignored: %s cannot be set from the environment",
                var,
                unreadable[var],
            )
            continue
        close = difflib.get_close_matches(var, known, n=1)
        hint = f"did you mean {close[0]}?" if close else "no similar variable is known"
        _log.warning(
            "Environment variable %s is ignored: no fastapi-error-codes setting has that name; %s",
            var,
            hint,
        )


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
        A ``<prefix>*`` variable that no config reads is logged once (a warning), never raised.
        """
        env = os.environ if environ is None else environ
        _warn_unknown(env, prefix)
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
            parse = _parser_for(hints[name], name)
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
