"""Row 8: a 5xx storm with Sentry on. Throughput once the capture budget is spent, vs Sentry off.

One app (:func:`build_app`), wired as users wire it — ``setup_exception_handler(app,
metrics_config=MetricsConfig(...))``, metrics on the memory store — in two modes: Sentry off,
and Sentry on (the real sentry-sdk, ``sentry_capture_budget`` at its default of 10 per code per
minute; here per hour, see ``INTERVAL_S``) with a transport that counts and discards what would
be sent. The handlers' logger is
on (ERROR, with the traceback, as in production) into a ``NullHandler``: the log line costs the
same in both modes, yet sentry-sdk's logging integration sees every record.

- **HTTP** (the row's figure): each mode is one uvicorn worker on loopback; a separate process
  drives a storm of one declared 5xx (C keep-alive connections, each sending the next request
  when the answer is in). The budget is spent in the warm-up; rounds alternate the modes and
  the ratio is the median of per-round paired ratios (on / off), aim >= 0.8.
- **In process**, in a child process per mode: event-loop time per request driven straight
  into the ASGI app — the 5xx storm with the budget spent, the same with no budget (every 5xx
  captured: the cost the budget removes), an unexpected-exception (500) storm, and a 200 for
  sentry-sdk's own per-request instrumentation, which no budget removes.

Each Sentry-on run also checks what it counted: events sent == the budget, every other 5xx
skipped, and not one event built (``exceptions_from_error_tuple``) once the budget was spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from ._common import Context, Result, child_env, free_port, median, read_response, stop_process

MODES = ("off", "on")
STORM_CODE = 5801
BUDGET = 10  # MetricsConfig's default
#: The run's budget interval: longer than a run, so "events sent == BUDGET" is an exact check
#: (the default 60 s would open a new window of 10 captures every minute: no cost to speak of).
INTERVAL_S = 3600
FAKE_DSN = "https://public@sentry.invalid/8"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- the app (server or in process)
def build_app(
    sentry: bool, budget: int = BUDGET, interval_s: int = INTERVAL_S, web: bool = True
) -> Any:
    """The storm app: ``/storm`` (declared 503), ``/boom`` (unexpected), ``/ok``, ``/stats``.

    ``web=False`` starts sentry-sdk without its Starlette/FastAPI integrations (our observer
    alone reports errors): ``setup_metrics`` cannot pass ``sentry_sdk.init`` options, so that
    variant builds its ``SentryIntegration`` itself and adds it as an observer, as setup_metrics
    would.
    """
    import sentry_sdk.utils
    from fastapi import FastAPI
    from sentry_sdk.transport import Transport

    from fastapi_error_codes import BaseAppException, setup_exception_handler
    from fastapi_error_codes.metrics import MetricsConfig, SentryIntegration
    from fastapi_error_codes.observers import add_error_observer

    class StormUnavailable(BaseAppException):
        """The storm's declared 5xx."""

    class DiscardTransport(Transport):
        """Counts the events sentry-sdk would send; sends nothing."""

        events = 0

        def capture_envelope(self, envelope: Any) -> None:
            DiscardTransport.events += sum(1 for item in envelope.items if item.type == "event")

    stats = {"observed_5xx": 0, "built": 0}
    if sentry:  # count the events sentry-sdk builds from an exception (the costly part)
        build = sentry_sdk.utils.exceptions_from_error_tuple

        def counting_build(*args: Any, **kwargs: Any) -> Any:
            stats["built"] += 1
            return build(*args, **kwargs)

        sentry_sdk.utils.exceptions_from_error_tuple = counting_build

    log = logging.getLogger("fastapi_error_codes")
    log.handlers[:] = [logging.NullHandler()]
    log.propagate = False

    options: dict[str, Any] = {
        "sentry_enabled": sentry,
        "sentry_dsn": FAKE_DSN if sentry else None,
        "sentry_capture_budget": budget,
        "sentry_budget_interval_s": interval_s,
        "prometheus_enabled": False,
        "dashboard_enabled": False,
    }
    own = None
    if sentry and not web:
        bare = {"integrations": [], "auto_enabling_integrations": False}
        own = SentryIntegration(MetricsConfig(**options), init_options=bare)
        options["sentry_enabled"], options["sentry_dsn"] = False, None

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if own is not None:
            own.initialize()
        if sentry:  # runs after setup_metrics' startup initialised sentry-sdk in this process
            client = sentry_sdk.get_client()
            old, client.transport = client.transport, DiscardTransport(client.options)
            if old is not None:
                old.kill()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/storm")
    async def storm() -> None:
        raise StormUnavailable(error_code=STORM_CODE, status_code=503, message="Upstream down")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"sentry": sentry}

    @app.get("/stats")
    async def stats_() -> dict[str, int]:
        integration = own or app.state.metrics_sentry
        return {
            **stats,
            "events": DiscardTransport.events,
            "skipped": integration.skipped,
            "failures": integration.failures,
        }

    setup_exception_handler(app, metrics_config=MetricsConfig(**options))
    if own is not None:
        add_error_observer(app, own.observe)

    def count(request: Any, error: Any) -> None:
        if error.status_code >= 500:
            stats["observed_5xx"] += 1

    add_error_observer(app, count)
    return app


