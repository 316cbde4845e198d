"""Smoke test of the benchmarks: every row at tiny sizes, so they cannot rot.

Correctness only (each row checks its own counts against what it recorded); no timing is
asserted here: the figures of a tiny run mean nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from benchmarks import __main__ as cli
from benchmarks._common import Context, Result


def _check(results: list[Result], row: int, minimum: int) -> None:
    assert len(results) >= minimum
    for r in results:
        assert r.row == row
        assert r.what and r.unit
        assert r.us is not None and math.isfinite(r.us) and r.us >= 0, r
        if r.peer is not None:
            assert math.isfinite(r.peer) and r.peer > 0, r
            assert r.ratio is not None and math.isfinite(r.ratio)
        json.dumps(r.as_dict())


def test_row1_hot_path(ctx: Context) -> None:
    from benchmarks import hot_path

    results = hot_path.run(ctx)
    _check([r for r in results if r.us is not None], 1, 4)
    peers = {r.peer_name for r in results}
    assert any("single-process" in p for p in peers)
    assert any("multiprocess" in p for p in peers)
    prc = [r for r in results if "prometheus-redis-client" in r.peer_name]
    assert len(prc) == 1 and (prc[0].peer is not None or "not installed" in prc[0].note)


def test_row2_scrape_churn(ctx: Context) -> None:
    from benchmarks import scrape

    _check(scrape.run_churn(ctx), 2, 3)


def test_row3_scrape_series(ctx: Context) -> None:
    from benchmarks import scrape

    _check(scrape.run_series(ctx), 3, 3)


def test_row4_flush_one_round_trip(ctx: Context) -> None:
    from benchmarks import flush

    results = flush.run(ctx)
    _check(results, 4, 4)
    trips = [r for r in results if r.unit == "round trips"]
    assert trips and all(r.us == 1 for r in trips)


@pytest.mark.slow
def test_row5_end_to_end(ctx: Context) -> None:
    from benchmarks import e2e

    _check(e2e.run(ctx), 5, 6)


def test_row6_memory(ctx: Context) -> None:
    from benchmarks import memory

    _check(memory.run(ctx), 6, 2)


def test_cli_table_and_json(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    code = cli.main(
        ["--tiny", "--rows", "4", "--json", str(out), "--redis-url", redis_url, "--quiet"]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert table.startswith("| # | what | us | peer | ratio (us/peer) | aim | met |")
    report = json.loads(out.read_text())
    assert report["failures"] == {}
    assert report["machine"]["cpu"]
    assert {r["row"] for r in report["results"]} == {4}


def test_parse_rows() -> None:
    assert cli.parse_rows(None) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert cli.parse_rows("5, 1") == [1, 5]
    with pytest.raises(SystemExit):
        cli.parse_rows("9")
