"""Error domains: named, non-overlapping ranges of error codes (AUTH 200-299, ...)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import ClassVar, overload

from fastapi_error_codes.errors import MAX_ERROR_CODE, MIN_ERROR_CODE

__all__ = [
    "ErrorDomain",
    "get_domain",
    "get_domain_for_code",
    "is_valid_code",
    "list_domains",
    "register_domain",
]

_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


def _bounds(name: object, start: int | tuple[int, int] | None, end: int | None) -> tuple[int, int]:
    """The ``(start, end)`` of ``start, end`` or of a ``(start, end)`` tuple given as start."""
    if isinstance(start, tuple):
        if end is not None:
            raise TypeError(f"domain {name}: pass a (start, end) tuple or start and end, not both")
        if len(start) != 2:
            raise ValueError(f"domain {name}: a code range is a (start, end) pair, got {start!r}")
        start, end = start
    if start is None or end is None:
        raise TypeError(f"domain {name}: a range is needed: (start, end) or start, end")
    return start, end


@dataclass(frozen=True, slots=True, init=False)
class ErrorDomain:
    """A named range of error codes, ``start`` to ``end`` inclusive.

    Built as ``ErrorDomain("AUTH", 200, 299)`` or, as in the original fastapi-error-code,
    ``ErrorDomain("AUTH", (200, 299))``. The classmethods (``register_domain``, ``get_domain``,
    ``is_valid_code``, ``get_domain_for_code``, ``list_domains``) are the original project's
    spellings; they use the same registry as the module functions of this module.
    """

    name: str
    start: int
    end: int
    description: str

    AUTH: ClassVar[ErrorDomain]
    RESOURCE: ClassVar[ErrorDomain]
    VALIDATION: ClassVar[ErrorDomain]
    SERVER: ClassVar[ErrorDomain]
    CUSTOM: ClassVar[ErrorDomain]
    #: The registered domains by name: the module's registry, shared (the original's name).
    _domains: ClassVar[dict[str, ErrorDomain]]

    @overload
    def __init__(self, name: str, start: int, end: int, description: str = "") -> None: ...

    @overload
    def __init__(
        self, name: str, code_range: tuple[int, int], /, *, description: str = ""
    ) -> None: ...

    @overload
    def __init__(
        self, name: str, *, code_range: tuple[int, int], description: str = ""
    ) -> None: ...

    def __init__(
        self,
        name: str,
        start: int | tuple[int, int] | None = None,
        end: int | None = None,
        description: str = "",
        *,
        code_range: tuple[int, int] | None = None,
    ) -> None:
        """Check the name and the range; bad values raise ``ValueError``."""
        if code_range is not None:
            if start is not None:
                raise TypeError(f"domain {name}: pass code_range or start and end, not both")
            start = code_range
        low, high = _bounds(name, start, end)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"domain name {name!r} is not allowed: use 1-64 upper-case letters, "
                "digits and _ (starting with a letter)"
            )
        for value in (low, high):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"domain {name}: start and end must be ints")
        if not MIN_ERROR_CODE <= low <= high <= MAX_ERROR_CODE:
            raise ValueError(
                f"Invalid code range {low}-{high} for domain {name}: it must satisfy "
                f"{MIN_ERROR_CODE} <= start <= end <= {MAX_ERROR_CODE}"
            )
        if not isinstance(description, str):
            raise ValueError(f"domain {name}: description must be a str")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "start", low)
        object.__setattr__(self, "end", high)
        object.__setattr__(self, "description", description)

    @property
    def code_range(self) -> tuple[int, int]:
        """The range as a ``(start, end)`` tuple, both inclusive."""
        return (self.start, self.end)

    def contains(self, code: int) -> bool:
        """Return True if *code* lies in this domain's range."""
        return self.start <= code <= self.end

    def is_valid(self, code: object) -> bool:
        """Return True if *code* is an int in this domain's range (same as ``code in domain``)."""
        return code in self

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.contains(code)

    # The original project's class API. Same registry as the module functions; the
    # differences are the original's: names, not domains, from list_domains; False, not
    # ValueError, for an unknown domain in is_valid_code; any name taken raises.

    @classmethod
    def register_domain(
        cls,
        name: str,
        code_range: tuple[int, int] | int,
        end: int | None = None,
        description: str = "",
    ) -> ErrorDomain:
        """Add a domain: ``(name, (start, end))`` or ``(name, start, end)``.

        A name already registered raises ``ValueError``, as in the original project (the
        module function :func:`register_domain` accepts an identical registration again).
        """
        return _add(_new(name, code_range, end, description), same_is_fine=False)

    @classmethod
    def get_domain(cls, name: str) -> ErrorDomain | None:
        """Return the domain called *name* (case-insensitive), or None."""
        return _lookup(name)

    @classmethod
    def is_valid_code(cls, code: object, domain_name: ErrorDomain | str) -> bool:
        """Return True if *code* is in the range of *domain_name*; False if no such domain."""
        domain = domain_name if isinstance(domain_name, ErrorDomain) else _lookup(domain_name)
        return domain is not None and code in domain

    @classmethod
    def get_domain_for_code(cls, code: int) -> ErrorDomain | None:
        """Return the domain whose range holds *code*, or None."""
        return _for_code(code)

    @classmethod
    def list_domains(cls) -> list[str]:
        """Return the names of the registered domains, ordered by the start of their range."""
        return [d.name for d in _sorted()]


