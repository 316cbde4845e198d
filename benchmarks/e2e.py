"""Row 5: end to end. Error responses per second and p50/p99 through gunicorn.

Three servers run side by side, each gunicorn with 2 ``uvicorn_worker.UvicornWorker``
workers serving :mod:`benchmarks.e2e_app`: metrics off, metrics on the memory store, metrics on
the Redis store. The load comes from a separate process on loopback (a small asyncio HTTP/1.1
keep-alive client: C connections, each sending the next request when the answer is in, for a
fixed time). Rounds alternate between the servers (off, memory, redis, then the reverse) so
drift hits all three alike; figures are medians over rounds.

Afterwards the Redis server's ``/metrics`` must show exactly the number of error responses the
load generator received from it: the fleet count is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from ._common import Context, Result, child_env, free_port, median, read_response, stop_process

MODES = ("off", "memory", "redis")
TOKEN = "bench-token-0123456789"


# ---------------------------------------------------------------- load generator (child)
#: What the load asks for: ``errors`` (row 5: ``/e/{i}``, five declared errors) or ``ok``
#: (row 12: ``/items/{i}``, a 200 from a route of the app's own).
TARGETS = {"errors": "/e/{}", "ok": "/items/{}"}
_ERROR_STATUSES = (403, 404, 409, 429, 502)


async def _connection(
    port: int,
    deadline: float,
    warm_until: float,
    lat: list[float],
    tally: dict[str, int],
    k: int,
    target: str = "errors",
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    path = TARGETS[target]
    i = k
    try:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            request = f"GET {path.format(i % 5)} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
            i += 1
            writer.write(request)
            status, _body = await read_response(reader)
            done = time.perf_counter()
            tally["sent"] += 1
            if target == "errors" and status in _ERROR_STATUSES:
                tally["errors"] += 1
            elif target == "ok" and status == 200:
                tally["ok"] += 1
            else:
                tally["unexpected"] += 1
            if now >= warm_until:
                lat.append(done - now)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _load(
    port: int, seconds: float, warmup: float, conns: int, target: str = "errors"
) -> dict[str, Any]:
    start = time.perf_counter()
    warm_until = start + warmup
    deadline = warm_until + seconds
    lat: list[float] = []
    tally = {"sent": 0, "errors": 0, "ok": 0, "unexpected": 0}
    await asyncio.gather(
        *(_connection(port, deadline, warm_until, lat, tally, k, target) for k in range(conns))
    )
    measured = len(lat)
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(measured - 1, int(p * measured))] * 1000 if measured else float("nan")

    return {
        **tally,
        "measured": measured,
        "rps": measured / seconds,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def load(
    port: int, seconds: float, warmup: float = 0.3, conns: int = 8, target: str = "errors"
) -> dict[str, Any]:
    """Run the load generator in a separate process; its figures."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.e2e",
            "--load",
            str(port),
            str(seconds),
            str(warmup),
            str(conns),
            target,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=seconds + warmup + 60,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


# ---------------------------------------------------------------- servers
class Server:
    """One gunicorn with 2 UvicornWorker workers serving the bench app in one mode."""

    def __init__(self, mode: str, redis_url: str, namespace: str, workers: int = 2) -> None:
        self.mode = mode
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "benchmarks.e2e_app:app",
                "--workers",
                str(workers),
                "--worker-class",
                "uvicorn_worker.UvicornWorker",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--graceful-timeout",
                "10",
            ],
            env=child_env(
                FECB_MODE=mode,
                FECB_REDIS_URL=redis_url,
                FECB_NAMESPACE=namespace,
                FECB_TOKEN=TOKEN,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"gunicorn ({self.mode}) exited: {err[-2000:]}")
            with contextlib.suppress(OSError):
                status, _ = self.get("/ok", timeout=1)
                if status == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn ({self.mode}) not ready after {timeout}s")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stderr:
            self.proc.stderr.close()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                kids += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return kids


