"""Error domains: named, non-overlapping ranges of error codes (AUTH 200-299, ...)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import ClassVar

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


@dataclass(frozen=True, slots=True)
class ErrorDomain:
    """A named range of error codes, ``start`` to ``end`` inclusive."""

    name: str
    start: int
    end: int
    description: str = ""

    AUTH: ClassVar[ErrorDomain]
    RESOURCE: ClassVar[ErrorDomain]
    VALIDATION: ClassVar[ErrorDomain]
    SERVER: ClassVar[ErrorDomain]
    CUSTOM: ClassVar[ErrorDomain]

    def __post_init__(self) -> None:
        """Check the name and the range; bad values raise ``ValueError``."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"domain name {self.name!r} is not allowed: use 1-64 upper-case letters, "
                "digits and _ (starting with a letter)"
            )
        for value in (self.start, self.end):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"domain {self.name}: start and end must be ints")
        if not MIN_ERROR_CODE <= self.start <= self.end <= MAX_ERROR_CODE:
            raise ValueError(
                f"domain {self.name}: range {self.start}-{self.end} must satisfy "
                f"{MIN_ERROR_CODE} <= start <= end <= {MAX_ERROR_CODE}"
            )

    def contains(self, code: int) -> bool:
        """Return True if *code* lies in this domain's range."""
        return self.start <= code <= self.end

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.contains(code)


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


def register_domain(name: str, start: int, end: int, description: str = "") -> ErrorDomain:
    """Add a domain; overlapping another raises ``ValueError``, an identical one is kept."""
    domain = ErrorDomain(name.upper() if isinstance(name, str) else name, start, end, description)
    with _lock:
        existing = _domains.get(domain.name)
        if existing is not None:
            if (existing.start, existing.end) == (domain.start, domain.end):
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


def get_domain(name: str) -> ErrorDomain | None:
    """Return the domain called *name* (case-insensitive), or None."""
    return _domains.get(name.upper())


def get_domain_for_code(code: int) -> ErrorDomain | None:
    """Return the domain whose range holds *code*, or None."""
    for domain in _domains.values():
        if domain.contains(code):
            return domain
    return None


def is_valid_code(code: object, domain: ErrorDomain | str | None = None) -> bool:
    """Return True if *code* is an int in 0-9999 (and in *domain*'s range, when given)."""
    if isinstance(code, bool) or not isinstance(code, int):
        return False
    if not MIN_ERROR_CODE <= code <= MAX_ERROR_CODE:
        return False
    if domain is None:
        return True
    found = resolve_domain(domain)
    return found.contains(code)


def list_domains() -> list[ErrorDomain]:
    """Return every registered domain, ordered by the start of its range."""
    return sorted(_domains.values(), key=lambda d: d.start)


def resolve_domain(domain: ErrorDomain | str) -> ErrorDomain:
    """Return the ErrorDomain for a name or instance; unknown names raise ``ValueError``."""
    if isinstance(domain, ErrorDomain):
        return domain
    found = get_domain(domain)
    if found is None:
        known = ", ".join(d.name for d in list_domains())
        raise ValueError(f"unknown error domain {domain!r}; registered domains: {known}")
    return found


def _reset_domains() -> None:
    """Forget every domain but the predefined ones (for tests)."""
    with _lock:
        _domains.clear()
        _domains.update({d.name: d for d in PREDEFINED_DOMAINS})
