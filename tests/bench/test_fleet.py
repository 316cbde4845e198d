"""Smoke test of the fleet row (``python -m benchmarks --rows fleet``) at tiny sizes.

The row starts its own redis-server, so it needs no machine Redis. Correctness only: every
run of the row checks that the store holds exactly what its workers had acknowledged, and
so does this test (also after timeouts and retries); no figure is asserted.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator

import pytest
from benchmarks import __main__ as cli
from benchmarks import fleet
from benchmarks._common import Context

from tests._servers import RedisServer, in_ci

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if in_ci():
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer("--enable-debug-command", "local").start()
    try:
        yield server
    finally:
        server.close()


def _ctx() -> Context:
    return Context(scale="tiny", repeats=1, verbose=False)


def test_the_row_at_tiny_scale_is_exact(server: RedisServer) -> None:
    results = fleet.run(_ctx())
    assert results and all(r.row == "fleet" for r in results)
    for r in results:
        assert r.what and r.unit
        assert r.us is not None and math.isfinite(r.us) and r.us >= 0, r
        json.dumps(r.as_dict())
    summary = results[0].extra["fleet"]
    runs = list(summary["capacity"].values()) + list(summary["saturation"].values())
    assert runs and all(run["exact"] and run["errors_counted"] > 0 for run in runs)
    capacity = summary["capacity"]["busy/128/new"]
    assert capacity["script_calls"] >= capacity["flushes"] > 0
    saturation = summary["saturation"]["new"]
    # the short timeouts and the stalls did what the run is for: batches were retried, and a
    # retry of a batch Redis had applied was refused by its seq (the totals above are exact)
    assert saturation["timeouts"] > 0 and saturation["retries"] > 0
    assert saturation["first_false"] == 0 and saturation["rejected"] == 0


def test_retries_are_counted_once_and_a_wrong_total_fails(server: RedisServer) -> None:
    ctx = _ctx()
    ns = fleet.namespace(ctx, "smoke")
    config = fleet._config(server.url, ns, redis_timeout_ms=10)
    with fleet.Fleet(fleet.new_release(), 2, "incident", config) as workers:
        with fleet.stalls(server.port, every_s=0.1, stall_s=0.04) as seen:
            phase = workers.run(0.05, 12)
        assert seen["stalls"] > 0
        acked, by_code = workers.acknowledged()
        assert phase.counter("flushes") == 24 and acked > 0
        assert workers.read() == (acked, by_code)
        assert workers.check_exact("smoke") == acked
        # one more batch the workers never acknowledged: the check must fail
        from fastapi_error_codes.metrics import MetricsConfig
        from fastapi_error_codes.metrics.models import Batch
        from fastapi_error_codes.metrics.stores.redis import RedisStore

        store = RedisStore(MetricsConfig(**fleet._config(server.url, ns)))
        try:
            assert store.apply(Batch("intruder", 1, {(0, 1000, 404): 1}, {}, []))
            with pytest.raises(fleet.FleetError):
                workers.check_exact("smoke")
        finally:
            store.clear()
            store.close()


def test_events_are_the_library_encoder_s_bytes() -> None:
    from fastapi_error_codes.metrics import MetricsConfig
    from fastapi_error_codes.metrics.wire import WireEncoder

    encoder = WireEncoder(MetricsConfig(max_events=10000))
    for i, (code, name, status) in enumerate(fleet.series(20)):
        raw = fleet.raw_event(i, 1_700_000_000.1234 + i, code, name, status)
        assert fleet.encode_event(raw, "p-", "w1") == encoder.event(raw, "p-", "w1")  # type: ignore[arg-type]


def test_a_busy_flush_s_events_compress_to_under_half() -> None:
    import zlib

    from fastapi_error_codes.metrics.stores.redis import pack_events

    events = [
        fleet.encode_event(
            fleet.raw_event(i, 1_700_000_000.0 + i / 1000, code, name, status), "p-", "w1"
        )
        for i, (code, name, status) in enumerate(fleet.series(50) * 2)
    ]
    packed = pack_events(events)
    assert len(packed) < sum(map(len, events)) / 2
    assert zlib.decompress(packed).decode().split("\n") == events  # one per line, in order


def test_fleet_is_a_named_row() -> None:
    assert "fleet" not in cli.parse_rows(None)
    assert cli.parse_rows("fleet") == ["fleet"]
    assert cli.parse_rows("4, fleet") == [4, "fleet"]
    assert cli.NAMED_ROWS["fleet"][1] == "benchmarks.fleet:run"
    with pytest.raises(SystemExit):
        cli.parse_rows("flet")
