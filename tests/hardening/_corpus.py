"""Hostile inputs shared by the hardening tests: secrets, awkward text, a leak check."""

from __future__ import annotations

import json
import random
import string
from typing import Any

#: A secret value -> the text that carries it into the app (as a message, detail or path).
EMAIL = "alice.k9x7q@corp-mail.example"
PASSWORD = "Zq8rT4vLm2pW"
BEARER = "tok9fK2mX7pQ4wZhR3"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJrOXg3cSIsIm5hbWUiOiJBbGljZSJ9."
    "Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHkxMjM0NTY"
)
SECRETS: tuple[str, ...] = (EMAIL, PASSWORD, BEARER, JWT)

#: Texts that carry the secrets the way applications leak them.
LEAKY_TEXTS: tuple[str, ...] = (
    f"login failed for {EMAIL}",
    f"bad credentials: password={PASSWORD}",
    f"upstream said 401 to Authorization: Bearer {BEARER}",
    f"session token {JWT} expired",
    f"user={EMAIL}&password={PASSWORD}",
    f"{{'password': '{PASSWORD}', 'email': '{EMAIL}'}}",
)

#: Label and text values that break naive exposition or JSON code.
AWKWARD = (
    'quote"inside',
    "back\\slash\\",
    "new\nline\r\ncarriage",
    "tab\tand\x00nul",
    "ünïcødé ✓ 名前 🚀",
    "\u202eright-to-left override",
    "} { # HELP fake_metric 1\nfake_metric 1",
)


def big_text(size: int = 10_000, filler: str = "x") -> str:
    """A *size*-character string of *filler* words."""
    words = (filler * 7 + " ") * (size // 8 + 1)
    return words[:size]


def straddling(secret: str, at: int, size: int = 10_000) -> str:
    """A *size*-character text whose *secret* crosses character position *at* (a cut)."""
    head = big_text(at - len(secret) // 2 - 1)
    tail = big_text(size - len(head) - len(secret) - 2)
    return f"{head} {secret} {tail}"


def random_text(rng: random.Random, max_len: int = 60) -> str:
    """Random printable text, sometimes with non-ASCII and control characters."""
    alphabet = string.printable + "äöü€名前🚀\u202e"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len)))


def fragments(secret: str, width: int = 8) -> set[str]:
    """Every *width*-character piece of *secret*: none of them may survive masking."""
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


def leaked(data: Any) -> list[str]:
    """The secrets (or 8-character pieces of them) found anywhere in *data*'s JSON."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    found = []
    for secret in SECRETS:
        hits = sorted(piece for piece in fragments(secret) if piece in text)
        if hits:
            found.append(f"{secret[:12]}...: {hits[:3]}")
    return found
