"""Worker memory during a Redis outage stays bounded in bytes, whatever the details' size.

Two fresh interpreters serve the same app through a TestClient: one with metrics on a Redis
that is down (nothing can be flushed for the whole run), one with metrics off. Each answers
300 requests whose error detail echoes a 672 KB JSON body; the resident memory afterwards
must stay within 100 MiB of the metrics-off run. The events the worker keeps are encoded,
masked and size-capped as soon as a few wait, so a detail is never held for long.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests._servers import free_port, repo_root

pytestmark = pytest.mark.slow

REQUESTS = 300
LIMIT_MIB = 100

CHILD = textwrap.dedent(
    """
    import gc, json, sys
    from fastapi import FastAPI, Request
    from fastapi.testclient import TestClient
    from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
    from fastapi_error_codes.metrics import MetricsConfig

    mode, port, requests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    @register_exception(error_code=8701, message="Rejected", status_code=422)
    class Rejected(BaseAppException):
        pass

    app = FastAPI()
    if mode == "on":  # Redis is down for the whole run: every flush fails
        config = MetricsConfig.testing(
            redis_url=f"redis://127.0.0.1:{port}/0", flush_interval_ms=200, redis_timeout_ms=100,
            max_events=1000, max_events_per_flush=1000,
        )
        setup_exception_handler(app, metrics_config=config)
    else:
        setup_exception_handler(app)

    @app.post("/echo")
    async def echo(request: Request) -> None:
        raise Rejected(detail={"echo": await request.json()})

    item = {"id": 0, "name": "customer-000000", "email": "someone@example.com", "ok": True}
    body = json.dumps({"items": [dict(item, id=i) for i in range(7900)]}).encode()
    assert 600_000 < len(body) < 750_000, len(body)

    def rss_mib(field: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(field)

    json_type = {"content-type": "application/json"}
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(requests):
            response = client.post("/echo", content=body, headers=json_type)
            assert response.status_code == 422
        gc.collect()
        state = {}
        if mode == "on":
            collector = app.state.metrics_collector
            state = {"buffered": collector.buffered, "failures": collector.stats.flush_failures}
        print(json.dumps({"rss": rss_mib("VmRSS"), "peak": rss_mib("VmHWM"), **state}))
    """
)


def _run(mode: str, port: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(port), str(REQUESTS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_outage_memory_is_bounded_whatever_the_detail_size() -> None:
    port = free_port()  # nothing listens there: Redis is down
    off = _run("off", port)
    on = _run("on", port)
    assert on["buffered"] == REQUESTS  # every error still counted, waiting for Redis
    assert on["failures"] >= 1
    assert on["rss"] - off["rss"] < LIMIT_MIB, (on, off)