def make_app() -> Any:
    """``uvicorn --factory`` entry point: the mode from ``FECB_SENTRY`` (``on`` / ``off``)."""
    return build_app(os.environ.get("FECB_SENTRY") == "on")


# ---------------------------------------------------------------- in process (child)
async def _request(app: Any, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "server": ("bench", 80),
        "client": ("127.0.0.1", 50000),
    }
    received = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # pragma: no cover - no app here reads twice
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    with contextlib.suppress(Exception):  # an unexpected exception is re-raised after its 500
        await app(scope, receive, send)
    return status


async def _inprocess(spec: dict[str, Any]) -> dict[str, Any]:
    """Event-loop seconds per request for each path of *spec*, after a warm-up."""
    app = build_app(spec["sentry"], spec["budget"], web=spec.get("web", True))
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        get_stats = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/stats")
        for path, n, batches, expect in spec["paths"]:
            for _ in range(max(spec["warm"], spec["budget"] + 1) if expect >= 500 else 20):
                await _request(app, path)
            before = await get_stats()
            samples = []
            for _ in range(batches):
                start = time.perf_counter()
                for _ in range(n):
                    status = await _request(app, path)
                samples.append((time.perf_counter() - start) / n)
                if status != expect:
                    raise AssertionError(f"{path} answered {status}, expected {expect}")
            after = await get_stats()
            out[path] = {
                "us": median(samples) * 1e6,
                "samples_us": [s * 1e6 for s in samples],
                "requests": n * batches,
                "built": after["built"] - before["built"],
                "events": after["events"] - before["events"],
                "skipped": after["skipped"] - before["skipped"],
                "failures": after["failures"],
            }
    return out


