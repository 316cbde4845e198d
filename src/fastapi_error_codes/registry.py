"""ErrorRegistry and ``@register_exception``: one declared class per error code.

The names of the original fastapi-error-code work too: ``ExceptionRegistry`` (the same class),
``_registry`` (the default registry), ``register_error_code``, ``get_error_code_info`` and
``list_error_codes``, and ``register_exception(201, "message")`` with positional arguments.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

from fastapi_error_codes.domains import ErrorDomain, get_domain_for_code, resolve_domain
from fastapi_error_codes.errors import MAX_ERROR_CODE, MIN_ERROR_CODE, BaseAppException, ErrorInfo

__all__ = [
    "ErrorInfo",
    "ErrorRegistry",
    "ExceptionRegistry",
    "default_registry",
    "get_error_code_info",
    "list_error_codes",
    "register_error_code",
    "register_exception",
]

E = TypeVar("E", bound=type[BaseAppException])

_log = logging.getLogger("fastapi_error_codes")


def _identity(cls: type) -> tuple[str, str]:
    # A reloaded module creates a new class object with the same module and qualified name:
    # it is the same declared error, not a duplicate.
    return (cls.__module__, cls.__qualname__)


def _describe(info: ErrorInfo) -> str:
    cls = info.exception_class
    if cls is None:
        return f"built-in {info.error_name}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}")
    return value


def _check_declaration(
    error_code: object,
    message: object,
    status_code: object,
    message_key: object,
    domain: ErrorDomain | str | None,
) -> ErrorDomain | None:
    """Validate what is declared about an error; return its domain (given or by code)."""
    code = _check_int("error_code", error_code, MIN_ERROR_CODE, MAX_ERROR_CODE)
    _check_int("status_code", status_code, 400, 599)
    if message is not None and not isinstance(message, str):
        raise ValueError(f"message must be a str, got {type(message).__name__}")
    if message_key is not None and (not isinstance(message_key, str) or not message_key):
        raise ValueError("message_key must be a non-empty str or None")
    if domain is None:
        return get_domain_for_code(code)
    found = resolve_domain(domain)
    if not found.contains(code):
        raise ValueError(
            f"error code {code} is outside domain {found.name} ({found.start}-{found.end})"
        )
    return found


def _declare(
    registry: ErrorRegistry,
    cls: type,
    error_code: int,
    message: str,
    status_code: int,
    message_key: str | None,
    domain: ErrorDomain | None,
    metadata: dict[str, Any],
) -> ErrorInfo:
    """Register *cls* with its (checked) declaration; a ``BaseAppException`` subclass gets it.

    Raising such a class without arguments then uses the declaration; it also gets the
    original project's class attributes (``_error_code``, ...).
    """
    info = ErrorInfo(
        error_code=error_code,
        error_name=cls.__name__,
        status_code=status_code,
        message=message,
        message_key=message_key or f"errors.{error_code}",
        domain=domain.name if domain is not None else None,
        exception_class=cls,
        metadata=metadata,
    )
    registry.register(info)
    if not issubclass(cls, BaseAppException):
        return info
    cls.__error_info__ = info
    for attr, value in (
        ("_error_code", info.error_code),
        ("_default_message", info.message),
        ("_message_key", info.message_key),
        ("_status_code", info.status_code),
        ("_domain", info.domain),
    ):
        setattr(cls, attr, value)
    return info


def _as_original(info: ErrorInfo) -> dict[str, Any]:
    """The original project's view of one declaration: class, message, metadata."""
    return {
        "class": info.exception_class,
        "message": info.message,
        "metadata": _original_metadata(info),
    }


def _original_metadata(info: ErrorInfo) -> dict[str, Any]:
    return {
        "status_code": info.status_code,
        "domain": info.domain,
        "message_key": info.message_key,
        **info.metadata,
    }


