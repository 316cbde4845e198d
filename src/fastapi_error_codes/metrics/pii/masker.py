"""PiiMasker: the walk that masks any data (containers, bytes, objects) string by string."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .text import MASK, TextMasker, mask_secret

__all__ = ["DEFAULT_MAX_ITEMS", "MAX_DEPTH", "TRUNCATED_KEY", "PiiMasker", "mask_pii"]

#: Containers nested deeper than this are replaced by :data:`MASK` (the safe choice).
MAX_DEPTH = 200
#: Items (container elements and mapping values, at any depth) one :meth:`PiiMasker.mask` call
#: visits by default: a few milliseconds of work. The fields of a Sentry event (masked one
#: call each) stay below it: the SDK keeps 100 frames and trims locals to 10 wide, 5 deep, and
#: 30 frames with rich locals are ~3,500 items. A 100,000-item detail is cut after it.
DEFAULT_MAX_ITEMS = 4096
#: The key under which a mapping cut by the item budget says how many entries were left out.
TRUNCATED_KEY = "[truncated]"

_MORE_RE = re.compile(r"\[(?:[0-9]+ more items?|more items)\]")

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


def _check_max_items(max_items: Any) -> int:
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise ValueError(f"max_items must be an int >= 1, got {max_items!r}")
    return max_items


def _more(n: int | None) -> str:
    """The marker that stands for the *n* items the budget left out (never their values)."""
    if n is None:
        return "[more items]"
    return f"[{n} more item]" if n == 1 else f"[{n} more items]"


def _is_more(value: Any) -> bool:
    """True for a marker a previous cut left: it passes again free, so masking is idempotent."""
    return type(value) is str and value[:1] == "[" and _MORE_RE.fullmatch(value) is not None


class _Walk:
    """The state of one :meth:`PiiMasker.mask` call: containers being walked, items left."""

    __slots__ = ("left", "seen")

    def __init__(self, left: int) -> None:
        self.left = left
        self.seen: set[int] = set()


class PiiMasker(TextMasker):
    """Masks PII in any data with precompiled patterns; never mutates, never raises.

    One :meth:`mask` call visits at most ``max_items`` items (the elements of lists, tuples and
    sets and the values of mappings, at any depth, in walk order); the rest of each container
    it was walking is left out and replaced by a ``"[N more items]"`` marker (a mapping gets
    it under :data:`TRUNCATED_KEY`). Nothing past the budget is copied, masked or leaked, so a
    100,000-item value costs as much as a ``max_items`` one.
    """

    __slots__ = ("max_items",)

    def __init__(
        self,
        patterns: Iterable[str] | None = None,
        *,
        max_length: int = 1024,
        max_items: int = DEFAULT_MAX_ITEMS,
    ) -> None:
        """Compile the patterns; text is cut at *max_length*, a walk at *max_items* items."""
        super().__init__(patterns, max_length=max_length)
        #: Items one :meth:`mask` call visits at most (unless the call passes its own).
        self.max_items = _check_max_items(max_items)

    def mask(self, data: Any, *, max_items: int | None = None) -> Any:
        """Return a masked copy of *data* (any structure); never mutates it, never raises.

        At most *max_items* items (default: this masker's ``max_items``) are visited; what lies
        past them is replaced by a marker. A *max_items* that is not an int >= 1 is a
        ``ValueError``: the only thing this method raises on.
        """
        budget = self.max_items if max_items is None else _check_max_items(max_items)
        t = type(data)
        if t is str:
            return self.mask_text(data)
        if data is None or t is int or t is bool or t is float:
            return data
        try:
            return self._walk(data, 0, _Walk(budget))
        except Exception:  # never raise: an unmaskable value is dropped, not leaked
            return MASK

    def _walk(self, obj: Any, depth: int, state: _Walk) -> Any:
        t = type(obj)
        if t is str:
            return self.mask_text(obj)
        if obj is None or t is int or t is bool or t is float:
            return obj
        if t is dict or t is list or t is tuple:
            return self._enter(obj, depth, state, self._walk_builtin)
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
        return self._enter(obj, depth, state, self._walk_container)

    def _enter(
        self, obj: Any, depth: int, state: _Walk, walk: Callable[[Any, int, _Walk], Any]
    ) -> Any:
        """Walk into a container, bounded: too deep is masked whole, a cycle is marked."""
        if depth >= MAX_DEPTH:
            return MASK
        seen = state.seen
        ident = id(obj)
        if ident in seen:
            return _CYCLE
        seen.add(ident)
        try:
            return walk(obj, depth + 1, state)
        except RecursionError:  # called from deep in a stack: hide this subtree only
            return MASK
        finally:
            seen.discard(ident)

    def _walk_builtin(self, obj: Any, depth: int, state: _Walk) -> Any:
        if type(obj) is dict:
            return self._walk_mapping(obj, depth, state)
        items = self._walk_items(obj, depth, state)[0]
        return items if type(obj) is list else tuple(items)

    def _walk_container(self, obj: Any, depth: int, state: _Walk) -> Any:
        if isinstance(obj, Mapping):
            return self._walk_mapping(obj, depth, state)
        if isinstance(obj, (list, tuple)):
            items, cut = self._walk_items(obj, depth, state)
            if type(obj) is list or type(obj) is tuple:
                return items if type(obj) is list else tuple(items)
            if isinstance(obj, tuple) and hasattr(obj, "_fields") and not cut:
                try:
                    return type(obj)(*items)
                except Exception:
                    return tuple(items)
            return tuple(items) if isinstance(obj, tuple) else items
        if isinstance(obj, (set, frozenset)):
            items = self._walk_set(obj, depth, state)
            return frozenset(items) if isinstance(obj, frozenset) else set(items)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
            return self._walk_mapping(fields, depth, state)
        dump = getattr(obj, "model_dump", None)  # pydantic models
        if callable(dump) and not isinstance(obj, type):
            return self._walk(dump(), depth, state)
        if isinstance(obj, Sequence) or (
            isinstance(obj, Iterable) and type(obj).__name__ in ("deque", "dict_values")
        ):
            # Copy no more than the budget can visit (one more, to know whether it was cut).
            head = list(itertools.islice(obj, state.left + 1))
            total = _length(obj, len(head))
            return self._walk_items(head, depth, state, total)[0]
        # Anything else leaves the process as text at the latest: make it masked text now.
        try:
            text = str(obj)
        except Exception:
            return _UNREPRESENTABLE
        return self.mask_text(text)

    def _walk_mapping(self, obj: Mapping[Any, Any], depth: int, state: _Walk) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        mask_input = False
        if "input" in obj and "loc" in obj:  # a pydantic error: its input is the raw value
            loc = obj["loc"]
            if isinstance(loc, (list, tuple)):
                mask_input = any(isinstance(x, str) and self.matches_key(x) for x in loc)
        for taken, (key, value) in enumerate(obj.items()):
            if state.left <= 0:  # the budget is spent: say how much is left out, not what
                if type(key) is str and key == TRUNCATED_KEY and _is_more(value):
                    out[key] = value
                    continue
                out[TRUNCATED_KEY] = _more(_length(obj, None, minus=taken))
                break
            state.left -= 1
            if type(key) is str:
                key, secret = self._key_info(key)
            elif isinstance(key, str):
                key, secret = self._key_info(str.__str__(key))
            elif isinstance(key, bytes):
                secret = self.matches_key(key.decode("utf-8", "replace"))
                key = self._walk(key, depth, state)
            else:
                secret = False
            if secret or (mask_input and key == "input"):
                out[key] = mask_secret(value)
            else:
                out[key] = self._walk(value, depth, state)
        return out

    def _walk_items(
        self, obj: Sequence[Any], depth: int, state: _Walk, total: int | None = None
    ) -> tuple[list[Any], bool]:
        """The masked items of *obj* (of *total* items; default ``len(obj)``), and if cut."""
        if total is None:
            total = len(obj)
        walk = self._walk
        if total <= state.left and not (total and _is_more(obj[-1])):
            # The usual case, no per-item test: this level is counted first, then the nested
            # containers take from what is left. A level an earlier pass cut (it ends with a
            # marker) is walked item by item below, as that pass did: masking is idempotent.
            state.left -= total
            items = [walk(x, depth, state) for x in obj]
            cut = False
        else:
            items = []
            cut = True  # now, or by an earlier pass whose marker comes through free
            for i, x in enumerate(obj):
                if state.left <= 0:  # the budget is spent: say how much is left out, not what
                    if _is_more(x):
                        items.append(x)
                        continue
                    items.append(_more(total - i))
                    break
                state.left -= 1
                items.append(walk(x, depth, state))
        if len(items) == 2 and not cut:  # a (name, value) pair, e.g. a raw ASGI header
            first = obj[0]
            if isinstance(first, bytes):
                first = first.decode("utf-8", "replace")
            if isinstance(first, str) and self.matches_key(first):
                items[1] = mask_secret(obj[1])
        return items, cut

    def _walk_set(self, obj: Any, depth: int, state: _Walk) -> list[Any]:
        items: list[Any] = []
        for i, x in enumerate(obj):
            if _is_more(x):  # anywhere in a set's order: never counted, so never cut again
                items.append(x)
                continue
            if state.left <= 0:
                items.append(_more(len(obj) - i))
                break
            state.left -= 1
            items.append(self._walk(x, depth, state))
        return items


def _length(obj: Any, default: int | None, minus: int = 0) -> int | None:
    """``len(obj) - minus``, or *default* when *obj* has no usable length."""
    try:
        return len(obj) - minus
    except Exception:
        return default


@functools.lru_cache(maxsize=64)
def _masker_for(patterns: tuple[str, ...]) -> PiiMasker:
    return PiiMasker(patterns)


def mask_pii(
    data: Any, patterns: Sequence[str] | None = None, *, max_items: int | None = None
) -> Any:
    """Return a masked copy of *data*; *patterns* add to :data:`DEFAULT_PII_PATTERNS`.

    At most *max_items* items are visited (default :data:`DEFAULT_MAX_ITEMS`); see
    :class:`PiiMasker`.
    """
    if isinstance(patterns, str):
        patterns = (patterns,)
    key = tuple(patterns) if patterns else ()
    try:
        masker = _masker_for(key)
    except TypeError:  # unhashable patterns: build one without the cache
        masker = PiiMasker(list(patterns or ()))
    return masker.mask(data, max_items=max_items)
