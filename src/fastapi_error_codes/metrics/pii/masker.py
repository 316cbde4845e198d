"""PiiMasker: the walk that masks any data (containers, bytes, objects) string by string."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .text import MASK, TextMasker, mask_secret

__all__ = ["MAX_DEPTH", "PiiMasker", "mask_pii"]

#: Containers nested deeper than this are replaced by :data:`MASK` (the safe choice).
MAX_DEPTH = 200

_CYCLE = "<cycle>"
_UNREPRESENTABLE = "<unrepresentable>"

_SCALARS = (
    int,
    float,
    complex,
    decimal.Decimal,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    uuid.UUID,
    enum.Enum,
)


class PiiMasker(TextMasker):
    """Masks PII in any data with precompiled patterns; never mutates, never raises."""

    __slots__ = ()

    def mask(self, data: Any) -> Any:
        """Return a masked copy of *data* (any structure); never mutates it, never raises."""
        t = type(data)
        if t is str:
            return self.mask_text(data)
        if data is None or t is int or t is bool or t is float:
            return data
        try:
            return self._walk(data, 0, set())
        except Exception:  # never raise: an unmaskable value is dropped, not leaked
            return MASK

    def _walk(self, obj: Any, depth: int, seen: set[int]) -> Any:
        t = type(obj)
        if t is str:
            return self.mask_text(obj)
        if obj is None or t is int or t is bool or t is float:
            return obj
        if t is dict or t is list or t is tuple:
            return self._enter(obj, depth, seen, self._walk_builtin)
        if isinstance(obj, str):
            return self.mask_text(str.__str__(obj))
        if isinstance(obj, (bytes, bytearray, memoryview)):
            raw = bytes(obj[: self._max * 4 + 8])
            text = raw.decode("utf-8", "surrogateescape")
            masked = self.mask_text(text)
            if masked == text and len(raw) == len(obj):
                return obj if isinstance(obj, bytes) else raw
            return masked.encode("utf-8", "surrogateescape")
        if isinstance(obj, _SCALARS):
            return obj
        return self._enter(obj, depth, seen, self._walk_container)

    def _enter(
        self, obj: Any, depth: int, seen: set[int], walk: Callable[[Any, int, set[int]], Any]
    ) -> Any:
        """Walk into a container, bounded: too deep is masked whole, a cycle is marked."""
        if depth >= MAX_DEPTH:
            return MASK
        ident = id(obj)
        if ident in seen:
            return _CYCLE
        seen.add(ident)
        try:
            return walk(obj, depth + 1, seen)
        except RecursionError:  # called from deep in a stack: hide this subtree only
            return MASK
        finally:
            seen.discard(ident)

    def _walk_builtin(self, obj: Any, depth: int, seen: set[int]) -> Any:
        if type(obj) is dict:
            return self._walk_mapping(obj, depth, seen)
        items = self._walk_items(obj, depth, seen)
        return items if type(obj) is list else tuple(items)

    def _walk_container(self, obj: Any, depth: int, seen: set[int]) -> Any:
        if isinstance(obj, Mapping):
            return self._walk_mapping(obj, depth, seen)
        if isinstance(obj, (list, tuple)):
            items = self._walk_items(obj, depth, seen)
            if type(obj) is list or type(obj) is tuple:
                return items if type(obj) is list else tuple(items)
            if isinstance(obj, tuple) and hasattr(obj, "_fields"):
                try:
                    return type(obj)(*items)
                except Exception:
                    return tuple(items)
            return tuple(items) if isinstance(obj, tuple) else items
        if isinstance(obj, (set, frozenset)):
            items = [self._walk(x, depth, seen) for x in obj]
            return frozenset(items) if isinstance(obj, frozenset) else set(items)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
            return self._walk_mapping(fields, depth, seen)
        dump = getattr(obj, "model_dump", None)  # pydantic models
        if callable(dump) and not isinstance(obj, type):
            return self._walk(dump(), depth, seen)
        if isinstance(obj, Sequence) or (
            isinstance(obj, Iterable) and type(obj).__name__ in ("deque", "dict_values")
        ):
            return self._walk_items(list(obj), depth, seen)
        # Anything else leaves the process as text at the latest: make it masked text now.
        try:
            text = str(obj)
        except Exception:
            return _UNREPRESENTABLE
        return self.mask_text(text)

    def _walk_mapping(self, obj: Mapping[Any, Any], depth: int, seen: set[int]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        mask_input = False
        if "input" in obj and "loc" in obj:  # a pydantic error: its input is the raw value
            loc = obj["loc"]
            if isinstance(loc, (list, tuple)):
                mask_input = any(isinstance(x, str) and self.matches_key(x) for x in loc)
        for key, value in obj.items():
            if type(key) is str:
                key, secret = self._key_info(key)
            elif isinstance(key, str):
                key, secret = self._key_info(str.__str__(key))
            elif isinstance(key, bytes):
                secret = self.matches_key(key.decode("utf-8", "replace"))
                key = self._walk(key, depth, seen)
            else:
                secret = False
            if secret or (mask_input and key == "input"):
                out[key] = mask_secret(value)
            else:
                out[key] = self._walk(value, depth, seen)
        return out

    def _walk_items(self, obj: Sequence[Any], depth: int, seen: set[int]) -> list[Any]:
        items = [self._walk(x, depth, seen) for x in obj]
        if len(items) == 2:  # a (name, value) pair, e.g. a raw ASGI header
            first = obj[0]
            if isinstance(first, bytes):
                first = first.decode("utf-8", "replace")
            if isinstance(first, str) and self.matches_key(first):
                items[1] = mask_secret(obj[1])
        return items


@functools.lru_cache(maxsize=64)
def _masker_for(patterns: tuple[str, ...]) -> PiiMasker:
    return PiiMasker(patterns)


def mask_pii(data: Any, patterns: Sequence[str] | None = None) -> Any:
    """Return a masked copy of *data*; *patterns* add to :data:`DEFAULT_PII_PATTERNS`."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    key = tuple(patterns) if patterns else ()
    try:
        masker = _masker_for(key)
    except TypeError:  # unhashable patterns: build one without the cache
        masker = PiiMasker(list(patterns or ()))
    return masker.mask(data)
