"""The text rules of PII masking: patterns, regexes, Luhn, and masking one string."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_PII_PATTERNS",
    "EMAIL_MASK",
    "MASK",
    "TRUNCATION_MARKER",
    "TextMasker",
    "mask_secret",
]


#: The spec's eight patterns, then the usual credential keys.
DEFAULT_PII_PATTERNS: tuple[str, ...] = (
    "email",
    "password",
    "ssn",
    "credit_card",
    "api_key",
    "token",
    "secret",
    "phone",
    "passwd",
    "pwd",
    "authorization",
    "auth_key",
    "access_key",
    "private_key",
    "credential",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "jwt",
    "bearer",
    "signature",
    "card_number",
    "cvv",
)

#: What a masked value becomes.
MASK = "***"
#: What a masked e-mail address becomes (as the spec shows).
EMAIL_MASK = "***@***.***"
#: Appended to text cut at ``max_length``; starts with a space so it never joins a masked value.
TRUNCATION_MARKER = " [truncated]"
_TEXT_CACHE_SIZE = 4096  # distinct strings remembered by mask_text
_TEXT_CACHE_MAX_LENGTH = 256  # longer strings are masked every time, never remembered
_KEY_CACHE_SIZE = 4096

# The local part may hold any RFC 5322 "atext" character ("=@example.com" is an address).
_ATEXT = r"[\w.!#$%&'*+/=?^`{|}~\-]"
_EMAIL_FULL = re.compile(rf"{_ATEXT}+@[\w\-]+(?:\.[\w\-]+)+")
_QUOTED = r"""b?'(?:[^'\\\n]|\\.)*'|b?"(?:[^"\\\n]|\\.)*\""""
_BARE_VALUE = r"""[^\s&,;'"<>()\[\]{}]+"""
_BRACKETED = r"\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)"
_KEY_CHARS = r"[\w.\-]"

_URL_CREDS_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@")
_JWT_RE = re.compile(r"(?<![\w\-])eyJ[\w\-]{4,}\.[\w\-]{4,}\.[\w\-]*")
_AUTH_RE = re.compile(r"\b(?P<scheme>bearer|basic)(?P<sp>[ \t]+)(?P<cred>[\w\-.~+/]+=*)", re.I)
_EMAIL_RE = re.compile(rf"(?<!{_ATEXT}){_ATEXT}+@[\w\-]+(?:\.[\w\-]+)+")
_DIGITS_RE = re.compile(r"\d[ \-]?\d[ \-]?\d")
_CARD_RE = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
_SSN_RE = re.compile(r"(?<![\d\-])\d{3}-\d{2}-\d{4}(?![\d\-])")


def _key_fragment(pattern: str) -> str:
    """Regex for one pattern: ``-`` and ``_`` alike, and optional between its words."""
    words = [re.escape(w) for w in re.split(r"[-_\s]+", pattern) if w]
    return r"[-_]?".join(words)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_card_run(run: str) -> str:
    """Mask the Luhn-valid 13-19 digit card inside a digit run (groups split by space/dash)."""
    digits = run.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return MASK
    # A card next to other digits ("4111 1111 1111 1111 2024"): try runs of whole groups.
    parts = re.split(r"([ \-])", run)
    groups = parts[::2]
    best: tuple[int, int] | None = None
    for i in range(len(groups)):
        n = 0
        for j in range(i, len(groups)):
            n += len(groups[j])
            if n > 19:
                break
            longer = best is None or (j - i) > (best[1] - best[0])
            if n >= 13 and longer and _luhn_ok("".join(groups[i : j + 1])):
                best = (i, j)
    if best is None:
        return run
    i, j = best
    before = "".join(parts[: 2 * i])
    after = "".join(parts[2 * j + 1 :])
    return before + MASK + after


