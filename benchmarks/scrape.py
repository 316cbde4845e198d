"""Rows 2 and 3: the cost of one /metrics render, against worker churn and against series.

Ours: ``PrometheusExporter(collector).generate_metrics()`` on a ``RedisStore`` into which
batches from W worker ids were applied (every id ever seen stays in ``{ns}:seq`` until it is
forgotten after the retention). That is what ``/metrics`` runs, minus HTTP.

Peer: prometheus_client's multiprocess mode. A real prometheus_client in a child process
writes one ``counter_<pid>.db`` file per worker id with the same series and counts; the scrape
is what its documented /metrics handler does: a fresh ``CollectorRegistry`` with a
``MultiProcessCollector`` over the folder, then ``generate_latest``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from ._common import Context, Result, child_env, gc_paused, interleaved, median, ratio
from .workload import series

PER_SERIES = 3  # each worker counted each series this many times


def _make_pid_files(folder: str, workers: int, n_series: int) -> None:
    """Child: write *workers* pid files with the real prometheus_client multiprocess code."""
    from prometheus_client import CollectorRegistry, Counter, values

    for pid in range(100_000, 100_000 + workers):
        values.ValueClass = values.MultiProcessValue(lambda pid=pid: pid)
        counter = Counter(
            "fec_bench_errors",
            "errors",
            ["error_code", "error_name", "status_code"],
            registry=CollectorRegistry(),
        )
        for code, name, status in series(n_series):
            counter.labels(code, name, status).inc(PER_SERIES)


def make_pid_files(workers: int, n_series: int) -> str:
    """A temp folder with *workers* multiprocess-mode pid files; the caller removes it."""
    folder = tempfile.mkdtemp(prefix="fecb-pids-")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scrape",
            "--make-pid-files",
            folder,
            str(workers),
            str(n_series),
        ],
        check=True,
        env=child_env(PROMETHEUS_MULTIPROC_DIR=folder),
        timeout=600,
    )
    return folder


def mp_scrape(folder: str) -> str:
    """One multiprocess-mode scrape, as its /metrics handler does it."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return generate_latest(registry).decode()


def ours_setup(ctx: Context, label: str, workers: int, n_series: int) -> tuple[Any, Any]:
    """A RedisStore in a fresh namespace with batches from *workers* ids; (exporter, collector)."""
    from fastapi_error_codes.metrics import (
        ErrorMetricsCollector,
        MetricsConfig,
        PrometheusExporter,
        RedisStore,
    )
    from fastapi_error_codes.metrics.models import Batch

    config = MetricsConfig(
        redis_url=ctx.redis_url,
        namespace=ctx.namespace(label),
        flush_interval_ms=3_600_000,
        max_series=max(1000, n_series),
    )
    store = RedisStore(config)
    width = config.bucket_width_s
    bucket = int(time.time()) // width * width
    pool = series(n_series)
    counts = {(bucket, code, status): PER_SERIES for code, _name, status in pool}
    names = {code: name for code, name, _status in pool}
    for i in range(workers):
        batch = Batch(worker_id=f"bench-{i}", seq=1, counts=counts, names=names, events=[])
        assert store.apply(batch)
    collector = ErrorMetricsCollector(config, store=store)
    return PrometheusExporter(collector), collector


def _total(text: str, line_prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_prefix)
    )


def check_ours(text: str, workers: int, n_series: int) -> None:
    """The render shows every series and the exact fleet total."""
    expected = workers * n_series * PER_SERIES
    total = _total(text, "fastapi_errors_total ")
    if int(total) != expected:
        raise AssertionError(f"ours: fastapi_errors_total {total}, expected {expected}")
    rows = sum(1 for line in text.splitlines() if line.startswith("fastapi_errors_by_code{"))
    if rows != n_series:
        raise AssertionError(f"ours: {rows} by_code series, expected {n_series}")


def check_peer(text: str, workers: int, n_series: int) -> None:
    """The multiprocess scrape merged every pid file."""
    expected = workers * n_series * PER_SERIES
    total = _total(text, "fec_bench_errors_total{")
    if int(total) != expected:
        raise AssertionError(f"multiprocess: total {total}, expected {expected}")


def _ms(fn: Any) -> Any:
    def sample() -> float:
        with gc_paused():
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1000

    return sample


