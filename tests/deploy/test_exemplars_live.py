"""A real Prometheus with exemplar storage scrapes the app over OpenMetrics: the exemplars it
keeps on ``fastapi_errors_by_route_total`` are the ids of requests the client made.

The app is tests/fleet/routes_app.py in a uvicorn process on the local Redis (its own
namespace), with a bearer token; Prometheus (``--enable-feature=exemplar-storage``, so it
negotiates OpenMetrics) uses the scrape job of deploy/prometheus/prometheus.yml as
tests/deploy/test_prometheus_live.py derives it (one target, 1 s interval, the token). Error
requests of four series go out in waves more than a scrape interval apart, with a client
``X-Request-ID`` or none or an invalid one, with a ``traceparent`` or none. Prometheus's
``/api/v1/query_exemplars`` must then return, for each series, exemplars whose
``request_id`` is an id the client received for a request of that series, with that
request's trace id (and none when it sent none); the newest one is the series' last request.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.test_prometheus_live import (
    TOKEN,
    Prometheus,
    Served,
    derived_config,
    run_prometheus,
    serve,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis]

WAVES = 3
#: longer than the scrape interval (1 s): Prometheus sees every wave's newest requests
WAVE_GAP_S = 1.5

#: Error series -> (method, path, labels of its fastapi_errors_by_route_total series).
SERIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "declared": (
        "GET",
        "/locked/{n}",
        {"error_code": "7423", "error_name": "ItemLocked", "status_code": "423"}
        | {"route": "/locked/{item_id}", "method": "GET"},
    ),
    "returned": (
        "GET",
        "/down",
        {"error_code": "503", "error_name": "Undeclared", "status_code": "503"}
        | {"route": "/down", "method": "GET"},
    ),
    "middleware": (
        "GET",
        "/throttled/{n}",
        {"error_code": "429", "error_name": "Undeclared", "status_code": "429"}
        | {"route": "<unmatched>", "method": "GET"},
    ),
    "unmatched": (
        "GET",
        "/no/such/{n}",
        {"error_code": "404", "error_name": "NotFound", "status_code": "404"}
        | {"route": "<unmatched>", "method": "GET"},
    ),
}


@dataclass
class Sent:
    """One error request: its series, the ids the client sent and the id it received."""

    series: str
    request_id: str  # the response's X-Request-ID
    trace_id: str | None  # the trace id of the traceparent sent, if any
    sent_request_id: str | None


#: The app of these tests, in one uvicorn process.
App = Served


@pytest.fixture
def app(redis_url: str, redis_namespace: str, tmp_path: Path) -> Iterator[App]:
    """tests/fleet/routes_app.py in one uvicorn process, on the test's Redis namespace."""
    env = {
        "FEC_REDIS_URL": redis_url,
        "FEC_NAMESPACE": redis_namespace,
        "FEC_FLUSH_INTERVAL_MS": "100",
        "FEC_AUTH_TOKEN": TOKEN,
    }
    argv = [
        *(sys.executable, "-m", "uvicorn", "tests.fleet.routes_app:app"),
        *("--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"),
    ]
    with serve(argv, env, tmp_path, "uvicorn") as served:
        yield served


@pytest.fixture
def prometheus(app: App, tmp_path: Path, prometheus_bin: str) -> Iterator[Prometheus]:
    """Prometheus with exemplar storage, scraping *app* every second with the token."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = derived_config(app.port, token_file)
    config.pop("rule_files", None)  # the alerting rules are test_prometheus_live.py's subject
    with run_prometheus(prometheus_bin, config, tmp_path, "--enable-feature=exemplar-storage") as p:
        yield p


def query_exemplars(prom: Prometheus, expr: str, start: float, end: float) -> list[Any]:
    """Prometheus's ``/api/v1/query_exemplars``: [{seriesLabels, exemplars: [...]}, ...]."""
    response = httpx.get(
        f"http://127.0.0.1:{prom.port}/api/v1/query_exemplars",
        params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"},
        timeout=5,
    )
    body: dict[str, Any] = response.json()
    assert body["status"] == "success", body
    data: list[Any] = body["data"]
    return data