class ErrorRegistry:
    """Holds the declared errors of an application, keyed by their unique error code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_code: dict[int, ErrorInfo] = {}

    @overload
    def register(self, info: ErrorInfo) -> ErrorInfo: ...

    @overload
    def register(
        self,
        error_code: int,
        exception_class: type[BaseAppException],
        message: str,
        **metadata: Any,
    ) -> ErrorInfo: ...

    def register(self, *args: Any, **kwargs: Any) -> ErrorInfo:
        """Add a declaration: ``register(info)``, or ``register(code, cls, message, **metadata)``.

        The second form is the original project's: the metadata keys ``status_code``
        (default 400), ``domain`` and ``message_key`` are checked and declared like the
        arguments of ``@register_exception``; other keys are kept in ``ErrorInfo.metadata``,
        and a ``BaseAppException`` subclass raised without arguments uses the declaration.
        Another class with the same code raises ``ValueError`` naming both.
        """
        if len(args) == 1 and not kwargs and isinstance(args[0], ErrorInfo):
            return self._add(args[0])
        if not args and kwargs.keys() == {"info"} and isinstance(kwargs["info"], ErrorInfo):
            return self._add(kwargs["info"])
        return self._register_class(*args, **kwargs)

    def _register_class(
        self,
        error_code: int,
        exception_class: type[BaseAppException],
        message: str,
        **metadata: Any,
    ) -> ErrorInfo:
        if isinstance(error_code, ErrorInfo):
            raise TypeError("register(info) takes no other argument")
        if not isinstance(exception_class, type):
            raise TypeError(f"exception_class must be a class, got {exception_class!r}")
        if not isinstance(message, str):
            raise ValueError(f"message must be a str, got {type(message).__name__}")
        status_code = metadata.pop("status_code", 400)
        domain = metadata.pop("domain", None)
        message_key = metadata.pop("message_key", None)
        found = _check_declaration(error_code, message, status_code, message_key, domain)
        return _declare(
            self, exception_class, error_code, message, status_code, message_key, found, metadata
        )

    def _add(self, info: ErrorInfo) -> ErrorInfo:
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
                # A reloaded module's new class object replaces the old one, whose code
                # may have changed; one class object may hold several codes (the
                # original project's registry allowed it).
                stale = [
                    code
                    for code, other in self._by_code.items()
                    if other.exception_class is not None
                    and other.exception_class is not cls
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
        for info in list(self._by_code.values()):
            if info.error_name == error_name:
                return info
        return None

    def all(self) -> list[ErrorInfo]:
        """Return every declaration, ordered by error code."""
        with self._lock:
            return [self._by_code[code] for code in sorted(self._by_code)]

    def __iter__(self) -> Iterator[ErrorInfo]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, error_code: object) -> bool:
        return error_code in self._by_code

    # The original project's ExceptionRegistry methods.

    def get_exception(self, error_code: int) -> type[BaseAppException] | None:
        """Return the class declared with *error_code*, or None."""
        info = self._by_code.get(error_code)
        return info.exception_class if info is not None else None

    def get_message(self, error_code: int) -> str | None:
        """Return the declared message of *error_code*, or None."""
        info = self._by_code.get(error_code)
        return info.message if info is not None else None

    def get_metadata(self, error_code: int) -> dict[str, Any] | None:
        """Return ``status_code``, ``domain``, ``message_key`` and the declared metadata."""
        info = self._by_code.get(error_code)
        return _original_metadata(info) if info is not None else None

    def is_registered(self, error_code: int) -> bool:
        """Return True if *error_code* is declared."""
        return error_code in self._by_code

    def get_all_codes(self) -> list[int]:
        """Return the declared codes, sorted."""
        with self._lock:
            return sorted(self._by_code)

    def get_registry_info(self) -> dict[int, dict[str, Any]]:
        """Return ``{code: {"class": ..., "message": ..., "metadata": {...}}}`` for every code."""
        return {info.error_code: _as_original(info) for info in self.all()}


#: The original project's name of the registry class.
ExceptionRegistry = ErrorRegistry

#: The registry ``@register_exception`` uses unless it is given another.
default_registry = ErrorRegistry()

#: The original project's name of the default registry (the same object).
_registry = default_registry


def register_error_code(
    error_code: int,
    exception_class: type[BaseAppException],
    message: str,
    **metadata: Any,
) -> ErrorInfo:
    """Declare *exception_class* with *error_code* in the default registry (original API)."""
    return default_registry.register(error_code, exception_class, message, **metadata)


def get_error_code_info(error_code: int) -> dict[str, Any] | None:
    """Return ``{"class", "message", "metadata"}`` of *error_code* in the default registry."""
    info = default_registry.get(error_code)
    return _as_original(info) if info is not None else None


def list_error_codes() -> list[int]:
    """Return the codes declared in the default registry, sorted."""
    return default_registry.get_all_codes()


_WORD_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _class_name_to_message(class_name: str) -> str:
    """A message from a class name: ``UserNotFoundException`` -> ``User Not Found``.

    Words split where a lower-case letter meets an upper-case one, and before the last
    capital of a run of capitals followed by a lower-case letter (``HTTPError`` ->
    ``HTTP Error``); a trailing ``Exception`` is dropped. The class name itself if nothing
    is left.
    """
    message = _WORD_BREAK.sub(" ", class_name)
    message = message.removesuffix("Exception").rstrip()
    return message or class_name


def register_exception(
    error_code: int,
    message: str | None = None,
    message_key: str | None = None,
    status_code: int = 400,
    domain: ErrorDomain | str | None = None,
    *,
    registry: ErrorRegistry | None = None,
    **metadata: Any,
) -> Callable[[E], E]:
    """Declare a ``BaseAppException`` subclass with its code, message and HTTP status.

    Without a message, one is made from the class name (``UserNotFoundException`` ->
    ``"User Not Found"``). Other keyword arguments are kept as the declaration's metadata
    (``ErrorInfo.metadata``, shown in the error catalogue).
    """
    found = _check_declaration(error_code, message, status_code, message_key, domain)
    target = default_registry if registry is None else registry
    extra = dict(metadata)

    def decorate(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, BaseAppException)):
            raise TypeError(f"@register_exception needs a BaseAppException subclass, got {cls!r}")
        text = message
        if text is None:
            text = _class_name_to_message(cls.__name__)
            _log.warning(
                "No message given for error code %s: using %r, made from the class name",
                error_code,
                text,
            )
        _declare(target, cls, error_code, text, status_code, message_key, found, extra)
        return cls

    return decorate
