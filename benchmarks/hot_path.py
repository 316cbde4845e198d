"""Row 1: the hot path. ``record()`` against the counters users would pick instead.

- ours: ``ErrorMetricsCollector.record(code, name, status, message, None, path, method)``;
- prometheus_client single process: ``Counter.labels(code, status).inc()``;
- prometheus_client multiprocess mode: the same call with ``PROMETHEUS_MULTIPROC_DIR`` set, in
  a child process (the variable must be set before the import), driven over a pipe so its
  samples interleave with ours;
- prometheus-redis-client ``Counter.labels(code, status).inc()`` (a Redis round trip per
  call), when it is installed.

Every variant loops over the same list of inputs; the cost of the bare loop is measured in the
same rounds and subtracted, so the figures are the cost of the call itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ._common import Context, Result, child_env, gc_paused, interleaved, median, ratio
from .workload import MESSAGE, METHOD, PATH, stream

N_SERIES = 20


def _bare_loop(inputs: list[tuple[int, str, int]]) -> float:
    start = time.perf_counter()
    for _code, _name, _status in inputs:
        pass
    return time.perf_counter() - start


def _prom_loop(counter: Any, inputs: list[tuple[int, str, int]]) -> float:
    labels = counter.labels
    start = time.perf_counter()
    for code, _name, status in inputs:
        labels(code, status).inc()
    return time.perf_counter() - start


def _ours_loop(record: Callable[..., str], inputs: list[tuple[int, str, int]]) -> float:
    message, path, method = MESSAGE, PATH, METHOD
    start = time.perf_counter()
    for code, name, status in inputs:
        record(code, name, status, message, None, path, method)
    return time.perf_counter() - start


def make_collector(**overrides: Any) -> Any:
    """A collector on a memory store; the flusher is parked unless *overrides* say otherwise."""
    from fastapi_error_codes.metrics import ErrorMetricsCollector, MemoryStore, MetricsConfig

    config = MetricsConfig(**{"flush_interval_ms": 3_600_000, **overrides})
    return ErrorMetricsCollector(config, store=MemoryStore(config))


def _single_process_counter() -> Any:
    from prometheus_client import CollectorRegistry, Counter

    return Counter(
        "fec_bench_errors",
        "errors",
        ["error_code", "status_code"],
        registry=CollectorRegistry(auto_describe=False),
    )


# ---------------------------------------------------------------- multiprocess-mode child
def _mp_child() -> None:
    """Child: prometheus_client in multiprocess mode; times loops on request (stdin lines)."""
    from prometheus_client import CollectorRegistry, Counter, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    counter = Counter("fec_bench_errors", "errors", ["error_code", "status_code"])
    inputs: list[tuple[int, str, int]] = []
    done = 0
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "size":
            inputs = stream(int(arg), N_SERIES)
            print("ok", flush=True)
        elif cmd == "run":
            with gc_paused():
                elapsed = _prom_loop(counter, inputs)
            done += len(inputs)
            print(repr(elapsed), flush=True)
        elif cmd == "bare":
            print(repr(_bare_loop(inputs)), flush=True)
        elif cmd == "check":
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            text = generate_latest(registry).decode()
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("fec_bench_errors_total{")
            )
            print(f"{int(total)} {done}", flush=True)
        else:
            break


class _MpPeer:
    """The multiprocess-mode child, one request/answer per line."""

    def __init__(self, size: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="fecb-mp-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.hot_path", "--mp-child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(PROMETHEUS_MULTIPROC_DIR=self.dir),
        )
        assert self._ask(None) == "ready"
        assert self._ask(f"size {size}") == "ok"

    def _ask(self, line: str | None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer:
            raise RuntimeError("the multiprocess-mode child died")
        return answer

    def run(self) -> float:
        return float(self._ask("run"))

    def bare(self) -> float:
        return float(self._ask("bare"))

    def check(self) -> tuple[int, int]:
        total, done = self._ask("check").split()
        return int(total), int(done)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, ValueError):
            self._ask("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _prc_counter(ctx: Context) -> tuple[Any, Any, str] | None:
    """prometheus-redis-client's Counter on the run's Redis, or None if it is not installed."""
    try:
        import prometheus_redis_client as prc
    except ImportError:
        return None
    client = ctx.redis()
    ns = ctx.namespace("prc")
    registry = prc.Registry(redis=client)
    # Its keys are "<name>_group" and "<name>:<labels>": a name under {ns}: keeps them in the
    # run's namespace, so the cleanup finds them.
    name = "{" + ns + "}:prc_errors"
    labels = ["error_code", "status_code"]
    counter = prc.Counter(name, "errors", labelnames=labels, registry=registry)
    return counter, client, name


def _timed_per_call(fn: Callable[[], float], n: int) -> Callable[[], float]:
    def sample() -> float:
        with gc_paused():
            return fn() / n * 1e6

    return sample


def run(ctx: Context) -> list[Result]:
    """Row 1: microseconds per call, ours against the peers, interleaved."""
    n = ctx.pick(200_000, 50_000, 500)
    n_prc = ctx.pick(3_000, 1_000, 50)
    repeats = ctx.pick(ctx.repeats, max(3, ctx.repeats // 2), 1)
    inputs = stream(n, N_SERIES)
    ctx.log(f"row 1: hot path, {n} calls x {repeats} rounds")

    collector = make_collector()
    counter = _single_process_counter()
    mp = _MpPeer(n)
    try:
        variants = {
            "bare": _timed_per_call(lambda: _bare_loop(inputs), n),
            "ours": _timed_per_call(lambda: _ours_loop(collector.record, inputs), n),
            "single": _timed_per_call(lambda: _prom_loop(counter, inputs), n),
            "mp": lambda: mp.run() / n * 1e6,
            "mp_bare": lambda: mp.bare() / n * 1e6,
        }
        samples = interleaved(variants, repeats)
        mp_total, mp_done = mp.check()
    finally:
        mp.close()

    # Correctness: every call was counted, by us and by the peers.
    recorded = (repeats + 1) * n
    counted = collector.buffered
    if counted != recorded:
        raise AssertionError(f"ours counted {counted} of {recorded} records")
    single_total = sum(
        s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total")
    )
    if int(single_total) != recorded:
        raise AssertionError(f"prometheus_client counted {single_total} of {recorded}")
    if mp_total != mp_done:
        raise AssertionError(f"multiprocess mode counted {mp_total} of {mp_done}")
    collector.close(timeout=5)

    bare = median(samples["bare"])
    ours = median(samples["ours"]) - bare
    single = median(samples["single"]) - bare
    mp_cost = median(samples["mp"]) - median(samples["mp_bare"])
    results = [
        Result(
            row=1,
            what="hot path: record() vs prometheus_client Counter.labels().inc()",
            unit="us/call",
            us=ours,
            peer=single,
            peer_name="prometheus_client single-process",
            ratio=ratio(ours, single),
            aim="<= 0.5",
            met=ours <= 0.5 * single,
            samples=samples,
            extra={"calls_per_round": n, "rounds": repeats, "series": N_SERIES},
        ),
        Result(
            row=1,
            what="hot path: record() vs prometheus_client multiprocess mode inc()",
            unit="us/call",
            us=ours,
            peer=mp_cost,
            peer_name="prometheus_client multiprocess (PROMETHEUS_MULTIPROC_DIR)",
            ratio=ratio(ours, mp_cost),
            aim="< 1 (faster)",
            met=ours < mp_cost,
        ),
    ]

    # Amortised: the same records plus the flush that ships them (mask, encode, apply).
    amortised = _amortised_with_flush(ctx, inputs, repeats)
    results.append(
        Result(
            row=1,
            what=f"record() + its share of flush() at {n:,} records per flush (memory store)",
            unit="us/call",
            us=amortised - bare,
            peer=single,
            peer_name="prometheus_client single-process",
            ratio=ratio(amortised - bare, single),
            aim="- (context)",
            met=None,
            note="flush masks and JSON-encodes up to max_events events per batch",
        )
    )

    prc = _prc_counter(ctx)
    if prc is None:
        results.append(
            Result(
                row=1,
                what="hot path: record() vs prometheus-redis-client Counter.inc()",
                unit="us/call",
                us=ours,
                peer=None,
                peer_name="prometheus-redis-client",
                aim="< 1 (faster)",
                note="prometheus-redis-client is not installed (pip install "
                "prometheus-redis-client --no-deps: it pins redis<5)",
            )
        )
        return results
    prc_counter, client, name = prc
    prc_inputs = inputs[:n_prc]
    prc_samples = interleaved(
        {
            "ours": _timed_per_call(lambda: _ours_loop(collector.record, prc_inputs), n_prc),
            "prc": _timed_per_call(lambda: _prom_loop(prc_counter, prc_inputs), n_prc),
        },
        repeats=ctx.pick(3, 2, 1),
    )
    # Its inc() swallows every error (it logs them): check the counts really landed.
    keys = list(client.smembers(f"{name}_group"))
    landed = sum(int(client.get(k) or 0) for k in keys)
    expected = (ctx.pick(3, 2, 1) + 1) * n_prc
    client.close()
    if landed != expected:
        raise AssertionError(f"prometheus-redis-client counted {landed} of {expected}")
    prc_cost = median(prc_samples["prc"]) - bare
    results.append(
        Result(
            row=1,
            what="hot path: record() vs prometheus-redis-client Counter.inc()",
            unit="us/call",
            us=ours,
            peer=prc_cost,
            peer_name="prometheus-redis-client (a Redis round trip per call)",
            ratio=ratio(ours, prc_cost),
            aim="< 1 (faster)",
            met=ours < prc_cost,
            samples=prc_samples,
        )
    )
    return results


def _amortised_with_flush(ctx: Context, inputs: list[tuple[int, str, int]], repeats: int) -> float:
    collector = make_collector()
    n = len(inputs)

    def one() -> float:
        with gc_paused():
            start = time.perf_counter()
            _ours_loop(collector.record, inputs)
            assert collector.flush(timeout=10)
            return (time.perf_counter() - start) / n * 1e6

    samples = interleaved({"ours+flush": one}, repeats)
    total = collector.store.read().total
    collector.close(timeout=5)
    if total != (repeats + 1) * n:
        raise AssertionError(f"the memory store holds {total} of {(repeats + 1) * n}")
    return median(samples["ours+flush"])


if __name__ == "__main__" and "--mp-child" in sys.argv:
    _mp_child()
