"""Row 6: memory. Bytes per buffered event, and the peak RSS of a worker during an outage.

- bytes per buffered event: tracemalloc over N ``record()`` calls into the local buffer
  (N below the event ring's size, flusher parked), divided by N;
- peak RSS: a child process records M errors while its Redis URL points at a closed loopback
  port (every flush fails at once, the batch is kept and retried with backoff), then reports
  ``ru_maxrss``. The same child with M/10 errors is the reference: a bounded buffer gives the
  same peak for both, a leak would give 10x the growth.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from ._common import Context, Result, child_env, closed_port, median, ratio
from .hot_path import _ours_loop, make_collector
from .workload import stream


def bytes_per_event(n: int) -> float:
    """Bytes the local buffer grows by per ``record()`` (events below the ring's size)."""
    collector = make_collector()
    inputs = stream(n, 20)
    _ours_loop(collector.record, inputs[:20])  # create the cells and the names first
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        _ours_loop(collector.record, inputs)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    buffered = collector.buffered
    collector.close(timeout=2)
    if buffered != n + 20:
        raise AssertionError(f"{buffered} errors buffered, expected {n + 20}")
    return grown / n


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _rss_child(count: int, port: int, ns: str) -> None:
    """Child: record *count* errors with Redis down; print figures as JSON."""
    from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig

    config = MetricsConfig(
        redis_url=f"redis://127.0.0.1:{port}/0",
        namespace=ns,
        flush_interval_ms=50,
        redis_timeout_ms=200,
    )
    collector = ErrorMetricsCollector(config)
    inputs = stream(10_000, 20)
    base_kib = _rss_kib()
    record = collector.record
    start = time.perf_counter()
    done = 0
    while done < count:
        chunk = inputs[: min(len(inputs), count - done)]
        _ours_loop(record, chunk)
        done += len(chunk)
    elapsed = time.perf_counter() - start
    time.sleep(0.3)  # let the flusher fail at least once more with everything buffered
    collector.flush(timeout=1)
    figures = {
        "count": count,
        "base_rss_kib": base_kib,
        "end_rss_kib": _rss_kib(),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "us_per_record": elapsed / count * 1e6,
        "buffered": collector.buffered,
        "flush_failures": collector.stats.flush_failures,
        "last_error": collector.stats.last_error,
    }
    print(json.dumps(figures), flush=True)


def rss_run(count: int, ns: str) -> dict[str, Any]:
    """Run the outage child with *count* errors; its figures."""
    port = closed_port()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--rss-child", str(count), str(port), ns],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["flush_failures"] < 1:
        raise AssertionError("the outage child never saw a failed flush")
    if figures["buffered"] != count:
        raise AssertionError(f"{figures['buffered']} of {count} errors held for the retry")
    return figures


def run(ctx: Context) -> list[Result]:
    """Row 6: bytes per buffered event; peak RSS for 1,000,000 errors while Redis is down."""
    n_events = ctx.pick(5_000, 5_000, 500)
    big = ctx.pick(1_000_000, 1_000_000, 20_000)
    repeats = ctx.pick(3, 1, 1)
    ctx.log(f"row 6: memory, {n_events} events; outage with {big} and {big // 10} errors")
    per_event = median([bytes_per_event(n_events) for _ in range(repeats)])
    ns = ctx.namespace("rss")  # nothing reaches Redis; the name only keeps the run's pattern
    small_runs, big_runs = [], []
    for _ in range(repeats):  # interleaved: small, big, small, big ...
        small_runs.append(rss_run(big // 10, ns))
        big_runs.append(rss_run(big, ns))
    small_peak = median([r["peak_rss_kib"] / 1024 for r in small_runs])
    big_peak = median([r["peak_rss_kib"] / 1024 for r in big_runs])
    small_growth = median([(r["peak_rss_kib"] - r["base_rss_kib"]) / 1024 for r in small_runs])
    big_growth = median([(r["peak_rss_kib"] - r["base_rss_kib"]) / 1024 for r in big_runs])
    return [
        Result(
            row=6,
            what="bytes per buffered event (tracemalloc)",
            unit="bytes",
            us=per_event,
            aim="- (ring <= max_events)",
            met=None,
            extra={"events": n_events},
        ),
        Result(
            row=6,
            what=f"peak RSS recording {big:,} errors, Redis down",
            unit="MiB",
            us=big_peak,
            peer=small_peak,
            peer_name=f"the same worker recording {big // 10:,} errors",
            ratio=ratio(big_peak, small_peak),
            aim="<= 1.1 (bounded)",
            met=big_peak <= 1.1 * small_peak,
            extra={
                "growth_mib_big": big_growth,
                "growth_mib_small": small_growth,
                "big_runs": big_runs,
                "small_runs": small_runs,
            },
        ),
    ]


if __name__ == "__main__" and "--rss-child" in sys.argv:
    i = sys.argv.index("--rss-child")
    _rss_child(int(sys.argv[i + 1]), int(sys.argv[i + 2]), sys.argv[i + 3])
