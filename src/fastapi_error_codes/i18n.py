"""Localised messages: JSON locale files, a fallback chain, and Accept-Language negotiation."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MessageProvider", "format_message", "negotiate_locale", "parse_accept_language"]

_log = logging.getLogger("fastapi_error_codes")

_TAG_RE = re.compile(r"^(?:[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)$")
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_HEADER = 2048
_MAX_RANGES = 32


def normalize_locale(tag: str) -> str:
    """Return *tag* in the canonical comparison form: ``_`` as ``-``, lower case."""
    return tag.replace("_", "-").lower()


def format_message(template: str, params: Mapping[str, Any]) -> str:
    """Replace ``{name}`` placeholders with *params*; unknown ones stay as written.

    Only plain names are substituted (no attribute or index access), so a template can never
    reach into the objects passed as parameters.
    """
    if not params or "{" not in template:
        return template

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(params[name]) if name in params else match.group(0)

    return _PARAM_RE.sub(substitute, template)


def parse_accept_language(header: str | None) -> list[tuple[str, float]]:
    """Parse an Accept-Language header into ``(tag, q)`` pairs, best first; q=0 is dropped."""
    if not header:
        return []
    ranges: list[tuple[str, float, int]] = []
    for index, part in enumerate(header[:_MAX_HEADER].split(",")[:_MAX_RANGES]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not _TAG_RE.match(tag):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if not 0.0 < q <= 1.0:
            continue
        ranges.append((tag, q, index))
    ranges.sort(key=lambda r: (-r[1], r[2]))
    return [(tag, q) for tag, q, _ in ranges]


def negotiate_locale(header: str | None, available: Iterable[str]) -> str | None:
    """Pick the best of *available* for an Accept-Language header (RFC 4647 lookup), or None.

    Each range is tried as written, then truncated (``de-CH-1996`` -> ``de-CH`` -> ``de``), then
    against regional variants (``de`` -> ``de-AT``). ``*`` and no match give None.
    """
    by_norm = {normalize_locale(tag): tag for tag in available}
    if not by_norm:
        return None
    for tag, _q in parse_accept_language(header):
        if tag == "*":
            return None
        parts = normalize_locale(tag).split("-")
        for end in range(len(parts), 0, -1):
            found = by_norm.get("-".join(parts[:end]))
            if found is not None:
                return found
        prefix = parts[0] + "-"
        for norm in sorted(by_norm):
            if norm.startswith(prefix):
                return by_norm[norm]
    return None


def _flatten(data: Mapping[str, Any], prefix: str, out: dict[str, str], source: Path) -> None:
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, full + ".", out, source)
        elif isinstance(value, str):
            out[full] = value
        else:
            raise ValueError(f"{source}: the value of {full!r} must be a string or an object")


class MessageProvider:
    """Messages per locale from ``<locale_dir>/<locale>.json``, nested keys joined by dots.

    ``locale_dir`` must be a directory holding ``<default_locale>.json``; otherwise the
    constructor raises ``ValueError`` naming the missing file and the locales found.
    """

    def __init__(
        self,
        locale_dir: str | Path,
        default_locale: str = "en",
        fallback_locales: Sequence[str] | None = None,
    ) -> None:
        self.locale_dir = Path(locale_dir)
        if not self.locale_dir.is_dir():
            raise ValueError(f"locale_dir {str(self.locale_dir)!r} is not a directory")
        self.default_locale = default_locale
        self.fallback_locales = tuple(fallback_locales or ())
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}
        self._messages: dict[str, dict[str, str]] = {}
        self._scan()
        if (
            not isinstance(default_locale, str)
            or normalize_locale(default_locale) not in self._files
        ):
            found = ", ".join(self.get_available_locales()) or "none"
            raise ValueError(
                f"default locale file {str(self.locale_dir / f'{default_locale}.json')!r} not "
                f"found; locales found in {str(self.locale_dir)!r}: {found}. Add the file or "
                "set default_locale to one of them"
            )

    def _scan(self) -> None:
        # File names come only from the directory listing: a locale from a request header is
        # looked up in this mapping and never turned into a path.
        self._files = {normalize_locale(p.stem): p for p in sorted(self.locale_dir.glob("*.json"))}

    def get_available_locales(self) -> list[str]:
        """Return the locales that have a file, as their file names spell them."""
        return sorted(p.stem for p in self._files.values())

    def load_all(self) -> None:
        """Read every locale file now (setup time), so requests never touch the disk."""
        for norm in list(self._files):
            self._load(norm)

    def reload_locale(self, locale: str) -> None:
        """Read the file of *locale* again; a broken file raises ``ValueError``."""
        norm = normalize_locale(locale)
        with self._lock:
            self._scan()
            self._messages.pop(norm, None)
        self._load(norm)

    def clear_cache(self) -> None:
        """Forget every loaded message and list the directory again."""
        with self._lock:
            self._messages.clear()
            self._scan()

    def _load(self, norm: str) -> dict[str, str]:
        cached = self._messages.get(norm)
        if cached is not None:
            return cached
        path = self._files.get(norm)
        messages: dict[str, str] = {}
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot read locale file {path}: {exc}") from exc
            if not isinstance(data, Mapping):
                raise ValueError(f"{path}: a locale file must hold a JSON object")
            _flatten(data, "", messages, path)
        with self._lock:
            self._messages[norm] = messages
        return messages

    def _safe_load(self, norm: str) -> dict[str, str]:
        try:
            return self._load(norm)
        except ValueError:
            _log.exception("fastapi_error_codes: locale %r is broken; using fallbacks", norm)
            with self._lock:
                self._messages[norm] = {}
            return {}

    def chain(self, locale: str | None) -> list[str]:
        """Return the locales tried: *locale* (or the default), its base, fallbacks, default."""
        tags: list[str] = []
        locale = locale or self.default_locale
        if locale:
            parts = normalize_locale(locale).split("-")
            tags.extend("-".join(parts[:end]) for end in range(len(parts), 0, -1))
        tags.extend(normalize_locale(t) for t in (*self.fallback_locales, self.default_locale))
        return list(dict.fromkeys(tags))

    def lookup(self, key: str, locale: str | None = None) -> tuple[str, str] | None:
        """Return ``(template, locale it came from)`` along the fallback chain, or None."""
        for norm in self.chain(locale):
            if norm not in self._files:
                continue
            template = self._safe_load(norm).get(key)
            if template is not None:
                return template, self._files[norm].stem
        return None

    def get_message(
        self, key: str, locale: str | None = None, default: str | None = None, **params: Any
    ) -> str:
        """Return the message for *key* in *locale* (or a fallback), formatted with *params*.

        The chain is: the requested locale, its base language, ``fallback_locales``,
        ``default_locale``; then *default*; then the key itself.
        """
        found = self.lookup(key, locale)
        if found is not None:
            template = found[0]
        elif default is not None:
            template = default
        else:
            return key
        return format_message(template, params)
