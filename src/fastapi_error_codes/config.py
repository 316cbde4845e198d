"""ErrorHandlerConfig: the frozen, validated settings of the exception handlers."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from fastapi_error_codes._settings import ENV_PREFIX, Settings
from fastapi_error_codes.errors import BaseAppException

__all__ = ["LOG_LEVELS", "RESPONSE_FORMATS", "ErrorHandlerConfig", "LogLevel", "ResponseFormat"]

ResponseFormat = Literal["json", "problem+json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
#: The levels a config may log answered errors at.
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The body formats a config may name.
RESPONSE_FORMATS: tuple[str, ...] = ("json", "problem+json")

_LOCALE_RE = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")


#: ``app.state`` attribute holding the ErrorHandlerConfig once the handlers are installed.
CONFIG_STATE_ATTR = "fastapi_error_codes_config"

_HEADER_RE = re.compile(r"[A-Za-z0-9-]{1,64}")


def _check_locale(name: str, value: object) -> None:
    if not isinstance(value, str) or not _LOCALE_RE.match(value):
        raise ValueError(
            f"ErrorHandlerConfig.{name} must be a language tag such as 'en' or 'pt-BR', "
            f"got {value!r}"
        )


_PRESET_POSITIONAL = ("default_locale", "fallback_locales", "locale_dir")


def _positional_preset(args: tuple[Any, ...]) -> dict[str, Any]:
    """The original project's positional preset arguments, by field name."""
    if len(args) > len(_PRESET_POSITIONAL):
        raise TypeError(
            f"a preset takes at most {len(_PRESET_POSITIONAL)} positional arguments "
            f"({', '.join(_PRESET_POSITIONAL)}), got {len(args)}"
        )
    return dict(zip(_PRESET_POSITIONAL, args, strict=False))


