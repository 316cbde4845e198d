"""The inputs every row shares: declared errors as (code, name, status) series."""

from __future__ import annotations

import random

STATUSES = (400, 401, 403, 404, 409, 422, 429, 500, 502, 503)
MESSAGE = "The requested resource was not found"
PATH = "/items/{item_id}"
METHOD = "GET"


def series(count: int) -> list[tuple[int, str, int]]:
    """*count* distinct (error_code, error_name, status_code) series."""
    out = []
    for i in range(count):
        code = 1000 + i
        out.append((code, f"Error{code}", STATUSES[i % len(STATUSES)]))
    return out


def stream(count: int, n_series: int, seed: int = 7) -> list[tuple[int, str, int]]:
    """*count* records spread over *n_series* series in a fixed pseudo-random order."""
    pool = series(n_series)
    rng = random.Random(seed)
    return [pool[rng.randrange(n_series)] for _ in range(count)]
