"""ErrorRegistry and ``@register_exception``: one declared class per error code."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from fastapi_error_codes.domains import ErrorDomain, get_domain_for_code, resolve_domain
from fastapi_error_codes.errors import MAX_ERROR_CODE, MIN_ERROR_CODE, BaseAppException, ErrorInfo

__all__ = ["ErrorInfo", "ErrorRegistry", "default_registry", "register_exception"]

E = TypeVar("E", bound=type[BaseAppException])


def _identity(cls: type) -> tuple[str, str]:
    # A reloaded module creates a new class object with the same module and qualified name:
    # it is the same declared error, not a duplicate.
    return (cls.__module__, cls.__qualname__)


def _describe(info: ErrorInfo) -> str:
    cls = info.exception_class
    if cls is None:
        return f"built-in {info.error_name}"
    return f"{cls.__module__}.{cls.__qualname__}"


class ErrorRegistry:
    """Holds the declared errors of an application, keyed by their unique error code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_code: dict[int, ErrorInfo] = {}

    def register(self, info: ErrorInfo) -> ErrorInfo:
        """Add *info*; another class with the same code raises ``ValueError`` naming both."""
        cls = info.exception_class
        with self._lock:
            existing = self._by_code.get(info.error_code)
            if existing is not None and existing.exception_class is not cls:
                same = (
                    cls is not None
                    and existing.exception_class is not None
                    and _identity(existing.exception_class) == _identity(cls)
                )
                if not same:
                    raise ValueError(
                        f"error code {info.error_code} is already used by {_describe(existing)}; "
                        f"cannot register {_describe(info)} with the same code"
                    )
            if cls is not None:
                # A reload may have changed the code: the class keeps only its newest one.
                stale = [
                    code
                    for code, other in self._by_code.items()
                    if other.exception_class is not None
                    and code != info.error_code
                    and _identity(other.exception_class) == _identity(cls)
                ]
                for code in stale:
                    del self._by_code[code]
            self._by_code[info.error_code] = info
        return info

    def unregister(self, error_code: int) -> None:
        """Remove the error declared with *error_code* (no error if there is none)."""
        with self._lock:
            self._by_code.pop(error_code, None)

    def clear(self) -> None:
        """Remove every declared error."""
        with self._lock:
            self._by_code.clear()

    def get(self, error_code: int) -> ErrorInfo | None:
        """Return the declaration for *error_code*, or None."""
        return self._by_code.get(error_code)

    def get_by_name(self, error_name: str) -> ErrorInfo | None:
        """Return the declaration whose error name is *error_name*, or None."""
        for info in self._by_code.values():
            if info.error_name == error_name:
                return info
        return None

    def all(self) -> list[ErrorInfo]:
        """Return every declaration, ordered by error code."""
        return [self._by_code[code] for code in sorted(self._by_code)]

    def __iter__(self) -> Iterator[ErrorInfo]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, error_code: object) -> bool:
        return error_code in self._by_code


#: The registry ``@register_exception`` uses unless it is given another.
default_registry = ErrorRegistry()


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}")
    return value


def register_exception(
    *,
    error_code: int,
    message: str,
    status_code: int = 400,
    message_key: str | None = None,
    domain: ErrorDomain | str | None = None,
    registry: ErrorRegistry | None = None,
) -> Callable[[E], E]:
    """Declare a ``BaseAppException`` subclass with its code, message and HTTP status."""
    _check_int("error_code", error_code, MIN_ERROR_CODE, MAX_ERROR_CODE)
    _check_int("status_code", status_code, 400, 599)
    if not isinstance(message, str):
        raise ValueError(f"message must be a str, got {type(message).__name__}")
    if message_key is not None and (not isinstance(message_key, str) or not message_key):
        raise ValueError("message_key must be a non-empty str or None")
    found: ErrorDomain | None = None
    if domain is not None:
        found = resolve_domain(domain)
        if not found.contains(error_code):
            raise ValueError(
                f"error code {error_code} is outside domain {found.name} "
                f"({found.start}-{found.end})"
            )
    else:
        found = get_domain_for_code(error_code)
    target = default_registry if registry is None else registry

    def decorate(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, BaseAppException)):
            raise TypeError(f"@register_exception needs a BaseAppException subclass, got {cls!r}")
        info = ErrorInfo(
            error_code=error_code,
            error_name=cls.__name__,
            status_code=status_code,
            message=message,
            message_key=message_key or f"errors.{error_code}",
            domain=found.name if found is not None else None,
            exception_class=cls,
        )
        target.register(info)
        cls.__error_info__ = info
        return cls

    return decorate
