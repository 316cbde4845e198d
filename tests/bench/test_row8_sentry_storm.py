"""Smoke test of row 8 (5xx storm with Sentry): tiny sizes, so it cannot rot.

Correctness only, no timing: the row itself checks that Sentry received exactly the budget,
that every other 5xx was skipped and that no event was built once the budget was spent; here
its results must be well formed and say so. No Redis: the row's app uses the memory store.
"""

from __future__ import annotations

import json
import math

import pytest
from benchmarks import __main__ as cli
from benchmarks import sentry_storm
from benchmarks._common import Context


@pytest.mark.slow  # two uvicorn servers and a load generator per round
def test_row8_sentry_storm_tiny() -> None:
    ctx = Context(scale="tiny", repeats=1, verbose=False)
    results = sentry_storm.run(ctx)

    assert len(results) == 8
    for r in results:
        assert r.row == 8
        assert r.what and r.unit in ("req/s", "us")
        assert r.us is not None and math.isfinite(r.us) and r.us > 0, r
        assert r.peer is not None and math.isfinite(r.peer) and r.peer > 0, r
        assert r.peer_name == "Sentry off"
        assert r.ratio is not None and math.isfinite(r.ratio)
        json.dumps(r.as_dict())

    headline = results[0]
    assert headline.aim == ">= 0.8" and headline.met is (headline.ratio >= 0.8)
    checked = headline.extra["checked"]
    on, off = checked["on"], checked["off"]
    assert on["events"] == sentry_storm.BUDGET
    assert on["skipped"] == on["observed_5xx"] - sentry_storm.BUDGET > 0
    assert on["built"] == checked["built_before_spent"] <= sentry_storm.BUDGET
    assert on["failures"] == 0
    assert (off["events"], off["skipped"], off["built"]) == (0, 0, 0)

    by_what = {r.what: r for r in results}
    spent = by_what["in process: event loop per 5xx, Sentry on, budget spent"]
    assert all(run["built"] == run["events"] == 0 for run in spent.extra["runs"])
    assert all(run["skipped"] == run["requests"] for run in spent.extra["runs"])
    unbounded = by_what["in process: event loop per 5xx, Sentry on, no budget"]
    assert all(run["events"] == run["requests"] for run in unbounded.extra["runs"])


def test_row8_is_registered() -> None:
    assert cli.ROWS[8] == ("5xx storm with Sentry", "benchmarks.sentry_storm:run")
    assert 8 in cli.parse_rows(None)