class TextMasker:
    """Masks PII in one string (or decides one key) with patterns compiled once; never raises."""

    __slots__ = (
        "_key_cache",
        "_key_re",
        "_kv_re",
        "_kv_tail_re",
        "_loc_re",
        "_max",
        "_text_cache",
        "_trigger",
        "max_length",
        "patterns",
    )

    def __init__(self, patterns: Iterable[str] | None = None, *, max_length: int = 1024) -> None:
        """Compile the default patterns plus *patterns*; text is cut at *max_length* chars."""
        if isinstance(patterns, str):
            patterns = [patterns]
        extra = [] if patterns is None else list(patterns)
        for p in extra:
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"PII patterns must be non-empty strings, got {p!r}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 16:
            raise ValueError(f"max_length must be an int >= 16, got {max_length!r}")
        seen: dict[str, None] = {}
        for p in (*DEFAULT_PII_PATTERNS, *extra):
            seen.setdefault(p.strip().lower().replace("-", "_"), None)
        #: Every pattern in effect (defaults first), normalised.
        self.patterns: tuple[str, ...] = tuple(seen)
        #: Strings longer than this are cut.
        self.max_length = max_length
        self._max = max_length
        self._key_cache: dict[str, tuple[str, bool]] = {}
        frags = sorted({_key_fragment(p) for p in self.patterns}, key=len, reverse=True)
        alts = "|".join(frags)
        self._key_re = re.compile(alts)  # searched in lower-cased text: much faster than re.I
        # A key-value match starts at the pattern inside the key ("user_password=" matches
        # from "password"): the regex engine then skips ahead on the patterns' first letters.
        key = rf"(?:{alts}){_KEY_CHARS}*"
        self._kv_re = re.compile(
            rf"""(?P<pkey>{key})['"][ \t]*,[ \t]*(?P<pval>{_QUOTED})
            | (?P<key>{key})(?P<kq>['"]?)(?P<sep>[ \t]*[=:][ \t]*)
              (?P<val>{_QUOTED}|(?:bearer|basic|token|digest)[ \t]+{_BARE_VALUE}
                 |{_BRACKETED}|{_BARE_VALUE})""",
            re.IGNORECASE | re.VERBOSE,
        )
        # What follows a pattern found in the lower-cased text: the rest of the key, then a
        # separator and the value. Matching it only where a pattern occurs is ~30x faster.
        self._kv_tail_re = re.compile(
            rf"""{_KEY_CHARS}*(?:['"][ \t]*,[ \t]*(?P<pval>{_QUOTED})
            | ['"]?[ \t]*[=:][ \t]*
              (?P<val>{_QUOTED}|(?:bearer|basic|token|digest)[ \t]+{_BARE_VALUE}
                 |{_BRACKETED}|{_BARE_VALUE}))""",
            re.IGNORECASE | re.VERBOSE,
        )
        # Strings without any of these cannot hold anything the scan masks: the fast path.
        self._trigger = re.compile(
            r"""[@=:]|['"][ \t]*,|eyJ|[Bb]earer|BEARER|[Bb]asic|BASIC|\d[ \-]?\d[ \-]?\d"""
        )
        self._loc_re = re.compile(
            rf"""(?P<lq>['"])loc(?P=lq):\s*[(\[](?P<loc>[^()\[\]]*)[)\]]
            (?P<mid>(?:[^{{}}'"]|{_QUOTED})*?)
            (?P<iq>['"])input(?P=iq):\s*(?P<inval>{_QUOTED}|{_BRACKETED}|[^,{{}}]+)""",
            re.VERBOSE,
        )
        self._text_cache: dict[str, str] = {}

    # --- keys -----------------------------------------------------------------------------

    def matches_key(self, key: str) -> bool:
        """True if *key* names sensitive data (case-insensitive, ``-``/``_`` alike, substring)."""
        return self._key_info(key)[1]

    def _key_info(self, key: str) -> tuple[str, bool]:
        """The masked form of a key and whether its value is secret (cached: keys repeat)."""
        info = self._key_cache.get(key)
        if info is None:
            info = (self.mask_text(key), self._key_re.search(key.lower()) is not None)
            if len(key) <= 64:
                if len(self._key_cache) >= _KEY_CACHE_SIZE:
                    self._key_cache.clear()
                self._key_cache[key] = info
        return info

    # --- text -----------------------------------------------------------------------------

    def mask_text(self, text: str) -> str:
        """Return *text* with e-mails, cards, tokens, JWTs and secret ``key=value`` masked."""
        # Messages of declared errors and route templates repeat: remember recent answers
        # (bounded; a dict's get/set are atomic, so the flusher and Sentry may share it).
        cache = self._text_cache
        found = cache.get(text)
        if found is not None:
            return found
        try:
            if len(text) > self._max:
                result = self._mask_long(text)
            elif self._trigger.search(text) is None:
                result = text
            else:
                result = self._scan(text)
        except Exception:  # never raise into the caller; hiding everything is the safe side
            return MASK
        if len(text) <= _TEXT_CACHE_MAX_LENGTH:  # short, repeating texts only: bounded bytes
            if len(cache) >= _TEXT_CACHE_SIZE:
                cache.clear()
            cache[text] = result
        return result

    def _scan(self, text: str) -> str:
        # Ordered passes, each guarded by a cheap test; every pass leaves masks unchanged, so
        # the result is a fixed point (masking is idempotent).
        if "input" in text and "loc" in text:
            text = self._loc_re.sub(self._mask_loc_input, text)
        if "@" in text:
            text = _URL_CREDS_RE.sub(r"\g<scheme>***:***@", text)
        if "eyJ" in text:
            text = _JWT_RE.sub(MASK, text)
        text = _AUTH_RE.sub(_mask_auth, text)
        low = text.lower()
        if self._key_re.search(low) is not None:
            text = self._mask_kv(text, low)
        if "@" in text:
            text = _EMAIL_RE.sub(EMAIL_MASK, text)
        if _DIGITS_RE.search(text) is not None:
            text = _CARD_RE.sub(lambda m: _mask_card_run(m.group(0)), text)
            text = _SSN_RE.sub(MASK, text)
        return text

    def _mask_kv(self, text: str, low: str) -> str:
        if len(low) != len(text):  # rare Unicode whose lower case is longer: the slow regex
            return self._kv_re.sub(_mask_kv, text)
        parts: list[str] = []
        last = 0
        for found in self._key_re.finditer(low):
            if found.start() < last:
                continue
            tail = self._kv_tail_re.match(text, found.end())
            if tail is None:
                continue
            group = "pval" if tail.group("pval") is not None else "val"
            start, end = tail.span(group)
            parts.append(text[last:start])
            parts.append(_requote(tail.group(group)))
            last = end
        if not parts:
            return text
        parts.append(text[last:])
        return "".join(parts)

    def _mask_long(self, text: str) -> str:
        limit = self._max - len(TRUNCATION_MARKER)
        cut = text[:limit]
        # Drop the word at the cut and digits just before it: half a secret must not survive.
        space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        cut = cut[: space + 1] if space >= 0 else ""
        cut = cut.rstrip("0123456789 -\t\n")
        out = self._scan(cut)
        for _ in range(3):  # masking may lengthen (e-mail mask): cut again, until stable
            if len(out) <= limit:
                break
            out = self._scan(out[:limit])
        return out[:limit] + TRUNCATION_MARKER

    def _mask_loc_input(self, m: re.Match[str]) -> str:
        if self._key_re.search(m.group("loc").lower()) is None:
            return m.group(0)
        start, end = m.span("inval")
        base = m.start()
        whole = m.group(0)
        return whole[: start - base] + _requote(m.group("inval")) + whole[end - base :]


