"""PII masking: one implementation for everything that leaves the process (stores, Sentry).

:class:`PiiMasker` walks any data (dicts, lists, tuples, sets, bytes, objects; cycles and any
depth) and returns a masked copy; it never mutates its input and never raises. Two mechanisms
work together:

* **keys**: the value under a key that matches a pattern becomes ``***`` (``***@***.***`` if
  it was an e-mail address). Matching is case-insensitive, treats ``-`` and ``_`` alike (and
  optional between words: ``api_key`` matches ``X-Api-Key`` and ``apiKey``) and is a substring
  test (``user_password``, ``refreshToken``). Two-element sequences whose first element is such
  a key are masked too: raw ASGI headers are ``(b"x-api-key", b"...")`` pairs.
* **values**: every string is scanned, whatever its key, for e-mail addresses, Luhn-valid card
  numbers, US social security numbers, bearer/basic credentials, JWTs, credentials in URLs,
  ``key=value`` / ``key: value`` / ``'key': 'value'`` pairs whose key matches a pattern, and
  pydantic validation errors (``'loc': (..., 'password'), ..., 'input': '...'``).

Text longer than ``max_length`` is cut (the partial word at the cut is dropped, so half a secret
never survives) and ends with :data:`TRUNCATION_MARKER`. Masking is idempotent.

One ``mask()`` call visits at most ``max_items`` items (default :data:`DEFAULT_MAX_ITEMS`: the
elements and mapping values of every container, at any depth, in walk order), so a huge value
costs no more than a bounded one. The items past the budget are left out, never copied or
leaked: a list, tuple or set ends with a ``"[N more items]"`` marker, a mapping carries it under
:data:`TRUNCATED_KEY`. The budget is per call (``mask(data, max_items=...)``) or per masker
(``PiiMasker(max_items=...)``).
"""

from __future__ import annotations

from .masker import DEFAULT_MAX_ITEMS, MAX_DEPTH, TRUNCATED_KEY, PiiMasker, mask_pii
from .masker import _masker_for as _masker_for  # mask_pii's cache of maskers
from .text import DEFAULT_PII_PATTERNS, EMAIL_MASK, MASK, TRUNCATION_MARKER

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_PII_PATTERNS",
    "EMAIL_MASK",
    "MASK",
    "MAX_DEPTH",
    "TRUNCATED_KEY",
    "TRUNCATION_MARKER",
    "PiiMasker",
    "mask_pii",
]
