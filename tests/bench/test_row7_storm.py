"""Smoke test of row 7 (scrape storm on a slow Redis) at tiny sizes, so it cannot rot.

Correctness only: the row checks every answer itself (``/own`` always 200, every scrape a 200
or the library's 503); no timing is asserted here, the figures of a tiny run mean nothing.
"""

from __future__ import annotations

import json
import math

import pytest
from benchmarks import __main__ as cli
from benchmarks._common import Context

pytestmark = pytest.mark.slow  # a uvicorn server and a load generator in processes of their own


def test_row7_storm(ctx: Context) -> None:
    from benchmarks import storm

    assert cli.ROWS[7][1] == "benchmarks.storm:run"
    results = storm.run(ctx)
    assert len(results) == 1
    r = results[0]
    assert r.row == 7 and r.what and r.unit == "ms"
    assert r.us is not None and math.isfinite(r.us) and r.us > 0
    assert r.peer is not None and math.isfinite(r.peer) and r.peer > 0
    assert r.ratio is not None and math.isfinite(r.ratio)
    assert r.aim == "<= 2" and r.met is (r.ratio <= 2)
    runs = r.extra["runs"]
    assert len(runs["calm"]) == len(runs["storm"]) == 1
    calm, stormy = runs["calm"][0], runs["storm"][0]
    assert calm["own"] > 0 and stormy["own"] > 0
    assert calm["own_unexpected"] == stormy["own_unexpected"] == 0
    assert calm["scrape_200"] + calm["scrape_503"] == 0  # no storm: nobody scraped
    assert stormy["scrape_200"] + stormy["scrape_503"] >= storm.STORM  # every scraper answered
    assert stormy["scrape_unexpected"] == 0
    json.dumps(r.as_dict())