def worker_cpu_s(server: Server) -> float:
    """CPU seconds (user + system) the server's worker processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _children(server.proc.pid):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def fleet_total(server: Server) -> float:
    """fastapi_errors_total from the server's /metrics."""
    status, text = server.get("/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}: {text[:300]}")
    for line in text.splitlines():
        if line.startswith("fastapi_errors_total "):
            return float(line.split()[1])
    raise AssertionError("no fastapi_errors_total in /metrics")


#: The route of row 12's requests, as request counting files them.
OK_ROUTE = "/items/{item_id}"


def fleet_requests(server: Server, route: str = OK_ROUTE) -> float:
    """The fleet's GET 2xx responses of *route*, from the server's /metrics."""
    status, text = server.get("/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}: {text[:300]}")
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("fastapi_requests_total{")
            and f'route="{route}"' in line
            and 'method="GET"' in line
            and 'status_class="2xx"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


class _Rounds:
    """The interleaved rounds of rows 5 and 12: figures per mode, medians and paired ratios."""

    def __init__(self, runs: dict[str, list[dict[str, Any]]], checked: int) -> None:
        self.runs = runs
        #: what the Redis server's /metrics was checked to count exactly
        self.checked = checked

    def med(self, mode: str, key: str) -> float:
        """Median over rounds of *key* for *mode*."""
        return median([f[key] for f in self.runs[mode]])

    def paired(self, mode: str, key: str) -> float:
        """Median over rounds of mode/off, each pair measured back to back."""
        return median(
            [a[key] / b[key] for a, b in zip(self.runs[mode], self.runs["off"], strict=True)]
        )

    def samples(self, key: str) -> dict[str, list[float]]:
        """*key* of every round, per mode."""
        return {m: [f[key] for f in self.runs[m]] for m in MODES}


def _measure(
    ctx: Context,
    ns: str,
    *,
    target: str,
    counted: str,
    fleet_count: Callable[[Server], float],
) -> _Rounds:
    """Three servers (metrics off, memory, Redis) loaded with *target* in interleaved rounds.

    Afterwards the Redis server's ``fleet_count`` must equal the answers of kind *counted*
    (``"errors"`` or ``"ok"``) the load generator received from it, warm-up included.
    """
    seconds = ctx.pick(2.5, 1.5, 0.3)
    rounds = ctx.pick(max(9, ctx.repeats), 4, 1)
    servers = {mode: Server(mode, ctx.redis_url, ns) for mode in MODES}
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    ctx.log(f"  3 servers x 2 workers, {rounds} rounds of {seconds}s each")
    try:
        for server in servers.values():
            server.wait_ready()
        warm = 0
        if ctx.scale != "tiny":
            for mode, server in servers.items():  # warm every worker once
                figures = load(server.port, min(seconds, 1.0), warmup=0.0, target=target)
                if mode == "redis":
                    warm = figures[counted]
        for r in range(rounds):
            order = MODES if r % 2 == 0 else MODES[::-1]
            for mode in order:
                cpu_before = worker_cpu_s(servers[mode])
                figures = load(
                    servers[mode].port, seconds, warmup=ctx.pick(0.3, 0.3, 0.05), target=target
                )
                cpu = worker_cpu_s(servers[mode]) - cpu_before
                figures["cpu_us_per_response"] = cpu / max(1, figures["sent"]) * 1e6
                if figures["unexpected"]:
                    raise AssertionError(f"{mode}: {figures['unexpected']} unexpected answers")
                runs[mode].append(figures)
        # Exactness on the Redis server: every answer of the counted kind is in the fleet.
        sent_redis = warm + sum(f[counted] for f in runs["redis"])
        total = 0.0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.3)
            total = fleet_count(servers["redis"])
            if total >= sent_redis:
                break
        if int(total) != sent_redis:
            raise AssertionError(f"Redis fleet count {total}, {sent_redis} {counted} answered")
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.stop()
    return _Rounds(runs, sent_redis)


