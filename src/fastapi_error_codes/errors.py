"""Declared errors: BaseAppException, and ErrorInfo, what is declared about one error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypedDict

from fastapi_error_codes._bodies import build_body, json_safe
from fastapi_error_codes._time import utc_timestamp

__all__ = ["MAX_ERROR_CODE", "MIN_ERROR_CODE", "BaseAppException", "ErrorFields", "ErrorInfo"]

MIN_ERROR_CODE = 0
MAX_ERROR_CODE = 9999


class ErrorFields(TypedDict):
    """What every body, catalogue row and OpenAPI example shows of an error."""

    error_code: int
    error_name: str
    status_code: int
    message: str


def _public_fields(source: ErrorInfo | BaseAppException) -> ErrorFields:
    return ErrorFields(
        error_code=source.error_code,
        error_name=source.error_name,
        status_code=source.status_code,
        message=source.message,
    )


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What is declared about one error: code, name, status, message and where it belongs."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    message_key: str
    domain: str | None = None
    exception_class: type[BaseAppException] | None = None
    builtin: bool = False
    #: Further facts declared with the error (``@register_exception(..., team="payments")``),
    #: read-only. Compared, but not hashed: it may hold unhashable values.
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        # A read-only copy: the caller's dict may change later, the declaration must not.
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy neither pickles nor deep-copies: rebuild from a plain dict.
        return (_restore_info, (self.__class__, self._state()))

    def _state(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__dataclass_fields__}
        state["metadata"] = dict(self.metadata)
        return state

    def public_fields(self) -> ErrorFields:
        """Code, name, status and declared message: the fields every rendering shows."""
        return _public_fields(self)


def _restore_info(cls: type[ErrorInfo], state: dict[str, Any]) -> ErrorInfo:
    return cls(**state)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class BaseAppException(Exception):
    """An application error with a stable numeric code, an HTTP status, a message and a detail.

    Raise it directly with ``BaseAppException(1001, "User not found", 404)``, or declare a
    subclass with :func:`~fastapi_error_codes.register_exception` and raise ``UserNotFound()``
    or ``UserNotFound(detail={...})``: arguments left out take the declared defaults.
    """

    #: Set on a class by ``@register_exception``; ``None`` on undeclared classes.
    __error_info__: ClassVar[ErrorInfo | None] = None

    error_code: int
    message: str
    status_code: int
    detail: Any
    headers: dict[str, str] | None
    timestamp: str

    def __init__(
        self,
        error_code: int | None = None,
        message: str | None = None,
        status_code: int | None = None,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        info = type(self).__error_info__
        if error_code is None:
            if info is None:
                raise TypeError(
                    f"{type(self).__name__} needs an error_code: pass one, or declare the "
                    "class with @register_exception(error_code=..., message=...)"
                )
            error_code = info.error_code
        if not _is_int(error_code):
            raise TypeError(
                f"error_code must be an int, got {error_code!r}; to override the message of a "
                "declared error pass it by keyword: message=..."
            )
        if not MIN_ERROR_CODE <= error_code <= MAX_ERROR_CODE:
            raise ValueError(
                f"error_code must be between {MIN_ERROR_CODE} and {MAX_ERROR_CODE}, "
                f"got {error_code}"
            )
        if status_code is None:
            status_code = info.status_code if info is not None else 400
        if not _is_int(status_code) or not 400 <= status_code <= 599:
            raise ValueError(f"status_code must be an int from 400 to 599, got {status_code!r}")
        #: True while the message is the declared one, so the handler may localise it.
        self.message_is_default = message is None and info is not None
        if message is None:
            message = info.message if info is not None else ""
        self.error_code = error_code
        self.message = str(message)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers is not None else None
        self.timestamp = utc_timestamp()
        super().__init__(self.message)

    @property
    def error_name(self) -> str:
        """The name of the error: its class name."""
        return type(self).__name__

    @property
    def message_key(self) -> str:
        """The key of the message in locale files (declared, or ``errors.<error_code>``)."""
        info = type(self).__error_info__
        if info is not None and info.error_code == self.error_code:
            return info.message_key
        return f"errors.{self.error_code}"

    def public_fields(self) -> ErrorFields:
        """Code, name, status and message of this occurrence: the fields every body shows."""
        return _public_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the default (``"json"`` format) body for this error, not localised."""
        return build_body(
            "json",
            **self.public_fields(),
            detail=json_safe(self.detail),
            errors=None,
            timestamp=self.timestamp,
            instance=None,
            type_base=None,
        )

    def add_detail(self, key: str, value: Any) -> BaseAppException:
        """Add ``key: value`` to the detail mapping (created if empty); returns ``self``.

        A detail that is not a dict becomes ``{"previous": <old detail>, key: value}``, as in
        the original fastapi-error-code.
        """
        if self.detail is None:
            self.detail = {}
        elif not isinstance(self.detail, dict):
            self.detail = {"previous": self.detail}
        self.detail[key] = value
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error_code={self.error_code}, "
            f"status_code={self.status_code}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle through their args; ours are keyword-built, so keep the state.
        return (_restore, (type(self), self.__dict__.copy()))


def _restore(cls: type[BaseAppException], state: dict[str, Any]) -> BaseAppException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, state.get("message", ""))
    exc.__dict__.update(state)
    return exc