def inprocess(spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`_inprocess` in a fresh interpreter (sentry-sdk patches are process-wide)."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.sentry_storm", "--inprocess", json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=_ROOT,
        timeout=900,
    )
    if proc.returncode:
        raise RuntimeError(f"in-process run {spec} failed: {proc.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


# ---------------------------------------------------------------- HTTP: server and load (child)
class Server:
    """One uvicorn worker serving :func:`make_app` in one mode."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        # A file, never a pipe: a full pipe would stall the server. Closed by stop().
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.sentry_storm:make_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=child_env(FECB_SENTRY=mode),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=_ROOT,
        )

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stats(self) -> dict[str, int]:
        status, body = self.get("/stats")
        if status != 200:
            raise AssertionError(f"/stats answered {status}: {body[:300]}")
        figures: dict[str, int] = json.loads(body)
        return figures

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-2000:]

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn ({self.mode}) exited: {self.stderr()}")
            with contextlib.suppress(OSError):
                if self.get("/ok", timeout=1)[0] == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"uvicorn ({self.mode}) not ready after {timeout}s")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server has used so far."""
        with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


async def _connection(
    port: int, path: str, deadline: float, warm_until: float, tally: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    try:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            writer.write(request)
            status, _body = await read_response(reader)
            tally["sent"] += 1
            tally["statuses"][status] = tally["statuses"].get(status, 0) + 1
            if now >= warm_until:
                tally["lat"].append(time.perf_counter() - now)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _load(port: int, path: str, seconds: float, warmup: float, conns: int) -> dict[str, Any]:
    start = time.perf_counter()
    warm_until = start + warmup
    deadline = warm_until + seconds
    tally: dict[str, Any] = {"sent": 0, "statuses": {}, "lat": []}
    await asyncio.gather(
        *(_connection(port, path, deadline, warm_until, tally) for _ in range(conns))
    )
    lat = sorted(tally.pop("lat"))
    measured = len(lat)

    def pct(p: float) -> float:
        return lat[min(measured - 1, int(p * measured))] * 1000 if measured else float("nan")

    return {**tally, "measured": measured, "rps": measured / seconds, "p99_ms": pct(0.99)}


def load(port: int, path: str, seconds: float, warmup: float, conns: int = 8) -> dict[str, Any]:
    """Run the load generator in a separate process; its figures."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.sentry_storm",
            "--load",
            json.dumps([port, path, seconds, warmup, conns]),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=_ROOT,
        timeout=seconds + warmup + 60,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["statuses"] = {int(k): v for k, v in figures["statuses"].items()}
    return figures


# ---------------------------------------------------------------- the row
def _check_sentry(stats: dict[str, int], answered: int, built_at_most: int, where: str) -> None:
    """The budget held: BUDGET events, every other 5xx skipped, nothing built beyond them."""
    if stats["events"] != BUDGET or stats["skipped"] != answered - BUDGET:
        raise AssertionError(f"{where}: {stats} for {answered} 5xx answered (budget {BUDGET})")
    if stats["built"] > built_at_most or stats["failures"]:
        raise AssertionError(f"{where}: events built or failures beyond the budget: {stats}")


#: The HTTP variants: (name, mode, path, status every answer must have).
HTTP_VARIANTS = (
    ("storm_off", "off", "/storm", 503),
    ("storm_on", "on", "/storm", 503),
    ("ok_off", "off", "/ok", 200),
    ("ok_on", "on", "/ok", 200),
)


def _http(ctx: Context) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    seconds = ctx.pick(3.0, 1.5, 0.3)
    rounds = ctx.pick(max(7, ctx.repeats), 4, 1)
    warmup = ctx.pick(0.5, 0.3, 0.1)
    ctx.log(f"row 8: 5xx storm over HTTP, 1 uvicorn worker per mode, {rounds} x {seconds}s")
    servers = {mode: Server(mode) for mode in MODES}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in HTTP_VARIANTS}
    checked: dict[str, Any] = {}
    try:
        for server in servers.values():
            server.wait_ready()
        for server in servers.values():  # warm each worker; spends the budget
            for _ in range(20):
                load(server.port, "/storm", ctx.pick(1.0, 0.5, 0.1), 0.0)
                if server.stats()["observed_5xx"] > 2 * BUDGET:
                    break
        spent = servers["on"].stats()
        if spent["events"] != BUDGET or not spent["skipped"]:
            raise AssertionError(f"budget not spent by the warm-up: {spent}")
        for r in range(rounds):
            for name, mode, path, status in HTTP_VARIANTS if r % 2 == 0 else HTTP_VARIANTS[::-1]:
                server = servers[mode]
                cpu = server.cpu_s()
                figures = load(server.port, path, seconds, warmup)
                figures["cpu_us"] = (server.cpu_s() - cpu) / max(1, figures["sent"]) * 1e6
                if set(figures["statuses"]) != {status}:
                    raise AssertionError(f"{name}: answers {figures['statuses']}, not {status}")
                runs[name].append(figures)
        on = servers["on"].stats()
        _check_sentry(on, on["observed_5xx"], spent["built"], "HTTP, Sentry on")
        checked = {"on": on, "off": servers["off"].stats(), "built_before_spent": spent["built"]}
    finally:
        for server in servers.values():
            server.stop()
    return runs, checked


def _inprocess_rows(ctx: Context) -> dict[str, Any]:
    n = ctx.pick(2000, 500, 20)
    batches = ctx.pick(5, 3, 1)
    n_all = ctx.pick(200, 60, 5)  # every 5xx captured: a few ms each
    rounds = ctx.pick(3, 2, 1)
    ctx.log(f"row 8: in process, {rounds} rounds of {batches} x {n} requests per path")
    paths = [
        ["/storm", n, batches, 503],
        ["/boom", n, batches, 500],
        ["/ok", n, batches, 200],
    ]
    figures: dict[str, list[dict[str, Any]]] = {
        "off": [],
        "on": [],
        "on_unbounded": [],
        "on_bare": [],
    }
    specs = {
        "off": {"sentry": False, "budget": BUDGET, "warm": 50, "paths": paths},
        "on": {"sentry": True, "budget": BUDGET, "warm": 50, "paths": paths},
        "on_unbounded": {
            "sentry": True,
            "budget": 0,
            "warm": 5,
            "paths": [["/storm", n_all, batches, 503]],
        },
        "on_bare": {
            "sentry": True,
            "web": False,
            "budget": BUDGET,
            "warm": 50,
            "paths": [["/storm", n, batches, 503], ["/ok", n, batches, 200]],
        },
    }
    for r in range(rounds):
        order = list(specs) if r % 2 == 0 else list(specs)[::-1]
        for name in order:
            figures[name].append(inprocess(specs[name]))
    for run in figures["on"] + figures["on_bare"]:
        for path in {"/storm", "/boom"} & set(run):
            got = run[path]
            if got["built"] or got["events"] or got["skipped"] != got["requests"]:
                raise AssertionError(f"in process {path}, budget spent: {got}")
    for run in figures["on_unbounded"]:
        got = run["/storm"]
        if got["events"] != got["requests"] or got["built"] != got["requests"]:
            raise AssertionError(f"in process /storm, no budget: {got}")
    return figures


def run(ctx: Context) -> list[Result]:
    """Row 8: 5xx storm throughput with Sentry on (budget spent) vs off; where the time goes."""
    runs, checked = _http(ctx)
    inproc = _inprocess_rows(ctx)

    def med(name: str, key: str) -> float:
        return median([f[key] for f in runs[name]])

    def paired(on: str, off: str, key: str) -> float:
        """Median over rounds of on/off, each pair measured in the same round."""
        return median([a[key] / b[key] for a, b in zip(runs[on], runs[off], strict=True)])

    def us(variant: str, path: str) -> float:
        return median([figures[path]["us"] for figures in inproc[variant]])

    rps_ratio = paired("storm_on", "storm_off", "rps")
    results = [
        Result(
            row=8,
            what="5xx storm (one code), Sentry on, budget spent: responses/s (1 uvicorn worker)",
            unit="req/s",
            us=med("storm_on", "rps"),
            peer=med("storm_off", "rps"),
            peer_name="Sentry off",
            ratio=rps_ratio,
            aim=">= 0.8",
            met=rps_ratio >= 0.8,
            note="ratio = median of per-round paired ratios",
            samples={name: [f["rps"] for f in runs[name]] for name in runs},
            extra={"runs": runs, "checked": checked},
        ),
        Result(
            row=8,
            what="5xx storm, Sentry on, budget spent: server CPU per response",
            unit="us",
            us=med("storm_on", "cpu_us"),
            peer=med("storm_off", "cpu_us"),
            peer_name="Sentry off",
            ratio=paired("storm_on", "storm_off", "cpu_us"),
            samples={name: [f["cpu_us"] for f in runs[name]] for name in runs},
            extra={"p99_ms": med("storm_on", "p99_ms"), "p99_ms_off": med("storm_off", "p99_ms")},
        ),
        Result(
            row=8,
            what="200s, Sentry on: responses/s (sentry-sdk's per-request cost, no error involved)",
            unit="req/s",
            us=med("ok_on", "rps"),
            peer=med("ok_off", "rps"),
            peer_name="Sentry off",
            ratio=paired("ok_on", "ok_off", "rps"),
            note="the floor of the 5xx ratio: what no capture budget removes",
            extra={"cpu_us": med("ok_on", "cpu_us"), "cpu_us_off": med("ok_off", "cpu_us")},
        ),
    ]
    inproc_rows = [
        ("on", "/storm", "in process: event loop per 5xx, Sentry on, budget spent"),
        ("on_unbounded", "/storm", "in process: event loop per 5xx, Sentry on, no budget"),
        ("on", "/boom", "in process: event loop per unexpected 500, Sentry on, budget spent"),
        ("on", "/ok", "in process: event loop per 200 (sentry-sdk's per-request cost)"),
        (
            "on_bare",
            "/storm",
            "in process: event loop per 5xx, Sentry on without sentry-sdk's Starlette/FastAPI "
            "integrations, budget spent",
        ),
    ]
    for variant, path, what in inproc_rows:
        mine, off = us(variant, path), us("off", path)
        results.append(
            Result(
                row=8,
                what=what,
                unit="us",
                us=mine,
                peer=off,
                peer_name="Sentry off",
                ratio=mine / off,
                samples={name: [f[path]["us"] for f in inproc[name]] for name in (variant, "off")},
                extra={"runs": [f[path] for f in inproc[variant]]},
            )
        )
    return results


if __name__ == "__main__" and "--load" in sys.argv:
    port, path, secs, warm, conns = json.loads(sys.argv[sys.argv.index("--load") + 1])
    result = asyncio.run(_load(int(port), str(path), float(secs), float(warm), int(conns)))
    print(json.dumps(result), flush=True)
elif __name__ == "__main__" and "--inprocess" in sys.argv:
    spec = json.loads(sys.argv[sys.argv.index("--inprocess") + 1])
    print(json.dumps(asyncio.run(_inprocess(spec))), flush=True)