def run(ctx: Context) -> list[Result]:
    """Row 5: req/s and p50/p99 for metrics off, memory store, Redis store."""
    ctx.log("row 5: end to end, error responses")
    r = _measure(
        ctx, ctx.namespace("e2e"), target="errors", counted="errors", fleet_count=fleet_total
    )
    med, paired = r.med, r.paired
    raw, sent_redis = r.runs, r.checked
    results = []
    for mode in ("redis", "memory"):
        store = "Redis" if mode == "redis" else "memory"
        rps_ratio = paired(mode, "rps")
        p99_ratio = paired(mode, "p99_ms")
        results += [
            Result(
                row=5,
                what=f"end to end: {store} store, error responses/s (2 workers)",
                unit="req/s",
                us=med(mode, "rps"),
                peer=med("off", "rps"),
                peer_name="metrics off",
                ratio=rps_ratio,
                aim=">= 0.95",
                met=rps_ratio >= 0.95,
                note="ratio = median of per-round paired ratios",
                samples=r.samples("rps"),
                extra={"runs": raw, "fleet_total_checked": sent_redis} if mode == "redis" else {},
            ),
            Result(
                row=5,
                what=f"end to end: {store} store, p99 latency",
                unit="ms",
                us=med(mode, "p99_ms"),
                peer=med("off", "p99_ms"),
                peer_name="metrics off",
                ratio=p99_ratio,
                aim="<= 1.10",
                met=p99_ratio <= 1.10,
                samples=r.samples("p99_ms"),
                extra={"p50_ms": med(mode, "p50_ms"), "p50_ms_off": med("off", "p50_ms")},
            ),
            Result(
                row=5,
                what=f"end to end: {store} store, server CPU per error response",
                unit="us",
                us=med(mode, "cpu_us_per_response"),
                peer=med("off", "cpu_us_per_response"),
                peer_name="metrics off",
                ratio=paired(mode, "cpu_us_per_response"),
                aim="<= 1.05",
                met=paired(mode, "cpu_us_per_response") <= 1.05,
                samples=r.samples("cpu_us_per_response"),
            ),
        ]
    return results


def run_ok(ctx: Context) -> list[Result]:
    """Row 12: 2xx responses/s and server CPU per response, request counting on vs metrics off.

    The same three servers as row 5 (metrics off, memory store, Redis store; request counting
    is on whenever metrics are), loaded with ``GET /items/{i}``: a route of the app's own,
    added after the setup. Afterwards the Redis server's ``/metrics`` must count exactly the
    2xx the load generator received from it under that route.
    """
    ctx.log("row 12: end to end, 2xx responses")
    r = _measure(
        ctx, ctx.namespace("e2e-ok"), target="ok", counted="ok", fleet_count=fleet_requests
    )
    med, paired = r.med, r.paired
    runs, sent_redis = r.runs, r.checked

    results = []
    for mode in ("redis", "memory"):
        store = "Redis" if mode == "redis" else "memory"
        rps_ratio = paired(mode, "rps")
        cpu_ratio = paired(mode, "cpu_us_per_response")
        results += [
            Result(
                row=12,
                what=f"end to end 2xx, request counting on ({store} store), responses/s",
                unit="req/s",
                us=med(mode, "rps"),
                peer=med("off", "rps"),
                peer_name="metrics off",
                ratio=rps_ratio,
                aim=">= 0.97",
                met=rps_ratio >= 0.97,
                note="ratio = median of per-round paired ratios",
                samples=r.samples("rps"),
                extra={"runs": runs, "fleet_requests_checked": sent_redis}
                if mode == "redis"
                else {},
            ),
            Result(
                row=12,
                what=f"end to end 2xx, request counting on ({store} store), server CPU per "
                "response",
                unit="us",
                us=med(mode, "cpu_us_per_response"),
                peer=med("off", "cpu_us_per_response"),
                peer_name="metrics off",
                ratio=cpu_ratio,
                aim="<= 1.03",
                met=cpu_ratio <= 1.03,
                samples=r.samples("cpu_us_per_response"),
                extra={"p99_ms": med(mode, "p99_ms"), "p99_ms_off": med("off", "p99_ms")},
            ),
        ]
    return results


if __name__ == "__main__" and "--load" in sys.argv:
    i = sys.argv.index("--load")
    port, secs, warm, conns, what = sys.argv[i + 1 : i + 6]
    result = asyncio.run(_load(int(port), float(secs), float(warm), int(conns), what))
    print(json.dumps(result), flush=True)
