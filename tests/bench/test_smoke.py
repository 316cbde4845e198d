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


def test_row9_request_count(ctx: Context) -> None:
    from benchmarks import request_count

    results = request_count.run(ctx)
    _check(results, 9, 2)
    assert results[0].aim == "< 1 us" and results[0].met is (results[0].us < 1)
    assert all("prometheus_client" in r.peer_name for r in results)


def test_row10_in_process_error_path(ctx: Context) -> None:
    from benchmarks import in_process

    results = in_process.run_error(ctx)
    _check(results, 10, 6)
    aims = {r.extra["variant"]: r for r in results if r.met is not None}
    assert set(aims) == {"metrics off", "metrics on"}
    assert aims["metrics off"].aim == "<= 1.05" and aims["metrics on"].aim == "<= 1.10"
    sent = aims["metrics off"].extra["sent"]
    assert len(set(sent.values())) == 1 and min(sent.values()) > 0  # the same load for each


def test_row11_in_process_2xx(ctx: Context) -> None:
    from benchmarks import in_process

    results = in_process.run_ok(ctx)
    _check(results, 11, 6)
    headline = [r for r in results if r.met is not None]
    assert len(headline) == 1 and headline[0].aim == "<= 1.03"


def test_row11_routes_first_variant_puts_the_library_first() -> None:
    from benchmarks import in_process

    app, collector = in_process.make_app("on_routes_first")
    try:
        paths = [getattr(r, "path", None) for r in app.router.routes]
        assert paths.index("/metrics") < paths.index("/items/{item_id}")
        built, _ = in_process.make_app("on")
        built.build_middleware_stack()
        paths = [getattr(r, "path", None) for r in built.router.routes]
        assert paths.index("/metrics") > paths.index("/items/{item_id}")  # 18d6c9f's move
        built.state.metrics_collector.close(timeout=5)
    finally:
        collector.close(timeout=5)


@pytest.mark.slow
def test_row12_end_to_end_2xx(ctx: Context) -> None:
    from benchmarks import e2e

    results = e2e.run_ok(ctx)
    _check(results, 12, 4)
    assert results[0].extra["fleet_requests_checked"] > 0


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
    assert cli.parse_rows(None) == list(range(1, 13))
    assert cli.parse_rows("5, 1") == [1, 5]
    with pytest.raises(SystemExit):
        cli.parse_rows("13")
