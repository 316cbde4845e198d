"""Row 7: a scrape storm on a slow Redis. The app's own endpoint p99, storm versus no storm.

One uvicorn process serves :func:`create_app`: ``setup_metrics`` on the run's Redis, reached
through a proxy (in this process) that holds every Redis reply back ``delay`` seconds (2 s in
the full run: longer than the default ``redis_timeout_ms``), and a plain ``def`` endpoint of
the app's own, ``/own``, which FastAPI runs in its threadpool. A load generator in a separate
process asks ``/own`` from a few paced connections and, in the storm runs, keeps 50 more
connections busy with ``GET /metrics`` (each asks again when it has its answer, at most once a
second: on the slow Redis every one of them always waits for a scrape). Rounds
alternate (no storm, storm, then the reverse) so drift hits both alike; figures are medians.

The figure is the ratio of ``/own``'s p99 during the storm to its p99 without one (aim <= 2):
the storm's reads must not occupy the app's threadpool. Every ``/own`` answer must be a 200 and
every scrape a 200 or the library's 503: the answers are checked, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from ._common import Context, Result, child_env, free_port, median, read_response, stop_process
from .relay import DelayingProxy

STORM = 50
OWN_CONNECTIONS = 4
OWN_PAUSE_S = 0.01  # each /own connection asks every ~10 ms: latency, not throughput
#: A scraper asks again when its answer is in, at most once per this many seconds: on a slow
#: Redis every scraper always has a scrape in flight (the storm), on a fast one it is 50/s.
SCRAPE_INTERVAL_S = 1.0
TOKEN = "bench-token-0123456789"


# ---------------------------------------------------------------- the app (in uvicorn)
def create_app() -> Any:
    """The bench app: metrics on ``FECB_REDIS_URL`` and one ``def`` endpoint of its own."""
    from fastapi import FastAPI

    from fastapi_error_codes.metrics import MetricsConfig, setup_metrics

    app = FastAPI()
    config = MetricsConfig(
        redis_url=os.environ["FECB_REDIS_URL"],
        namespace=os.environ["FECB_NAMESPACE"],
        auth_token=TOKEN,
        flush_interval_ms=1000,
    )
    setup_metrics(app, config)

    @app.get("/own")
    def own() -> dict[str, bool]:
        """The app's own endpoint: a plain ``def``, run in FastAPI's threadpool."""
        return {"ok": True}

    return app


# ---------------------------------------------------------------- load generator (child)
async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, bytes]:
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Accept: text/plain\r\n\r\n".encode()
    )
    return await read_response(reader)


async def _own(port: int, stop: float, lat: list[float], tally: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            status, _ = await _get(reader, writer, "/own")
            lat.append(time.perf_counter() - t0)
            tally["own" if status == 200 else "own_unexpected"] += 1
            await asyncio.sleep(OWN_PAUSE_S)
    finally:
        writer.close()


async def _scraper(port: int, stop: float, lat: list[float], tally: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            status, body = await _get(reader, writer, "/metrics")
            lat.append(time.perf_counter() - t0)
            if status == 200 and b"fastapi_errors_total" in body:
                tally["scrape_200"] += 1
            elif status == 503 and json.loads(body).get("status_code") == 503:
                tally["scrape_503"] += 1
            else:
                tally["scrape_unexpected"] += 1
            await asyncio.sleep(max(0.0, t0 + SCRAPE_INTERVAL_S - time.perf_counter()))
    finally:
        writer.close()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


async def _load(port: int, seconds: float, storm: int) -> dict[str, Any]:
    keys = ("own", "own_unexpected", "scrape_200", "scrape_503", "scrape_unexpected")
    tally = dict.fromkeys(keys, 0)
    own: list[float] = []
    scrapes: list[float] = []
    stop = time.perf_counter() + seconds
    scrapers = [asyncio.ensure_future(_scraper(port, stop, scrapes, tally)) for _ in range(storm)]
    if storm:
        await asyncio.sleep(0.2)  # every scraper has asked: the storm is on
    await asyncio.gather(*(_own(port, stop, own, tally) for _ in range(OWN_CONNECTIONS)))
    await asyncio.gather(*scrapers)
    return {
        **tally,
        "own_p50_ms": _pct(own, 0.50),
        "own_p99_ms": _pct(own, 0.99),
        "own_max_ms": _pct(own, 1.0),
        "scrape_p50_ms": _pct(scrapes, 0.50),
        "scrape_p99_ms": _pct(scrapes, 0.99),
    }


def load(port: int, seconds: float, storm: int) -> dict[str, Any]:
    """Run the load generator in a separate process; its figures."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.storm", "--load", str(port), str(seconds), str(storm)],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=seconds + 60,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


