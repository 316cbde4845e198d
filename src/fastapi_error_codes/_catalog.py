"""The error catalogue: every declared error, as data, JSON or Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from fastapi_error_codes._builtin import BUILTIN_ERRORS
from fastapi_error_codes.errors import ErrorInfo
from fastapi_error_codes.registry import ErrorRegistry, default_registry

__all__ = ["CatalogEntry", "ErrorCatalog", "error_catalog"]


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One row of the catalogue: code, name, status, message, domain, and whether built in."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    domain: str | None
    builtin: bool

    @classmethod
    def from_info(cls, info: ErrorInfo) -> CatalogEntry:
        """Build the row of a declared error."""
        return cls(**info.public_fields(), domain=info.domain, builtin=info.builtin)


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True, slots=True)
class ErrorCatalog:
    """Every declared error, ordered by code, renderable for publication."""

    entries: tuple[CatalogEntry, ...]

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_list(self) -> list[dict[str, object]]:
        """Return the entries as plain dicts."""
        return [asdict(entry) for entry in self.entries]

    def to_json(self, indent: int | None = 2) -> str:
        """Return the catalogue as a JSON array."""
        return json.dumps(self.to_list(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        """Return the catalogue as a Markdown table."""
        lines = [
            "| Code | Name | HTTP status | Message | Domain | Built-in |",
            "|---:|---|---:|---|---|---|",
        ]
        for e in self.entries:
            lines.append(
                f"| {e.error_code} | {_cell(e.error_name)} | {e.status_code} | "
                f"{_cell(e.message)} | {_cell(e.domain or '')} | {'yes' if e.builtin else 'no'} |"
            )
        return "\n".join(lines) + "\n"


def error_catalog(
    registry: ErrorRegistry | None = None, *, include_builtin: bool = True
) -> ErrorCatalog:
    """Return every error of *registry* (default: the default one), plus built-in ones."""
    infos = list(default_registry if registry is None else registry)
    if include_builtin:
        # A declared code equal to a built-in one is listed twice, so the clash shows.
        infos.extend(BUILTIN_ERRORS.values())
    infos.sort(key=lambda i: (i.error_code, i.builtin))
    return ErrorCatalog(tuple(CatalogEntry.from_info(i) for i in infos))
