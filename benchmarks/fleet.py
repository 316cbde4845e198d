"""Row "fleet": what a fleet of workers costs its metrics Redis, and where it saturates.

Every simulated worker is a process of its own (``python -m benchmarks.fleet --worker``) with
its own ``RedisStore`` and worker id. It replays a realistic batch per flush, paced at a flush
interval, against a redis-server the benchmark starts on a loopback port, so the server's
``INFO`` figures are this run's alone. Three mixes per flush:

* quiet: 5 error series, 5 events
* busy: 50 error series, 100 events
* incident: 500 error series, 1,000 events

Events are the library's own JSON (``WireEncoder.event`` of realistic raw events, or the same
bytes built here when the release has no encoder); counts are in the current bucket.

What is measured, per mix and per ``hash-max-listpack-entries`` (128 and 512):

* Redis CPU per flush: ``INFO commandstats`` (script usec / calls: the time inside the
  script) and ``INFO cpu`` (main thread user + sys, networking included; the idle server's
  own rate, measured with the fleet connected just before, is taken off) over the flushes of
  a run. One worker flushes back to back, keeping Redis busy and its caches warm as under a
  large fleet (more simulators on this 2-core machine would count Redis's waits as its work).
* the worker's own CPU inside ``apply()`` per flush (arguments, compression, the socket).
* the previous release (``git archive f5f6970``, imported through ``PYTHONPATH``) beside the
  working tree, in the same run, on the same server: ratio = new / old.
* workers per Redis core: 0.8 s / main-thread CPU per flush, at a 1 s flush interval.
* the knee: flushes/s raised step by step (intervals from 0.25 s down to 3 ms); the knee is the
  first step whose apply p99 is at least twice the lowest step's, confirmed by the next one.
  The simulators share the machine's cores with Redis (2 here): say so with the figures.
* a replica's cost: the busy run with and without a replica attached (primary's CPU), in
  alternating rounds.
* a 3-primary Redis Cluster with ``redis_shards`` 6 and 1: script usec per primary.
* a saturation run: short timeouts (10 ms), many workers, the incident mix and short stalls of
  the server: timeouts happen and batches are retried unchanged (same seq).

Every run checks exactness: each worker keeps what was acknowledged (``apply`` returned True,
or False: already applied) and the store's total and per-code counts must equal the sum, or the
row fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._common import Result, child_env, ratio

ROOT = Path(__file__).resolve().parent.parent
#: The previous release, measured beside the working tree.
OLD_RELEASE = "f5f6970"
#: The row's name in the table (a named row: ``--rows fleet``).
ROW: Any = "fleet"

#: mix -> (error series per flush, events per flush)
MIXES: dict[str, tuple[int, int]] = {
    "quiet": (5, 5),
    "busy": (50, 100),
    "incident": (500, 1000),
}
LISTPACK = (128, 512)
#: One Redis core at 80 %: the budget a fleet may take of it.
CORE_BUDGET_S = 0.8
#: The aim of the rewrite of the batch script: new / old Redis CPU per flush.
AIM_RATIO = 0.6

_STATUSES = (404, 400, 409, 422, 401, 403, 429, 500, 503, 502)
_WORDS = ("ITEM", "ORDER", "USER", "PAYMENT", "QUOTA", "TOKEN", "INVOICE", "CART", "SHIPMENT")
_STATES = ("NOT_FOUND", "INVALID", "CONFLICT", "EXPIRED", "LOCKED", "UNAVAILABLE", "DENIED")


def series(n: int) -> list[tuple[int, str, int]]:
    """*n* error series (code, name, status); every worker of a fleet has the same ones."""
    out = []
    for i in range(n):
        code = 1000 + i
        name = f"{_WORDS[i % len(_WORDS)]}_{_STATES[i % len(_STATES)]}_{code}"
        out.append((code, name, _STATUSES[i % len(_STATUSES)]))
    return out


def raw_event(number: int, ts: float, code: int, name: str, status: int) -> tuple[Any, ...]:
    """A raw event as the buffer keeps it (``RawEvent``): one plausible API error."""
    rng = random.Random(number * 7919 + code)
    item = rng.randrange(1, 10**6)
    return (
        number,
        ts,
        code,
        name,
        status,
        f"{name.replace('_', ' ').capitalize()}: resource {item} could not be served",
        {"item_id": item, "reason": name.lower(), "retry_after": rng.choice((None, 1, 30))},
        "/api/v1/items/{item_id}",
        rng.choice(("GET", "POST", "PUT", "DELETE")),
        uuid.UUID(int=rng.getrandbits(128)).hex,
        f"{rng.getrandbits(128):032x}",
    )


def encode_event(raw: Sequence[Any], id_prefix: str, worker_id: str) -> str:
    """The JSON ``WireEncoder.event`` makes of *raw* (no PII in it, short texts): the same bytes.

    Used when the release under test has no encoder of its own (the previous release).
    """
    number, ts, code, name, status, message, detail, path, method, rid, tid = raw
    data = {
        "id": f"{id_prefix}{number}",
        "t": round(ts, 3),
        "c": code,
        "n": str(name),
        "s": status,
        "m": str(message),
        "d": detail,
        "p": path,
        "mt": method,
        "w": worker_id,
        "rid": rid,
        "tid": tid,
    }
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------------- worker
class SimWorker:
    """One simulated worker: its store, worker id, seq, and what Redis acknowledged."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from fastapi_error_codes.metrics import MetricsConfig
        from fastapi_error_codes.metrics.models import Batch
        from fastapi_error_codes.metrics.stores.redis import RedisStore

        self.spec = spec
        self.config = MetricsConfig(**spec["config"])
        self.store = RedisStore(self.config)
        self._fallback: Any = None
        self.batch_fields = {f.name for f in dataclasses.fields(Batch)}
        self.worker_id = spec.get("worker_id") or f"sim-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.index = int(spec.get("index", 0))
        self.workers = max(1, int(spec.get("workers", 1)))
        n_series, n_events = MIXES[spec["mix"]]
        self.series = series(n_series)
        per_series = max(1, math.ceil(n_events / n_series))
        self.deltas = [per_series + (i + self.index) % 2 for i in range(n_series)]
        self.names = {code: name for code, name, _ in self.series}
        self.events = self._events(n_events)
        self.Batch = Batch
        self.unavailable, self.rejected_type = _store_errors()
        self.seq = 0
        self.acked_total = 0
        self.acked_by_code: dict[int, int] = {}
        self.counters = {
            "flushes": 0,
            "applied": 0,
            "duplicates": 0,  # a retry whose first attempt had been applied: refused by its seq
            "first_false": 0,  # a first attempt answered "already applied" (a bug)
            "failures": 0,
            "timeouts": 0,
            "retries": 0,
            "rejected": 0,
            "rejected_errors": 0,
            "fallback_attempts": 0,
        }
        #: this process's CPU (user + sys) inside apply(), summed over the flushes, in us
        self.apply_cpu_us = 0.0

    def _events(self, n: int) -> list[str]:
        """The worker's events (encoded once, sent with every flush)."""
        prefix = f"{uuid.uuid4().hex[:8]}-"
        now = time.time()
        raws = []
        for i in range(n):
            code, name, status = self.series[i % len(self.series)]
            raws.append(raw_event(i, now - (n - i) / 1000, code, name, status))
        try:
            from fastapi_error_codes.metrics.wire import WireEncoder
        except ImportError:  # the previous release: the same JSON, built here
            return [encode_event(r, prefix, self.worker_id) for r in raws]
        encoder = WireEncoder(self.config)
        return [encoder.event(r, prefix, self.worker_id) for r in raws]

    def warm(self) -> None:
        """Connect and load the script before the measured part (no NOSCRIPT inside it).

        Best effort: with a 10 ms timeout on a loaded machine it may keep failing, and the
        flushes' own retries then do the rest.
        """
        client: Any = self.store.client
        script = getattr(self.store, "_script", None)
        for attempt in range(50):
            try:
                if script is not None and not _is_cluster(client):
                    client.script_load(script.script)
                else:
                    client.ping()
                check = getattr(self.store, "_check_eviction", None)
                if callable(check):
                    check()
                return
            except self.unavailable:
                time.sleep(0.01 * (attempt + 1))

    def batch(self) -> Any:
        """The next batch: the mix's counts in the current bucket, names, the events."""
        width = self.config.bucket_width_s
        now = int(time.time())
        bucket = now - now % width
        self.seq += 1
        return self.Batch(
            worker_id=self.worker_id,
            seq=self.seq,
            counts={
                (bucket, code, status): delta
                for (code, _name, status), delta in zip(self.series, self.deltas, strict=True)
            },
            names=self.names,
            events=self.events,
            created_ms=int(time.time() * 1000),
        )

    def _fallback_store(self) -> Any:
        """A store with a long timeout, for a batch that keeps timing out (same batch, seq)."""
        if self._fallback is None:
            from fastapi_error_codes.metrics import MetricsConfig
            from fastapi_error_codes.metrics.stores.redis import RedisStore

            config = dataclasses.replace(self.config, redis_timeout_ms=5000)
            assert isinstance(config, MetricsConfig)
            self._fallback = RedisStore(config)
        return self._fallback

    def flush(self) -> float:
        """Apply one batch until acknowledged, retrying it unchanged; its latency in ms."""
        batch = self.batch()
        counted = sum(batch.counts.values())
        first = time.monotonic()
        unsure = False
        failures = 0
        while True:
            attempt = batch
            if failures and "unsure" in self.batch_fields:  # as metrics/flusher.py does
                attempt = dataclasses.replace(
                    batch, unsure=unsure, age_ms=int((time.monotonic() - first) * 1000)
                )
            store = self.store
            if failures >= 40:
                store = self._fallback_store()
                self.counters["fallback_attempts"] += 1
            cpu = time.process_time()
            try:
                applied = store.apply(attempt)
            except self.unavailable as exc:
                self.apply_cpu_us += (time.process_time() - cpu) * 1e6
                failures += 1
                self.counters["failures"] += 1
                self.counters["retries"] += 1
                if _is_timeout(exc):
                    self.counters["timeouts"] += 1
                unsure = unsure or bool(getattr(exc, "maybe_applied", True))
                time.sleep(min(0.2, 0.002 * 2 ** min(failures, 7)) * random.uniform(0.5, 1.0))
                continue
            except Exception as exc:
                if self.rejected_type is not None and isinstance(exc, self.rejected_type):
                    self.counters["rejected"] += 1
                    self.counters["rejected_errors"] += counted
                    return (time.monotonic() - first) * 1000
                raise
            self.apply_cpu_us += (time.process_time() - cpu) * 1e6
            break
        elapsed = (time.monotonic() - first) * 1000
        self.counters["flushes"] += 1
        if applied:
            self.counters["applied"] += 1
        elif failures:
            self.counters["duplicates"] += 1
        else:
            self.counters["first_false"] += 1
        self.acked_total += counted
        for (_bucket, code, _status), delta in batch.counts.items():
            self.acked_by_code[code] = self.acked_by_code.get(code, 0) + delta
        return elapsed

    def run(self, interval: float, flushes: int, start_at: float) -> dict[str, Any]:
        """*flushes* flushes every *interval* s from *start_at* (wall clock), phase-shifted."""
        t0 = time.monotonic() + (start_at - time.time())
        t0 += interval * self.index / self.workers
        latencies = []
        for k in range(flushes):
            delay = t0 + k * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            latencies.append(self.flush())
        return {"latencies_ms": latencies, **self.report()}

    def report(self) -> dict[str, Any]:
        """What this worker had acknowledged so far, and its counters."""
        return {
            "worker_id": self.worker_id,
            "acked_total": self.acked_total,
            "acked_by_code": {str(k): v for k, v in self.acked_by_code.items()},
            "counters": dict(self.counters),
            "apply_cpu_us": self.apply_cpu_us,
        }

    def read(self) -> dict[str, Any]:
        """The store's view: total and per code."""
        view = self.store.read()
        return {"total": view.total, "by_code": {str(k): v for k, v in view.by_code().items()}}

    def clear(self) -> None:
        """Delete this namespace's keys (the store's own way)."""
        self.store.clear()

    def close(self) -> None:
        """Close the clients."""
        for store in (self.store, self._fallback):
            if store is not None:
                with contextlib.suppress(Exception):
                    store.close()