def send_waves(base: str) -> list[Sent]:
    """WAVES waves of two requests per series, in the order of SERIES, WAVE_GAP_S apart.

    ``declared``: the client's X-Request-ID and a traceparent; ``returned``: the client's id,
    no traceparent; ``middleware``: no id (the app makes one), a traceparent; ``unmatched``:
    an invalid id (replaced by the app's), a traceparent.
    """
    sent: list[Sent] = []
    n = 0
    with httpx.Client(base_url=base, timeout=10) as client:
        for wave in range(WAVES):
            if wave:
                time.sleep(WAVE_GAP_S)
            for name, (method, path, labels) in SERIES.items():
                for _ in range(2):
                    n += 1
                    headers: dict[str, str] = {}
                    sent_id: str | None = None
                    if name in ("declared", "returned"):
                        sent_id = f"ex-{name}-{n}-{uuid.uuid4().hex[:6]}"
                    elif name == "unmatched":
                        sent_id = f"not a valid id {n}"
                    if sent_id is not None:
                        headers["X-Request-ID"] = sent_id
                    trace_id = None
                    if name != "returned":
                        trace_id = uuid.uuid4().hex
                        headers["traceparent"] = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
                    response = client.request(method, path.replace("{n}", str(n)), headers=headers)
                    assert str(response.status_code) == labels["status_code"], response.text
                    received = response.headers["x-request-id"]
                    if name in ("declared", "returned"):
                        assert received == sent_id
                    else:
                        assert received != sent_id and len(received) == 32
                    sent.append(Sent(name, received, trace_id, sent_id))
    return sent


def test_prometheus_exemplars_are_the_clients_request_ids(app: App, prometheus: Prometheus) -> None:
    assert wait_until(lambda: prometheus.vector('up{job="fastapi-errors"}') != [], 30)
    ((_labels, up),) = prometheus.vector('up{job="fastapi-errors"}')
    assert up == 1.0, app.output()

    started = time.time()
    sent = send_waves(f"http://127.0.0.1:{app.port}")
    by_id = {s.request_id: s for s in sent}
    assert len(by_id) == len(sent) == WAVES * 2 * len(SERIES)
    last = {s.series: s.request_id for s in sent}  # each series' newest request

    def found() -> dict[str, list[dict[str, Any]]]:
        """Each series' exemplars, by the name in SERIES."""
        result: dict[str, list[dict[str, Any]]] = {}
        data = query_exemplars(
            prometheus, "fastapi_errors_by_route_total", started - 60, time.time() + 60
        )
        for entry in data:
            series = entry["seriesLabels"]
            names = [
                name
                for name, (_m, _p, labels) in SERIES.items()
                if all(series.get(k) == v for k, v in labels.items())
            ]
            assert len(names) == 1, f"exemplars of a series no request was sent to: {entry}"
            assert series["__name__"] == "fastapi_errors_by_route_total"
            result.setdefault(names[0], []).extend(entry["exemplars"])
        return result

    def newest_seen() -> bool:
        exemplars = found()
        return set(exemplars) == set(SERIES) and all(
            max(ex, key=lambda e: float(e["timestamp"]))["labels"].get("request_id") == last[name]
            for name, ex in exemplars.items()
        )

    assert wait_until(newest_seen, 30, interval=0.5), (
        f"exemplars: {found()}\nlast requests: {last}\n--- app ---\n{app.output()}\n"
        f"--- prometheus ---\n{prometheus.log.read_text(errors='replace')[-3000:]}"
    )

    exemplars = found()
    for name, series_exemplars in exemplars.items():
        for exemplar in series_exemplars:
            ids = exemplar["labels"]
            assert set(ids) <= {"request_id", "trace_id"}, ids
            request = by_id.get(ids.get("request_id", ""))
            assert request is not None, f"{name}: not an id the client received: {ids}"
            assert request.series == name, (name, ids)
            # the trace id sent with that very request; no trace_id label when none was sent
            assert ids.get("trace_id") == request.trace_id, (name, ids, request)
            assert float(exemplar["value"]) == 1.0
            assert started - 1 <= float(exemplar["timestamp"]) <= time.time()
    # the waves were further apart than a scrape interval: more than one request of a series
    # was its newest at some scrape
    assert all(len({e["labels"]["request_id"] for e in ex}) >= 2 for ex in exemplars.values()), (
        exemplars
    )