ErrorDomain.AUTH = ErrorDomain("AUTH", 200, 299, "Authentication and authorisation")
ErrorDomain.RESOURCE = ErrorDomain("RESOURCE", 300, 399, "Resources: not found, conflicts")
ErrorDomain.VALIDATION = ErrorDomain("VALIDATION", 400, 499, "Input validation")
ErrorDomain.SERVER = ErrorDomain("SERVER", 500, 599, "Server and dependency failures")
ErrorDomain.CUSTOM = ErrorDomain("CUSTOM", 900, 999, "Application specific")

PREDEFINED_DOMAINS: tuple[ErrorDomain, ...] = (
    ErrorDomain.AUTH,
    ErrorDomain.RESOURCE,
    ErrorDomain.VALIDATION,
    ErrorDomain.SERVER,
    ErrorDomain.CUSTOM,
)

_lock = threading.Lock()
_domains: dict[str, ErrorDomain] = {d.name: d for d in PREDEFINED_DOMAINS}
ErrorDomain._domains = _domains


def _new(name: str, start: int | tuple[int, int], end: int | None, description: str) -> ErrorDomain:
    low, high = _bounds(name, start, end)
    return ErrorDomain(name.upper() if isinstance(name, str) else name, low, high, description)


def _add(domain: ErrorDomain, *, same_is_fine: bool) -> ErrorDomain:
    with _lock:
        existing = _domains.get(domain.name)
        if existing is not None:
            if same_is_fine and existing.code_range == domain.code_range:
                return existing
            raise ValueError(
                f"domain {domain.name} is already registered as {existing.start}-{existing.end}"
            )
        for other in _domains.values():
            if domain.start <= other.end and other.start <= domain.end:
                raise ValueError(
                    f"domain {domain.name} ({domain.start}-{domain.end}) overlaps "
                    f"domain {other.name} ({other.start}-{other.end})"
                )
        _domains[domain.name] = domain
    return domain


def _lookup(name: str) -> ErrorDomain | None:
    return _domains.get(name.upper()) if isinstance(name, str) else None


def _for_code(code: int) -> ErrorDomain | None:
    for domain in list(_domains.values()):
        if code in domain:
            return domain
    return None


def _sorted() -> list[ErrorDomain]:
    return sorted(list(_domains.values()), key=lambda d: d.start)


def register_domain(
    name: str, start: int | tuple[int, int], end: int | None = None, description: str = ""
) -> ErrorDomain:
    """Add a domain (``start, end`` or a ``(start, end)`` tuple); the name is upper-cased.

    Overlapping another domain raises ``ValueError``; an identical registration returns the
    domain already registered, so a reloaded module may register its domains again.
    """
    return _add(_new(name, start, end, description), same_is_fine=True)


def get_domain(name: str) -> ErrorDomain | None:
    """Return the domain called *name* (case-insensitive), or None."""
    return _lookup(name)


def get_domain_for_code(code: int) -> ErrorDomain | None:
    """Return the domain whose range holds *code*, or None."""
    return _for_code(code)


def is_valid_code(code: object, domain: ErrorDomain | str | None = None) -> bool:
    """Return True if *code* is an int in 0-9999 (and in *domain*'s range, when given).

    An unknown domain name raises ``ValueError`` (``ErrorDomain.is_valid_code`` returns False).
    """
    if isinstance(code, bool) or not isinstance(code, int):
        return False
    if not MIN_ERROR_CODE <= code <= MAX_ERROR_CODE:
        return False
    if domain is None:
        return True
    found = resolve_domain(domain)
    return found.contains(code)


def list_domains() -> list[ErrorDomain]:
    """Return every registered domain, ordered by the start of its range.

    ``ErrorDomain.list_domains()`` returns their names instead, as the original project does.
    """
    return _sorted()


def resolve_domain(domain: ErrorDomain | str) -> ErrorDomain:
    """Return the ErrorDomain for a name or instance; unknown names raise ``ValueError``."""
    if isinstance(domain, ErrorDomain):
        return domain
    found = _lookup(domain)
    if found is None:
        known = ", ".join(d.name for d in _sorted())
        raise ValueError(f"unknown error domain {domain!r}; registered domains: {known}")
    return found


def _reset_domains() -> None:
    """Forget every domain but the predefined ones (for tests)."""
    with _lock:
        _domains.clear()
        _domains.update({d.name: d for d in PREDEFINED_DOMAINS})