def _is_cluster(client: Any) -> bool:
    return type(client).__name__ == "RedisCluster"


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if "Timeout" in type(seen).__name__ or "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _store_errors() -> tuple[tuple[type[BaseException], ...], type[BaseException] | None]:
    """The errors a store raises when Redis is away (retry), and its "never" error (drop)."""
    from redis.exceptions import RedisError

    unavailable: tuple[type[BaseException], ...] = (RedisError, OSError)
    rejected: type[BaseException] | None = None
    try:
        from fastapi_error_codes.metrics.stores.base import BatchRejected, StoreUnavailable
    except ImportError:  # the previous release raises redis-py's errors
        pass
    else:
        unavailable = (StoreUnavailable, *unavailable)
        rejected = BatchRejected
    return unavailable, rejected


def worker_main() -> None:
    """Child process: read the spec (one JSON line), then serve commands, one JSON line each."""
    spec = json.loads(sys.stdin.readline())
    worker = SimWorker(spec)
    worker.warm()
    out = sys.stdout
    out.write(json.dumps({"ready": True, "worker_id": worker.worker_id}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        reply: dict[str, Any]
        if op == "run":
            reply = worker.run(command["interval"], command["flushes"], command["start_at"])
        elif op == "read":
            reply = worker.read()
        elif op == "clear":
            worker.clear()
            reply = {}
        elif op == "quit":
            break
        else:
            reply = {"error": f"unknown op {op!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    worker.close()


# ---------------------------------------------------------------------------------- parent
@dataclasses.dataclass
class Release:
    """A version of the library: ``src`` is the folder put first on the workers' PYTHONPATH."""

    name: str
    src: Path | None
    note: str = ""

    @property
    def available(self) -> bool:
        return self.src is not None


def new_release() -> Release:
    """The working tree."""
    return Release("new", ROOT / "src")


@contextlib.contextmanager
def old_release(commit: str = OLD_RELEASE) -> Iterator[Release]:
    """The previous release's ``src`` extracted from git into a temporary folder (or n/a)."""
    folder = tempfile.mkdtemp(prefix="fecb-old-")
    try:
        git = shutil.which("git")
        if git is None:
            yield Release("old", None, "git is not installed")
            return
        archive = subprocess.run(
            [git, "-C", str(ROOT), "archive", commit, "src"], capture_output=True, timeout=60
        )
        if archive.returncode != 0:
            why = archive.stderr.decode(errors="replace").strip().splitlines()
            yield Release("old", None, f"commit {commit} unavailable: {why[-1] if why else '?'}")
            return
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True, timeout=60)
        yield Release("old", Path(folder) / "src", f"git {commit}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class FleetError(AssertionError):
    """A fleet's totals were not exact, or a worker failed."""


@dataclasses.dataclass
class Phase:
    """What one run of the fleet gave: latencies, wall time, the workers' reports."""

    interval: float
    flushes: int
    wall_s: float
    latencies_ms: list[float]
    reports: list[dict[str, Any]]

    @property
    def total_flushes(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        """Flushes per second the fleet achieved."""
        return self.total_flushes / self.wall_s if self.wall_s else 0.0

    def counter(self, name: str) -> int:
        return sum(int(r["counters"][name]) for r in self.reports)

    def worker_cpu_us(self, before: list[dict[str, Any]] | None) -> float:
        """The workers' own CPU inside apply() per flush of this phase."""
        spent = sum(float(r.get("apply_cpu_us", 0.0)) for r in self.reports)
        if before:
            spent -= sum(float(r.get("apply_cpu_us", 0.0)) for r in before)
        return spent / max(1, self.total_flushes)


def percentile(values: Sequence[float], q: float) -> float:
    """The *q*-th percentile (nearest rank) of *values*."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return float(ordered[rank])


class Fleet:
    """*n* simulated worker processes of *release* on one namespace.

    ``config`` holds MetricsConfig keywords (``redis_url`` and ``namespace`` included).
    """

    def __init__(
        self, release: Release, n: int, mix: str, config: dict[str, Any], *, python: str = ""
    ) -> None:
        if release.src is None:
            raise ValueError(f"release {release.name} is not available: {release.note}")
        self.release = release
        self.mix = mix
        self.config = config
        self.procs: list[subprocess.Popen[str]] = []
        self.reports: list[dict[str, Any]] = []
        env = child_env()  # the repo root importable; the release's src goes before it
        env["PYTHONPATH"] = os.pathsep.join((str(release.src), env["PYTHONPATH"]))
        env.pop("COVERAGE_PROCESS_START", None)
        try:
            for i in range(n):
                proc = subprocess.Popen(
                    [python or sys.executable, "-m", "benchmarks.fleet", "--worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                    cwd=str(ROOT),
                    text=True,
                )
                self.procs.append(proc)
                spec = {"config": config, "mix": mix, "index": i, "workers": n}
                self._send(proc, spec)
            self.worker_ids = [self._receive(p)["worker_id"] for p in self.procs]
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _send(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
        stdin: IO[str] | None = proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()

    @staticmethod
    def _receive(proc: subprocess.Popen[str]) -> dict[str, Any]:
        stdout: IO[str] | None = proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            proc.wait(10)
            raise FleetError(f"a simulated worker exited ({proc.returncode}) without replying")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise FleetError(reply["error"])
        return reply

    def run(self, interval: float, flushes: int, lead_s: float = 0.3) -> Phase:
        """Every worker flushes *flushes* times, one every *interval* s; waits for them all."""
        start_at = time.time() + lead_s
        for proc in self.procs:
            self._send(
                proc, {"op": "run", "interval": interval, "flushes": flushes, "start_at": start_at}
            )
        replies = [self._receive(p) for p in self.procs]
        wall = time.time() - start_at
        self.reports = replies
        latencies = [x for r in replies for x in r["latencies_ms"]]
        return Phase(interval, flushes, wall, latencies, replies)

    def acknowledged(self) -> tuple[int, dict[int, int]]:
        """The sum of what the workers had acknowledged: total and per code."""
        total = 0
        by_code: dict[int, int] = {}
        for r in self.reports:
            total += int(r["acked_total"])
            for code, n in r["acked_by_code"].items():
                by_code[int(code)] = by_code.get(int(code), 0) + int(n)
        return total, by_code

    def read(self) -> tuple[int, dict[int, int]]:
        """The store's total and per-code counts, read by the first worker's store."""
        self._send(self.procs[0], {"op": "read"})
        reply = self._receive(self.procs[0])
        return int(reply["total"]), {int(k): int(v) for k, v in reply["by_code"].items()}

    def check_exact(self, label: str) -> int:
        """Raise unless the store holds exactly what was acknowledged; returns the total."""
        acked, acked_by_code = self.acknowledged()
        total, by_code = self.read()
        if total != acked or by_code != acked_by_code:
            raise FleetError(
                f"{label}: the store holds {total} errors, the workers had {acked} acknowledged "
                f"(per code equal: {by_code == acked_by_code})"
            )
        return total

    def clear(self) -> None:
        """Delete the namespace's keys through the release's own ``store.clear()``."""
        if self.procs and self.procs[0].poll() is None:
            self._send(self.procs[0], {"op": "clear"})
            self._receive(self.procs[0])

    def close(self) -> None:
        """Stop every worker process (each by its own handle)."""
        for proc in self.procs:
            if proc.poll() is None and proc.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                    proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------- Redis figures
def redis_client(port: int) -> Any:
    """A plain client of one server (or one Cluster node)."""
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=30, socket_connect_timeout=5)


def server_stats(client: Any) -> dict[str, float]:
    """Script calls and usec (``INFO commandstats``) and main-thread CPU s (``INFO cpu``)."""
    commands = client.info("commandstats")
    cpu = client.info("cpu")
    calls = usec = 0.0
    for name in ("evalsha", "eval", "fcall", "evalsha_ro", "eval_ro"):
        stat = commands.get(f"cmdstat_{name}") or {}
        calls += float(stat.get("calls", 0))
        usec += float(stat.get("usec", 0))
    main = cpu.get("used_cpu_sys_main_thread")
    if main is None:  # before Redis 6.2: the whole process
        main_s = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
    else:
        main_s = float(main) + float(cpu["used_cpu_user_main_thread"])
    return {"script_calls": calls, "script_usec": usec, "main_s": main_s, "t": time.monotonic()}


def idle_rate(client: Any, seconds: float = 1.0) -> float:
    """Main-thread CPU s per s of the idle server (its cron), to take off a run's figure."""
    before = server_stats(client)
    time.sleep(seconds)
    after = server_stats(client)
    return max(0.0, (after["main_s"] - before["main_s"]) / (after["t"] - before["t"]))


@dataclasses.dataclass
class Cost:
    """Redis CPU per flush of one run."""

    flushes: int
    script_calls: int
    script_us: float  # usec inside the script per call
    main_us: float  # main-thread CPU per flush (idle rate taken off)
    main_raw_us: float
    wall_s: float
    #: the worker process's own CPU inside apply() per flush (arguments, encoding, socket)
    worker_cpu_us: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cost(before: dict[str, float], after: dict[str, float], flushes: int, idle: float) -> Cost:
    """Per-flush figures between two :func:`server_stats` samples."""
    wall = after["t"] - before["t"]
    calls = int(after["script_calls"] - before["script_calls"])
    usec = after["script_usec"] - before["script_usec"]
    main = after["main_s"] - before["main_s"]
    n = max(1, flushes)
    return Cost(
        flushes=flushes,
        script_calls=calls,
        script_us=usec / max(1, calls),
        main_us=max(0.0, main - idle * wall) / n * 1e6,
        main_raw_us=main / n * 1e6,
        wall_s=wall,
    )


def measured_run(
    fleet: Fleet, client: Any, interval: float, flushes: int, idle: float
) -> tuple[Phase, Cost]:
    """One paced run of *fleet* with the server's figures around it."""
    reports = list(fleet.reports)
    before = server_stats(client)
    phase = fleet.run(interval, flushes)
    after = server_stats(client)
    c = cost(before, after, phase.total_flushes, idle)
    c.worker_cpu_us = phase.worker_cpu_us(reports)
    return phase, c


class Servers:
    """The redis-server processes this row starts (own loopback ports); stops them all."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def start(self, *args: str) -> Any:
        from tests._servers import RedisServer

        server = RedisServer(*args).start()
        self._stack.callback(server.close)
        return server

    def cluster(self, nodes: int = 3) -> list[Any]:
        from tests._servers import redis_cluster

        return list(self._stack.enter_context(redis_cluster(nodes)))

    def close(self) -> None:
        self._stack.close()


def _config(url: str, ns: str, **extra: Any) -> dict[str, Any]:
    return {
        "redis_url": url,
        "namespace": ns,
        "max_series": 1000,
        "max_events": 10000,
        **extra,
    }


def knee_figure(k: dict[str, Any] | None) -> float | None:
    """A knee's flushes/s, or the highest rate measured when no knee was reached."""
    if k is None:
        return None
    value = k["knee_flushes_per_s"] or k["not_reached_below"]
    return float(value) if value is not None else None


def namespace(ctx: Any, label: str) -> str:
    """A fresh namespace of this run on the row's own servers (they are removed afterwards;
    each fleet also deletes its keys with ``store.clear()``)."""
    return f"fecb-{ctx.run_id}-{label}-{uuid.uuid4().hex[:6]}"


def shards_supported() -> bool:
    """True when the working tree's MetricsConfig has ``redis_shards``."""
    from fastapi_error_codes.metrics import MetricsConfig

    return "redis_shards" in {f.name for f in dataclasses.fields(MetricsConfig)}


# ------------------------------------------------------------------------------ the parts
def capacity(
    ctx: Any,
    releases: list[Release],
    servers: dict[int, Any],
    mixes: Sequence[str],
    workers: int,
    flushes: int,
    interval: float,
) -> dict[str, Any]:
    """Redis CPU per flush per (mix, listpack, release); every run checked exact.

    The idle server's own main-thread CPU (its cron, ~1 ms/s) is measured with the fleet
    connected, just before each run, and taken off the run's figure.
    """
    out: dict[str, Any] = {}
    for lp, server in servers.items():
        client = redis_client(server.port)
        try:
            for m, mix in enumerate(mixes):
                # alternate the order of the releases: drift hits both alike
                order = releases if (m + lp) % 2 == 0 else releases[::-1]
                for release in order:
                    key = f"{mix}/{lp}/{release.name}"
                    ns = namespace(ctx, f"fleet-{mix}-{lp}-{release.name}")
                    with Fleet(release, workers, mix, _config(server.url, ns)) as fleet:
                        idle = idle_rate(client, ctx.pick(2.0, 1.0, 0.3))
                        phase, c = measured_run(fleet, client, interval, flushes, idle)
                        total = fleet.check_exact(key)
                        fleet.clear()
                    out[key] = {
                        **c.as_dict(),
                        "p99_ms": percentile(phase.latencies_ms, 99),
                        "p50_ms": percentile(phase.latencies_ms, 50),
                        "errors_counted": total,
                        "exact": True,
                        "idle_main_cpu_s_per_s": idle,
                    }
                    ctx.log(
                        f"fleet: {key}: script {c.script_us:.0f} us/flush, main thread "
                        f"{c.main_us:.0f} us/flush, worker {c.worker_cpu_us:.0f} us/flush, "
                        f"{c.flushes} flushes, exact ({total} errors)"
                    )
        finally:
            client.close()
    return out


def knee(
    ctx: Any, release: Release, server: Any, mix: str, workers: int, intervals: Sequence[float]
) -> dict[str, Any]:
    """Raise the flushes/s step by step until apply p99 reaches twice the lowest step's.

    A step at twice the lowest step's p99 is the knee when the next step is too (one noisy
    step of a shared machine is not a knee). Each worker's first flush is a warm-up.
    """
    step_s = ctx.pick(5.0, 3.0, 1.0)
    # the lowest step is the reference: enough samples that its p99 is not one outlier
    least = ctx.pick(25, 12, 2)
    steps: list[dict[str, Any]] = []
    candidate: dict[str, Any] | None = None
    found: dict[str, Any] | None = None
    ns = namespace(ctx, f"knee-{mix}-{release.name}")
    client = redis_client(server.port)
    try:
        with Fleet(release, workers, mix, _config(server.url, ns)) as fleet:
            fleet.run(0.05, 1)  # warm-up
            for interval in intervals:
                flushes = max(least, int(step_s / interval))
                reports = list(fleet.reports)
                before = server_stats(client)
                phase = fleet.run(interval, flushes)
                after = server_stats(client)
                busy = (after["main_s"] - before["main_s"]) / max(1e-9, after["t"] - before["t"])
                step = {
                    "interval_s": interval,
                    "target_flushes_per_s": workers / interval,
                    "achieved_flushes_per_s": phase.rate,
                    "samples": phase.total_flushes,
                    "p50_ms": percentile(phase.latencies_ms, 50),
                    "p99_ms": percentile(phase.latencies_ms, 99),
                    "redis_main_thread_busy": busy,
                    "worker_cpu_us_per_flush": phase.worker_cpu_us(reports),
                    "simulators_cpu_busy": phase.worker_cpu_us(reports)
                    * phase.total_flushes
                    / 1e6
                    / max(1e-9, phase.wall_s),
                }
                steps.append(step)
                ctx.log(
                    f"fleet: knee {mix}/{release.name}: {step['achieved_flushes_per_s']:.0f} "
                    f"flushes/s, p99 {step['p99_ms']:.2f} ms, Redis main thread {busy:.0%}, "
                    f"workers in apply {step['simulators_cpu_busy']:.0%} of a core"
                )
                over = len(steps) > 1 and step["p99_ms"] >= 2 * steps[0]["p99_ms"]
                if over and candidate is not None:
                    found = candidate
                    break
                candidate = step if over else None
            found = found or candidate
            fleet.check_exact(f"knee {mix}/{release.name}")
            fleet.clear()
    finally:
        client.close()
    return {
        "mix": mix,
        "release": release.name,
        "workers": workers,
        "steps": steps,
        "knee_flushes_per_s": found["achieved_flushes_per_s"] if found else None,
        "knee_target_flushes_per_s": found["target_flushes_per_s"] if found else None,
        "not_reached_below": None if found else steps[-1]["achieved_flushes_per_s"],
    }


def replica_cost(
    ctx: Any, servers: Servers, release: Release, workers: int, flushes: int, interval: float
) -> dict[str, Any]:
    """The busy run with and without a replica attached: the primary's CPU per flush.

    Rounds alternate (without, with, with, without, ...): the replica is attached with
    ``REPLICAOF`` (a partial resync after the first full one) and detached with ``REPLICAOF NO
    ONE``; each figure is the median of its rounds.
    """
    rounds = ctx.pick(3, 2, 1)
    primary = servers.start()
    replica = servers.start()
    client = redis_client(primary.port)
    follower = redis_client(replica.port)

    def attached() -> bool:
        linked = follower.info("replication").get("master_link_status") == "up"
        return linked and client.info("replication").get("connected_slaves", 0) >= 1

    def wait(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            if time.monotonic() > deadline:
                raise FleetError(f"the replica did not {what} in 30 s")
            time.sleep(0.1)

    samples: dict[str, list[Cost]] = {"without": [], "with": []}
    try:
        ns = namespace(ctx, f"replica-{release.name}")
        with Fleet(release, workers, "busy", _config(primary.url, ns)) as fleet:
            for i in range(rounds):
                for mode in ("without", "with") if i % 2 == 0 else ("with", "without"):
                    if mode == "with":
                        follower.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))
                        wait(attached, "attach")
                    else:
                        follower.execute_command("REPLICAOF", "NO", "ONE")
                        wait(lambda: not attached(), "detach")
                    time.sleep(0.3)
                    idle = idle_rate(client, ctx.pick(2.0, 1.0, 0.3))
                    _, c = measured_run(fleet, client, interval, flushes, idle)
                    samples[mode].append(c)
            fleet.check_exact("replica")
            fleet.clear()
    finally:
        client.close()
        follower.close()
    without = sorted(c.main_us for c in samples["without"])[(rounds - 1) // 2]
    with_ = sorted(c.main_us for c in samples["with"])[(rounds - 1) // 2]
    pct = (with_ - without) / without * 100 if without else None
    ctx.log(f"fleet: replica: main thread {without:.0f} -> {with_:.0f} us/flush, exact")
    return {
        "rounds": rounds,
        "without": {"main_us": without, "runs": [c.as_dict() for c in samples["without"]]},
        "with": {"main_us": with_, "runs": [c.as_dict() for c in samples["with"]]},
        "main_thread_increase_pct": pct,
    }


@contextlib.contextmanager
def stalls(port: int, every_s: float, stall_s: float) -> Iterator[dict[str, int]]:
    """Stall the server (``DEBUG SLEEP``) every *every_s* while the block runs."""
    done = threading.Event()
    seen = {"stalls": 0}

    def loop() -> None:
        client = redis_client(port)
        try:
            while not done.wait(every_s):
                try:
                    client.execute_command("DEBUG", "SLEEP", f"{stall_s:.3f}")
                except Exception:  # DEBUG disabled: the load alone must do it
                    return
                seen["stalls"] += 1
        finally:
            client.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(10)


def saturation(
    ctx: Any, servers: Servers, release: Release, workers: int, flushes: int, interval: float
) -> dict[str, Any]:
    """Short timeouts, many workers, the incident mix, stalls: retries, and exact totals."""
    server = servers.start("--enable-debug-command", "local")
    ns = namespace(ctx, f"saturation-{release.name}")
    config = _config(server.url, ns, redis_timeout_ms=10)
    with Fleet(release, workers, "incident", config) as fleet:
        with stalls(server.port, every_s=ctx.pick(0.5, 0.4, 0.25), stall_s=0.04) as seen:
            phase = fleet.run(interval, flushes)
        total = fleet.check_exact(f"saturation {release.name}")
        fleet.clear()
    out = {
        "release": release.name,
        "workers": workers,
        "flushes": phase.total_flushes,
        "errors_counted": total,
        "stalls": seen["stalls"],
        "p99_ms": percentile(phase.latencies_ms, 99),
        "exact": True,
        **{name: phase.counter(name) for name in phase.reports[0]["counters"]},
    }
    if out["first_false"]:
        raise FleetError(f"saturation: {out['first_false']} first attempts were 'applied before'")
    ctx.log(
        f"fleet: saturation {release.name}: {out['timeouts']} timeouts, {out['retries']} "
        f"retries, {out['duplicates']} duplicates refused, exact ({total} errors)"
    )
    return out


def cluster_run(
    ctx: Any,
    nodes: list[Any],
    release: Release,
    shards: int,
    workers: int,
    flushes: int,
    interval: float,
    mix: str = "busy",
    ns: str | None = None,
) -> dict[str, Any]:
    """The fleet on a Cluster with ``redis_shards`` = *shards*: script usec per primary."""
    url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
    ns = ns or namespace(ctx, f"cluster-{shards}-{release.name}")
    clients = [redis_client(n.port) for n in nodes]
    try:
        before = [server_stats(c) for c in clients]
        with Fleet(release, workers, mix, _config(url, ns, redis_shards=shards)) as fleet:
            phase = fleet.run(interval, flushes)
            after = [server_stats(c) for c in clients]
            total = fleet.check_exact(f"cluster shards={shards}")
            fleet.clear()
    finally:
        for c in clients:
            c.close()
    per_node = [
        {
            "port": n.port,
            "script_calls": int(a["script_calls"] - b["script_calls"]),
            "script_usec": a["script_usec"] - b["script_usec"],
        }
        for n, b, a in zip(nodes, before, after, strict=True)
    ]
    busy = [p for p in per_node if p["script_calls"] > 0]
    usec = [p["script_usec"] for p in per_node]
    return {
        "shards": shards,
        "workers": workers,
        "flushes": phase.total_flushes,
        "errors_counted": total,
        "exact": True,
        "per_primary": per_node,
        "primaries_with_work": len(busy),
        "max_over_min_usec": (max(usec) / min(usec)) if min(usec) > 0 else None,
        "busiest_primary_usec_per_s": max(usec) / phase.wall_s if phase.wall_s else None,
    }


# -------------------------------------------------------------------------------- the row
def run(ctx: Any) -> list[Result]:
    """The fleet row: the fleet's Redis cost per flush, old vs new, knee, replica, cluster."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("the fleet row starts its own redis-server: it is not installed")
    mixes = ctx.pick(tuple(MIXES), tuple(MIXES), ("busy",))
    listpacks = ctx.pick(LISTPACK, LISTPACK, (128,))
    workers = ctx.pick(8, 4, 2)
    # Redis CPU per flush is measured as under a large fleet: Redis kept busy (its caches warm)
    # by one worker flushing back to back. More simulators would share Redis's core on this
    # 2-core machine and count its waits (and its wake-ups) as its work; a paced fleet leaves
    # Redis idle between flushes, each flush then paying for cold caches.
    cap_workers = 1
    flushes = ctx.pick(300, 100, 5)
    interval = 0.0
    results: list[Result] = []
    summary: dict[str, Any] = {
        "mixes": {m: {"series": s, "events": e} for m, (s, e) in MIXES.items()},
        "capacity_workers": cap_workers,
        "workers": workers,
        "flushes_per_worker": flushes,
        "interval_s": interval,
        "cores": os.cpu_count(),
        "note": "simulators and Redis share this machine's cores",
    }
    servers = Servers()
    try:
        with old_release() as old:
            new = new_release()
            releases = [new] + ([old] if old.available else [])
            summary["old_release"] = old.note
            ctx.log(f"fleet: releases {[r.name for r in releases]} (old: {old.note})")
            by_lp = {lp: servers.start("--hash-max-listpack-entries", str(lp)) for lp in listpacks}
            cap = capacity(ctx, releases, by_lp, mixes, cap_workers, flushes, interval)
            summary["capacity"] = cap
            for mix in mixes:
                for lp in listpacks:
                    n = cap[f"{mix}/{lp}/new"]
                    o = cap.get(f"{mix}/{lp}/old")
                    for figure, what in (
                        ("main_us", "Redis main-thread CPU per flush"),
                        ("script_us", "Redis time inside the script per flush"),
                    ):
                        # the aim is on the whole cost (main thread) of busy and incident
                        aim = f"<= {AIM_RATIO}" if mix != "quiet" and figure == "main_us" else ""
                        r = ratio(n[figure], o[figure] if o else None)
                        results.append(
                            Result(
                                row=ROW,
                                what=f"fleet {mix}, listpack {lp}: {what}",
                                unit="us",
                                us=n[figure],
                                peer=o[figure] if o else None,
                                peer_name=f"previous release {OLD_RELEASE}",
                                ratio=r,
                                aim=aim,
                                met=(r <= AIM_RATIO) if (aim and r is not None) else None,
                                note="" if o else f"old n/a: {old.note}",
                                extra={"new": n, "old": o},
                            )
                        )
            lp0 = listpacks[0]
            per_core: dict[str, Any] = {}
            for mix in mixes:
                n = cap[f"{mix}/{lp0}/new"]
                o = cap.get(f"{mix}/{lp0}/old")
                wn = CORE_BUDGET_S / (n["main_us"] / 1e6) if n["main_us"] else None
                wo = CORE_BUDGET_S / (o["main_us"] / 1e6) if o and o["main_us"] else None
                per_core[mix] = {"new": wn, "old": wo}
                results.append(
                    Result(
                        row=ROW,
                        what=f"fleet {mix}: workers per Redis core (1 s flush, core at 80 %)",
                        unit="workers",
                        us=wn,
                        peer=wo,
                        peer_name=f"previous release {OLD_RELEASE}",
                        ratio=ratio(wn, wo),
                        aim="higher is better",
                        extra={
                            "listpack": lp0,
                            "by_listpack": {
                                lp: {
                                    r.name: CORE_BUDGET_S
                                    / (cap[f"{mix}/{lp}/{r.name}"]["main_us"] / 1e6)
                                    if cap.get(f"{mix}/{lp}/{r.name}", {}).get("main_us")
                                    else None
                                    for r in releases
                                }
                                for lp in listpacks
                            },
                        },
                    )
                )
            summary["workers_per_core"] = per_core
            for mix in mixes:
                n = cap[f"{mix}/{lp0}/new"]
                o = cap.get(f"{mix}/{lp0}/old")
                results.append(
                    Result(
                        row=ROW,
                        what=f"fleet {mix}: the worker's own CPU inside apply() per flush",
                        unit="us",
                        us=n["worker_cpu_us"],
                        peer=o["worker_cpu_us"] if o else None,
                        peer_name=f"previous release {OLD_RELEASE}",
                        ratio=ratio(n["worker_cpu_us"], o["worker_cpu_us"] if o else None),
                        aim="- (context: off the request path)",
                        extra={"listpack": lp0},
                    )
                )

            if ctx.scale != "tiny":
                knee_mixes = ctx.pick(("busy", "incident"), ("busy",), ())
                intervals = ctx.pick(
                    (0.25, 0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003),
                    (0.25, 0.05, 0.02, 0.01, 0.005),
                    (),
                )
                kw = ctx.pick(8, 6, 2)
                knees: dict[str, Any] = {}
                for mix in knee_mixes:
                    for release in releases:
                        knees[f"{mix}/{release.name}"] = knee(
                            ctx, release, by_lp[lp0], mix, kw, intervals
                        )
                    kn = knees[f"{mix}/new"]
                    ko = knees.get(f"{mix}/old")

                    note = "" if kn["knee_flushes_per_s"] else "no knee reached: highest rate"
                    results.append(
                        Result(
                            row=ROW,
                            what=f"fleet {mix}: knee (apply p99 = 2x the lowest step's), "
                            f"{kw} workers, 2 shared cores",
                            unit="flushes/s",
                            us=knee_figure(kn),
                            peer=knee_figure(ko),
                            peer_name=f"previous release {OLD_RELEASE}",
                            ratio=ratio(knee_figure(kn), knee_figure(ko)),
                            aim="higher is better",
                            note=note,
                            extra={"new": kn, "old": ko},
                        )
                    )
                summary["knee"] = knees

                rep = replica_cost(ctx, servers, new, workers, flushes, interval)
                summary["replica"] = rep
                results.append(
                    Result(
                        row=ROW,
                        what="fleet busy: primary's main-thread CPU per flush, one replica "
                        "attached vs none",
                        unit="us",
                        us=rep["with"]["main_us"],
                        peer=rep["without"]["main_us"],
                        peer_name="no replica",
                        ratio=ratio(rep["with"]["main_us"], rep["without"]["main_us"]),
                        note=f"+{rep['main_thread_increase_pct']:.0f} %"
                        if rep["main_thread_increase_pct"] is not None
                        else "",
                        extra=rep,
                    )
                )

            sat_workers = ctx.pick(16, 8, 3)
            sat_flushes = ctx.pick(40, 20, 20)
            sat_interval = ctx.pick(0.05, 0.05, 0.05)
            sat: dict[str, Any] = {}
            for release in releases if ctx.scale != "tiny" else [new]:
                sat[release.name] = saturation(
                    ctx, servers, release, sat_workers, sat_flushes, sat_interval
                )
            summary["saturation"] = sat
            s = sat["new"]
            results.append(
                Result(
                    row=ROW,
                    what=f"fleet saturation: incident mix, {sat_workers} workers, "
                    "redis_timeout_ms=10, stalls: batches retried",
                    unit="retries",
                    us=float(s["retries"]),
                    aim="totals exact",
                    met=bool(s["exact"]),
                    note=f"{s['timeouts']} timeouts, {s['duplicates']} duplicates refused, "
                    f"{s['errors_counted']} errors counted exactly",
                    extra=sat,
                )
            )

            if ctx.scale != "tiny":
                summary["cluster"] = _cluster_part(ctx, servers, new, results)
    finally:
        servers.close()
    if results:
        results[0].extra["fleet"] = summary
    return results


def _cluster_part(
    ctx: Any, servers: Servers, new: Release, results: list[Result]
) -> dict[str, Any]:
    if not shards_supported():
        ctx.log("fleet: MetricsConfig has no redis_shards: the cluster part is skipped")
        results.append(
            Result(
                row=ROW,
                what="fleet busy on a 3-primary Cluster: primaries that ran scripts",
                unit="primaries",
                us=None,
                note="n/a: MetricsConfig has no redis_shards in this tree",
            )
        )
        return {"skipped": "MetricsConfig has no redis_shards"}
    nodes = servers.cluster(3)
    workers = ctx.pick(24, 12, 4)
    flushes = ctx.pick(8, 4, 2)
    interval = ctx.pick(1.0, 1.0, 0.2)
    out = {}
    for shards in (1, 6):
        out[str(shards)] = c = cluster_run(ctx, nodes, new, shards, workers, flushes, interval)
        ctx.log(
            f"fleet: cluster redis_shards={shards}: {c['primaries_with_work']} primaries ran "
            f"scripts, usec {[round(p['script_usec']) for p in c['per_primary']]}, exact"
        )
    one, six = out["1"], out["6"]
    results.append(
        Result(
            row=ROW,
            what=f"fleet busy on a 3-primary Cluster, {workers} workers: primaries that ran "
            "scripts, redis_shards=6 vs 1",
            unit="primaries",
            us=float(six["primaries_with_work"]),
            peer=float(one["primaries_with_work"]),
            peer_name="redis_shards=1",
            ratio=ratio(float(six["primaries_with_work"]), float(one["primaries_with_work"])),
            aim="all 3",
            met=six["primaries_with_work"] == 3,
            extra=out,
        )
    )
    results.append(
        Result(
            row=ROW,
            what="fleet busy on a 3-primary Cluster: busiest primary's script time, "
            "redis_shards=6 vs 1",
            unit="us/s",
            us=six["busiest_primary_usec_per_s"],
            peer=one["busiest_primary_usec_per_s"],
            peer_name="redis_shards=1",
            ratio=ratio(six["busiest_primary_usec_per_s"], one["busiest_primary_usec_per_s"]),
            aim="lower is better",
            note=f"max/min per primary {six['max_over_min_usec']:.2f}"
            if six["max_over_min_usec"]
            else "",
            extra=out,
        )
    )
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker_main()
    else:
        from benchmarks.__main__ import main

        sys.exit(main(["--rows", "fleet", *sys.argv[1:]]))
