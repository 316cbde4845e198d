"""Row 4: flush. Records per second one worker pushes into Redis, and round trips per flush.

One collector (flusher parked, flushes driven by the benchmark) on a ``RedisStore`` whose
redis-py connections count every packed command they send: one send is one round trip (a
pipeline is one send). Each sample records N errors over S series, then times ``flush()``:
swap, mask and JSON-encode the newest events, one EVALSHA that applies counts, names and
events. Records/s = N / flush time. The peer is what a per-record Redis client does: one
round trip per error (prometheus-redis-client sends a SADD+INCRBY pipeline per ``inc()``;
here a bare HINCRBY, the cheapest such call).
"""

from __future__ import annotations

import time
from typing import Any

from ._common import Context, Result, gc_paused, interleaved, median, ratio
from .hot_path import _ours_loop
from .workload import stream


def counting_client(url: str) -> tuple[Any, dict[str, int]]:
    """A redis-py client whose connections count sends (round trips) and commands."""
    import redis

    counter = {"sends": 0, "commands": 0, "evalsha": 0}

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counter["sends"] += 1
            super().send_packed_command(command, check_health)

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            counter["commands"] += 1
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            if name.upper() == "EVALSHA":
                counter["evalsha"] += 1
            super().send_command(*args, **kwargs)

        def pack_commands(self, commands: Any) -> Any:
            counter["commands"] += len(commands)
            return super().pack_commands(commands)

    pool = redis.ConnectionPool.from_url(
        url, connection_class=CountingConnection, socket_timeout=5, socket_connect_timeout=5
    )
    return redis.Redis(connection_pool=pool), counter


def _collector(ctx: Context, label: str, n_series: int, **overrides: Any) -> tuple[Any, Any]:
    from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, RedisStore

    config = MetricsConfig(
        redis_url=ctx.redis_url,
        namespace=ctx.namespace(label),
        flush_interval_ms=3_600_000,
        max_series=max(1000, n_series),
        **overrides,
    )
    client, counter = counting_client(ctx.redis_url)
    return ErrorMetricsCollector(config, store=RedisStore(config, client=client)), counter


def run(ctx: Context) -> list[Result]:
    """Row 4: records/s through flush() for 20 and 1000 series; round trips per flush."""
    n = ctx.pick(10_000, 10_000, 300)
    repeats = ctx.pick(ctx.repeats, max(3, ctx.repeats // 2), 1)
    n_peer = ctx.pick(3_000, 1_000, 50)
    ctx.log(f"row 4: flush, {n} records per flush, {repeats} rounds")
    cases = ctx.pick((20, 1000), (20, 1000), (5, 30))
    setups = {}
    for s in cases:
        setups[f"s{s}"] = (*_collector(ctx, f"flush{s}", s), stream(n, s), s)
        # (nearly) counts only: events capped at 100 per batch (the smallest cap a config
        # allows), to show what the events cost
        setups[f"s{s}-noev"] = (*_collector(ctx, f"flush{s}e", s, max_events=100), stream(n, s), s)

    sends_per_flush: dict[str, list[int]] = {k: [] for k in setups}
    evalsha_per_flush: dict[str, list[int]] = {k: [] for k in setups}

    def make(label: str) -> Any:
        collector, counter, inputs, _s = setups[label]

        def sample() -> float:
            _ours_loop(collector.record, inputs)
            before = dict(counter)
            with gc_paused():
                start = time.perf_counter()
                ok = collector.flush(timeout=10)
                elapsed = time.perf_counter() - start
            if not ok:
                raise AssertionError(f"flush failed: {collector.stats.last_error}")
            sends_per_flush[label].append(counter["sends"] - before["sends"])
            evalsha_per_flush[label].append(counter["evalsha"] - before["evalsha"])
            return n / elapsed

        return sample

    peer_client = ctx.redis()
    peer_key = "{" + ctx.namespace("flushpeer") + "}:totals"
    peer_inputs = stream(n_peer, 20)

    def peer() -> float:
        hincrby = peer_client.hincrby
        with gc_paused():
            start = time.perf_counter()
            for code, _name, status in peer_inputs:
                hincrby(peer_key, f"{code}:{status}", 1)
            return n_peer / (time.perf_counter() - start)

    variants = {label: make(label) for label in setups}
    variants["peer"] = peer
    samples = interleaved(variants, repeats)
    peer_rate = median(samples["peer"])
    peer_total = sum(int(v) for v in peer_client.hvals(peer_key))
    peer_client.close()
    if peer_total != (repeats + 1) * n_peer:
        raise AssertionError(f"peer counted {peer_total} of {(repeats + 1) * n_peer}")

    results = []
    for s in cases:
        label = f"s{s}"
        collector, _counter, _inputs, _ = setups[label]
        noev = setups[f"{label}-noev"][0]
        for c in (collector, noev):
            total = c.store.read().total
            if total != (repeats + 1) * n:
                raise AssertionError(f"Redis holds {total} of {(repeats + 1) * n} records")
        # The first flush also loads the script (NOSCRIPT, SCRIPT LOAD): steady state after.
        steady = sends_per_flush[label][1:] or sends_per_flush[label]
        rate = median(samples[label])
        results.append(
            Result(
                row=4,
                what=f"flush, {s} series, {n} records/flush (events on)",
                unit="records/s",
                us=rate,
                peer=peer_rate,
                peer_name="one HINCRBY round trip per record",
                ratio=ratio(rate, peer_rate),
                aim=">= 1 (faster)",
                met=rate >= peer_rate,
                samples={"ours": samples[label], "peer": samples["peer"]},
                extra={
                    "flush_ms": n / rate * 1000,
                    "records_per_s_counts_only": median(samples[f"{label}-noev"]),
                    "flush_ms_counts_only": n / median(samples[f"{label}-noev"]) * 1000,
                    "sends_per_flush": sends_per_flush[label],
                    "evalsha_per_flush": evalsha_per_flush[label],
                },
            )
        )
        results.append(
            Result(
                row=4,
                what=f"flush, {s} series: Redis round trips per flush",
                unit="round trips",
                us=median([float(x) for x in steady]),
                peer=float(n),
                peer_name=f"one per record ({n} records)",
                ratio=ratio(median([float(x) for x in steady]), float(n)),
                aim="1 per flush",
                met=max(steady) == 1 and max(evalsha_per_flush[label][1:] or [1]) == 1,
                extra={"sends_per_flush": sends_per_flush[label]},
            )
        )
        for c in (collector, noev):
            c.close(timeout=5)
            c.store.close()
    return results