def _requote(value: str) -> str:
    """Replace a value with the mask, keeping its quotes (``'x'`` -> ``'***'``)."""
    if value[:1] in ("'", '"'):
        return value[0] + _mask_inner(value[1:-1]) + value[-1]
    if value[:2] in ("b'", 'b"'):
        return value[:2] + _mask_inner(value[2:-1]) + value[-1]
    return _mask_inner(value)


def _mask_inner(value: str) -> str:
    if value in (MASK, EMAIL_MASK):
        return value
    if _EMAIL_FULL.fullmatch(value):
        return EMAIL_MASK
    return MASK


def mask_secret(value: Any) -> str:
    """What the value under a secret key becomes: ``***@***.***`` for an address, else ``***``."""
    if type(value) is str:
        if value in (MASK, EMAIL_MASK):
            return value
        if _EMAIL_FULL.fullmatch(value.strip()):
            return EMAIL_MASK
    return MASK


def _mask_auth(m: re.Match[str]) -> str:
    if m.group("scheme").lower() == "basic" and not _looks_encoded(m.group("cred")):
        return m.group(0)
    return m.group("scheme") + m.group("sp") + MASK


def _mask_kv(m: re.Match[str]) -> str:
    if m.group("pval") is not None:
        whole = m.group(0)
        return whole[: m.start("pval") - m.start()] + _requote(m.group("pval"))
    return m.group("key") + m.group("kq") + m.group("sep") + _requote(m.group("val"))


def _looks_encoded(cred: str) -> bool:
    """Basic credentials are base64: long enough, with a digit, capital or padding."""
    return len(cred) >= 8 and any(c.isdigit() or c.isupper() or c in "=+/" for c in cred)
