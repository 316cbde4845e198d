"""The error catalogue: every declared error, as data, JSON or Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from fastapi_error_codes._builtin import BUILTIN_ERRORS
from fastapi_error_codes.errors import ErrorInfo
from fastapi_error_codes.registry import ErrorRegistry, default_registry

__all__ = ["CatalogEntry", "ErrorCatalog", "error_catalog"]


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One row of the catalogue: code, name, status, message, domain, whether built in, and
    the metadata declared with the error (``@register_exception(..., team="payments")``)."""

    error_code: int
    error_name: str
    status_code: int
    message: str
    domain: str | None
    builtin: bool
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @classmethod
    def from_info(cls, info: ErrorInfo) -> CatalogEntry:
        """Build the row of a declared error."""
        return cls(
            **info.public_fields(),
            domain=info.domain,
            builtin=info.builtin,
            metadata=info.metadata,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a plain dict (the metadata as a plain dict too)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["metadata"] = dict(self.metadata)
        return row

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy neither pickles nor deep-copies: rebuild from a plain dict.
        return (_restore_entry, (self.__class__, self.to_dict()))


def _restore_entry(cls: type[CatalogEntry], state: dict[str, Any]) -> CatalogEntry:
    return cls(**state)


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _metadata_cell(metadata: Mapping[str, Any]) -> str:
    return _cell(", ".join(f"{key}={value}" for key, value in metadata.items()))


@dataclass(frozen=True, slots=True)
class ErrorCatalog:
    """Every declared error, ordered by code, renderable for publication."""

    entries: tuple[CatalogEntry, ...]

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def has_metadata(self) -> bool:
        """True if any entry has declared metadata."""
        return any(entry.metadata for entry in self.entries)

    def to_list(self) -> list[dict[str, object]]:
        """Return the entries as plain dicts.

        Every dict has a ``metadata`` key when any entry has declared metadata; none has
        one otherwise, so a catalogue without metadata keeps its shape.
        """
        rows: list[dict[str, object]] = [entry.to_dict() for entry in self.entries]
        if not self.has_metadata:
            for row in rows:
                del row["metadata"]
        return rows

    def to_json(self, indent: int | None = 2) -> str:
        """Return the catalogue as a JSON array (a metadata value JSON cannot hold: as text)."""
        return json.dumps(self.to_list(), indent=indent, ensure_ascii=False, default=str)

    def to_markdown(self) -> str:
        """Return the catalogue as a Markdown table (a Metadata column if any entry has some)."""
        extra = self.has_metadata
        lines = [
            "| Code | Name | HTTP status | Message | Domain | Built-in |"
            + (" Metadata |" if extra else ""),
            "|---:|---|---:|---|---|---|" + ("---|" if extra else ""),
        ]
        for e in self.entries:
            lines.append(
                f"| {e.error_code} | {_cell(e.error_name)} | {e.status_code} | "
                f"{_cell(e.message)} | {_cell(e.domain or '')} | {'yes' if e.builtin else 'no'} |"
                + (f" {_metadata_cell(e.metadata)} |" if extra else "")
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