@dataclass(frozen=True)
class ErrorHandlerConfig(Settings):
    """How errors are answered: body format, localisation, and how much a 500 may reveal."""

    #: The original fastapi-error-code's variables, read by ``from_env`` besides ``FEC_<FIELD>``
    #: (which wins when both are set), and only with the default prefix.
    legacy_env: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "ERROR_LOCALE": "default_locale",
            "ERROR_FALLBACK_LOCALES": "fallback_locales",
            "ERROR_DEBUG": "debug_mode",
            "ERROR_TRACEBACK": "include_traceback",
            "ERROR_LOCALE_DIR": "locale_dir",
        }
    )

    default_locale: str = "en"
    fallback_locales: Sequence[str] = ()
    debug_mode: bool = False
    include_traceback: bool = False
    locale_dir: str | Path | None = None
    response_format: ResponseFormat = "json"
    #: Base URI of problem ``type`` members: ``<base>/<error_code>``; None means about:blank.
    problem_type_base: str | None = None
    #: Level of the one log line of each answered 4xx (``fastapi_error_codes.errors`` logger).
    log_level_4xx: LogLevel = "INFO"
    #: Level of the one log line of each answered 5xx (with the traceback if unexpected).
    log_level_5xx: LogLevel = "ERROR"
    #: Header the request id is read from and sent back in (None: no request ids). A valid
    #: incoming id (1-64 of letters, digits and ``._:+/=@-``) is kept; otherwise one is made.
    request_id_header: str | None = "X-Request-ID"
    #: Also put ``request_id`` (and ``trace_id`` when known) in every error body.
    request_id_in_body: bool = False
    #: Declared classes that replace the built-in framework errors, keyed by HTTP status.
    framework_errors: Mapping[int, type[BaseAppException]] = field(
        default_factory=lambda: MappingProxyType({}), metadata={"env": False}
    )

    def __post_init__(self) -> None:
        """Validate every field; bad values raise ``ValueError`` naming what is allowed."""
        _check_locale("default_locale", self.default_locale)
        if self.fallback_locales is None:  # the original project's presets pass None
            object.__setattr__(self, "fallback_locales", ())
        if isinstance(self.fallback_locales, str):
            raise ValueError("ErrorHandlerConfig.fallback_locales must be a list of language tags")
        for tag in self.fallback_locales:
            _check_locale("fallback_locales", tag)
        object.__setattr__(self, "fallback_locales", tuple(self.fallback_locales))
        self._check_flags()
        if self.response_format not in RESPONSE_FORMATS:
            raise ValueError(
                f"ErrorHandlerConfig.response_format must be one of "
                f"{', '.join(repr(f) for f in RESPONSE_FORMATS)}; got {self.response_format!r}"
            )
        for name in ("log_level_4xx", "log_level_5xx"):
            level = getattr(self, name)
            upper = level.upper() if isinstance(level, str) else level
            if upper not in LOG_LEVELS:
                raise ValueError(
                    f"ErrorHandlerConfig.{name} must be one of {', '.join(LOG_LEVELS)}; "
                    f"got {level!r}"
                )
            object.__setattr__(self, name, upper)
        if self.locale_dir is not None and not Path(self.locale_dir).is_dir():
            raise ValueError(
                f"ErrorHandlerConfig.locale_dir must be an existing directory of <locale>.json "
                f"files, got {str(self.locale_dir)!r}"
            )
        if self.problem_type_base is not None and (
            not isinstance(self.problem_type_base, str) or not _URI_RE.match(self.problem_type_base)
        ):
            raise ValueError(
                "ErrorHandlerConfig.problem_type_base must be an absolute URI such as "
                f"'https://errors.example.com', got {self.problem_type_base!r}"
            )
        header = self.request_id_header
        if header is not None and (
            not isinstance(header, str) or _HEADER_RE.fullmatch(header) is None
        ):
            raise ValueError(
                "ErrorHandlerConfig.request_id_header must be a header name (1-64 of letters, "
                f"digits and -), or None for no request ids; got {header!r}"
            )
        self._check_framework_errors()

    def _check_framework_errors(self) -> None:
        checked: dict[int, type[BaseAppException]] = {}
        for status, cls in dict(self.framework_errors).items():
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(
                    "ErrorHandlerConfig.framework_errors keys must be HTTP statuses 400-599, "
                    f"got {status!r}"
                )
            info = getattr(cls, "__error_info__", None)
            if not isinstance(cls, type) or not issubclass(cls, BaseAppException) or info is None:
                raise ValueError(
                    "ErrorHandlerConfig.framework_errors values must be classes declared with "
                    f"@register_exception, got {cls!r} for {status}"
                )
            if info.status_code != status:
                raise ValueError(
                    f"ErrorHandlerConfig.framework_errors[{status}] is {cls.__name__}, which is "
                    f"declared with status {info.status_code}; declare it with {status}"
                )
            checked[status] = cls
        object.__setattr__(self, "framework_errors", MappingProxyType(checked))

    def __hash__(self) -> int:
        # The generated hash would fail on the framework_errors mapping; hash its items.
        return hash(
            tuple(
                tuple(sorted(value.items())) if f.name == "framework_errors" else value
                for f in dataclasses.fields(self)
                for value in (getattr(self, f.name),)
            )
        )

    @property
    def media_type(self) -> str:
        """The Content-Type of error bodies in the configured format."""
        if self.response_format == "problem+json":
            return "application/problem+json"
        return "application/json"

    @classmethod
    def development(cls, *args: Any, **overrides: Any) -> ErrorHandlerConfig:
        """Local development: 500 bodies show the exception and its traceback.

        Takes any field by keyword, or the original project's positional
        ``(default_locale, fallback_locales, locale_dir)``.
        """
        base = {"debug_mode": True, "include_traceback": True}
        return cls._preset(base, {**_positional_preset(args), **overrides})

    @classmethod
    def production(cls, *args: Any, **overrides: Any) -> ErrorHandlerConfig:
        """Production: a 500 body reveals nothing about the exception.

        Takes any field by keyword, or the original project's positional
        ``(default_locale, fallback_locales, locale_dir)``.
        """
        base = {"debug_mode": False, "include_traceback": False}
        return cls._preset(base, {**_positional_preset(args), **overrides})

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
    ) -> ErrorHandlerConfig:
        """The same as :meth:`from_env`, under the original's name.

        Reads ``FEC_<FIELD>`` and, with the default prefix, the original's ``ERROR_LOCALE``,
        ``ERROR_FALLBACK_LOCALES`` (comma-separated), ``ERROR_DEBUG``, ``ERROR_TRACEBACK`` and
        ``ERROR_LOCALE_DIR``; when both names of a field are set, ``FEC_<FIELD>`` wins.
        """
        return cls.from_env(environ, prefix)