# ---------------------------------------------------------------- the server
class Server:
    """uvicorn (one process) serving :func:`create_app` on a free port."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.storm:create_app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=child_env(FECB_REDIS_URL=redis_url, FECB_NAMESPACE=namespace),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the warnings of a failing Redis, and the 503s
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                url = f"http://127.0.0.1:{self.port}/own"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            time.sleep(0.1)
        raise TimeoutError(f"uvicorn not ready after {timeout}s")

    def stop(self) -> None:
        stop_process(self.proc)


def _check(mode: str, figures: dict[str, Any], storm: int) -> None:
    if figures["own_unexpected"] or not figures["own"]:
        raise AssertionError(f"{mode}: /own answered {figures}")
    if figures["scrape_unexpected"]:
        raise AssertionError(f"{mode}: {figures['scrape_unexpected']} scrapes neither 200 nor 503")
    if storm and not figures["scrape_200"] + figures["scrape_503"]:
        raise AssertionError(f"{mode}: the storm got no answer at all")


def run(ctx: Context) -> list[Result]:
    """Row 7: /own p99 during a 50-client /metrics storm on Redis +delay per reply, vs none."""
    delay = ctx.pick(2.0, 2.0, 0.05)  # tiny: reads get through (slowly): 200s and 503s
    seconds = ctx.pick(8.0, 5.0, 1.5)
    rounds = ctx.pick(max(5, ctx.repeats), 3, 1)
    ctx.log(f"row 7: scrape storm ({STORM} clients) on Redis +{delay}s, {rounds} x {seconds}s")
    target = urlsplit(ctx.redis_url)
    proxy = DelayingProxy(target.port or 6379, delay, target.hostname or "127.0.0.1")
    path = target.path if target.path not in ("", "/") else "/0"
    server = Server(f"redis://127.0.0.1:{proxy.port}{path}", ctx.namespace("storm"))
    runs: dict[str, list[dict[str, Any]]] = {"calm": [], "storm": []}
    try:
        server.wait_ready()
        for r in range(rounds):
            order = ("calm", "storm") if r % 2 == 0 else ("storm", "calm")
            for mode in order:
                storm = STORM if mode == "storm" else 0
                figures = load(server.port, seconds, storm)
                _check(mode, figures, storm)
                runs[mode].append(figures)
    finally:
        server.stop()
        proxy.close()

    def med(mode: str, key: str) -> float:
        return median([f[key] for f in runs[mode]])

    pairs = zip(runs["storm"], runs["calm"], strict=True)
    p99_ratio = median([s["own_p99_ms"] / max(c["own_p99_ms"], 1e-6) for s, c in pairs])
    scrapes = {k: sum(f[k] for f in runs["storm"]) for k in ("scrape_200", "scrape_503")}
    return [
        Result(
            row=7,
            what=f"scrape storm: the app's own def endpoint p99, {STORM} clients on /metrics, "
            f"Redis +{delay:g} s per reply",
            unit="ms",
            us=med("storm", "own_p99_ms"),
            peer=med("calm", "own_p99_ms"),
            peer_name="no storm",
            ratio=p99_ratio,
            aim="<= 2",
            met=p99_ratio <= 2,
            note="ratio = median of per-round paired ratios",
            samples={mode: [f["own_p99_ms"] for f in runs[mode]] for mode in runs},
            extra={
                "runs": runs,
                "scrapes": scrapes,
                "scrape_p99_ms": med("storm", "scrape_p99_ms"),
                "own_max_ms_storm": med("storm", "own_max_ms"),
            },
        )
    ]


if __name__ == "__main__" and "--load" in sys.argv:
    i = sys.argv.index("--load")
    port, secs, storm = sys.argv[i + 1 : i + 4]
    print(json.dumps(asyncio.run(_load(int(port), float(secs), int(storm)))), flush=True)