def _measure(
    ctx: Context, cases: list[tuple[str, int, int]], repeats: int
) -> dict[str, dict[str, Any]]:
    """Set up every case, then time all of them interleaved; case -> medians and samples."""
    setups: dict[str, tuple[Any, Any, str, int, int]] = {}
    try:
        for label, workers, n_series in cases:
            exporter, collector = ours_setup(ctx, label, workers, n_series)
            folder = make_pid_files(workers, n_series)
            check_ours(exporter.generate_metrics(), workers, n_series)
            check_peer(mp_scrape(folder), workers, n_series)
            setups[label] = (exporter, collector, folder, workers, n_series)
        variants = {}
        for label, (exporter, _c, folder, _w, _s) in setups.items():
            variants[f"{label}/ours"] = _ms(exporter.generate_metrics)
            variants[f"{label}/peer"] = _ms(lambda folder=folder: mp_scrape(folder))
        samples = interleaved(variants, repeats)
        out: dict[str, dict[str, Any]] = {}
        for label, (_e, collector, _f, workers, n_series) in setups.items():
            out[label] = {
                "workers": workers,
                "series": n_series,
                "ours": median(samples[f"{label}/ours"]),
                "peer": median(samples[f"{label}/peer"]),
                "samples": {
                    "ours": samples[f"{label}/ours"],
                    "peer": samples[f"{label}/peer"],
                },
            }
            collector.close(timeout=2)
        return out
    finally:
        for _e, collector, folder, _w, _s in setups.values():
            collector.store.close()
            shutil.rmtree(folder, ignore_errors=True)


def run_churn(ctx: Context) -> list[Result]:
    """Row 2: scrape cost with 4, 100, 1000 worker ids ever seen (20 series)."""
    sizes = ctx.pick((4, 100, 1000), (4, 100, 1000), (2, 5, 10))
    n_series = 20
    repeats = ctx.pick(ctx.repeats, max(3, ctx.repeats // 2), 1)
    ctx.log(f"row 2: scrape vs worker churn {sizes}, {n_series} series, {repeats} rounds")
    medians = _measure(ctx, [(f"w{w}", w, n_series) for w in sizes], repeats)
    first = medians[f"w{sizes[0]}"]["ours"]
    results = []
    for w in sizes:
        m = medians[f"w{w}"]
        growth = m["ours"] / first
        # "flat": within 1.5x of the smallest size; at the largest also 20x the peer's speed.
        met = growth <= 1.5
        if w == sizes[-1]:
            met = met and m["ours"] <= 0.05 * m["peer"]
        results.append(
            Result(
                row=2,
                what=f"scrape, {w} worker ids ever seen, {n_series} series",
                unit="ms/scrape",
                us=m["ours"],
                peer=m["peer"],
                peer_name=f"MultiProcessCollector over {w} pid files",
                ratio=ratio(m["ours"], m["peer"]),
                aim="<= 0.05 (20x) and flat" if w == sizes[-1] else "flat (<= 1.5x smallest)",
                met=met,
                samples=m["samples"],
                extra={"ours_vs_first_size": growth},
            )
        )
    return results


def run_series(ctx: Context) -> list[Result]:
    """Row 3: scrape cost with 10, 100, 1000 series (4 workers)."""
    sizes = ctx.pick((10, 100, 1000), (10, 100, 1000), (3, 10, 30))
    workers = 4
    repeats = ctx.pick(ctx.repeats, max(3, ctx.repeats // 2), 1)
    ctx.log(f"row 3: scrape vs series {sizes}, {workers} workers, {repeats} rounds")
    medians = _measure(ctx, [(f"s{s}", workers, s) for s in sizes], repeats)
    results = []
    for s in sizes:
        m = medians[f"s{s}"]
        results.append(
            Result(
                row=3,
                what=f"scrape, {s} series, {workers} workers",
                unit="ms/scrape",
                us=m["ours"],
                peer=m["peer"],
                peer_name=f"MultiProcessCollector over {workers} pid files",
                ratio=ratio(m["ours"], m["peer"]),
                aim="- (grows with series)",
                met=None,
                samples=m["samples"],
                extra={"us_per_series": m["ours"] * 1000 / s},
            )
        )
    return results


if __name__ == "__main__" and "--make-pid-files" in sys.argv:
    i = sys.argv.index("--make-pid-files")
    _make_pid_files(sys.argv[i + 1], int(sys.argv[i + 2]), int(sys.argv[i + 3]))
