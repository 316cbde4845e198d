"""Requests and errors by route, fleet-wide: real gunicorn workers on one real Redis.

tests/fleet/routes_app.py runs under gunicorn --preload with 3 UvicornWorkers. 600 requests of
every kind (2xx, declared errors, HTTPException, 422, 405, 500, a returned 503, a 429 from a
middleware, unmatched paths), on fresh connections from 8 threads so every worker answers
some, are sent with and without ``X-Request-ID`` and ``traceparent``. Then /metrics, read on
fresh connections and so answered by different workers, must show from every answer exactly
what was sent:

- ``fastapi_requests_total`` per (route, method, status class) and
  ``fastapi_errors_by_route_total`` per (code, name, status, route, method), each error
  response once, a returned one as ``Undeclared``; errors / requests per route as sent;
- ``fastapi_errors_total`` / ``fastapi_errors_by_code``: the errors a handler answered only;
- over OpenMetrics, an exemplar on each error-by-route sample whose request id is one the
  client received for a request of that series, with that request's trace id.

Every response carries an ``X-Request-ID``: the client's valid one echoed, else a new one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests._servers import free_port, repo_root, wait_for_port
from tests.conftest import delete_namespace
from tests.fleet.test_gunicorn import Gunicorn

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WORKERS = 3
FLUSH_MS = 100
#: MetricsConfig.read_cache_ms's default: how long a worker may answer /metrics from a read
#: of its own that is older than other workers' last flushes.
READ_CACHE_S = 1.0
ROUNDS = 30
CONNECTIONS = 8
UNMATCHED = "<unmatched>"
UNDECLARED = "Undeclared"
NEW_ID = re.compile(r"[0-9a-f]{32}")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class Kind:
    """One kind of request: what is sent, and how the library must count its response."""

    method: str
    path: str  # "{n}" is replaced by a number per request
    status: int
    route: str
    #: (code, name) of the error a handler answers; None for a success or an Undeclared error
    handled: tuple[int, str] | None = None

    @property
    def error(self) -> tuple[str, str, str, str, str] | None:
        """The labels of its ``fastapi_errors_by_route_total`` series, if it is an error."""
        if self.status < 400:
            return None
        code, name = self.handled or (self.status, UNDECLARED)
        return (str(code), name, str(self.status), self.route, self.method)


# One round: 20 requests, in this order (weights repeat a kind).
ROUND: list[tuple[Kind, int]] = [
    (Kind("GET", "/items/{n}", 200, "/items/{item_id}"), 6),
    (Kind("POST", "/items", 201, "/items"), 2),
    (Kind("GET", "/items/0", 404, "/items/{item_id}", (404, "NotFound")), 1),
    (Kind("GET", "/items/x{n}", 422, "/items/{item_id}", (422, "ValidationError")), 1),
    (Kind("DELETE", "/items/{n}", 405, "/items/{item_id}", (405, "MethodNotAllowed")), 1),
    (Kind("GET", "/locked/{n}", 423, "/locked/{item_id}", (7423, "ItemLocked")), 2),
    (Kind("GET", "/down", 503, "/down"), 2),
    (Kind("GET", "/boom", 500, "/boom", (500, "InternalServerError")), 1),
    (Kind("GET", "/throttled/{n}", 429, UNMATCHED), 2),
    (Kind("GET", "/no/such/{n}", 404, UNMATCHED, (404, "NotFound")), 2),
]
PER_ROUND = sum(weight for _kind, weight in ROUND)


@dataclass
class Answer:
    """One request sent and its response."""

    kind: Kind
    status: int
    sent_request_id: str | None
    request_id: str | None  # the response's X-Request-ID
    trace_id: str | None  # the trace id of the traceparent sent, if any
    pid: int | None  # the worker that answered (none on a 500: answered outside the tagging)


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    started: float = 0.0  # wall clock
    ended: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _headers(index: int) -> tuple[dict[str, str], str | None, str | None]:
    """Headers of request *index*: (headers, request id sent, trace id sent).

    Every third request sends a valid X-Request-ID, every seventh an invalid one (with a
    space, or 65 characters: the library must not echo it); three in four send a traceparent.
    """
    headers = {"Connection": "close"}
    sent_id = None
    if index % 3 == 0:
        sent_id = f"rt-{index}-{uuid.uuid4().hex[:8]}"
    elif index % 7 == 0:
        sent_id = f"bad id {index}" if index % 2 else "x" * 65
    if sent_id is not None:
        headers["X-Request-ID"] = sent_id
    trace_id = None
    if index % 4:
        trace_id = uuid.uuid4().hex
        headers["traceparent"] = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    return headers, sent_id, trace_id


def send_load(base: str) -> Load:
    """Send ROUNDS rounds of ROUND over CONNECTIONS threads, a fresh connection per request."""
    plan = [kind for _ in range(ROUNDS) for kind, weight in ROUND for _ in range(weight)]
    load = Load(started=time.time())

    def run(thread: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            for index in range(thread, len(plan), CONNECTIONS):
                kind = plan[index]
                headers, sent_id, trace_id = _headers(index)
                path = kind.path.replace("{n}", str(index + 1))
                try:
                    response = client.request(kind.method, path, headers=headers)
                except httpx.HTTPError as exc:
                    with load.lock:
                        load.failures.append(f"{kind.method} {path}: {exc!r}")
                    continue
                pid = response.headers.get("x-worker-pid")
                answer = Answer(
                    kind,
                    response.status_code,
                    sent_id,
                    response.headers.get("x-request-id"),
                    trace_id,
                    int(pid) if pid else None,
                )
                with load.lock:
                    load.answers.append(answer)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.ended = time.time()
    return load


@pytest.fixture(scope="module")
def fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """tests/fleet/routes_app.py under gunicorn with WORKERS UvicornWorkers, every worker up."""
    namespace = f"fect-routes-{uuid.uuid4().hex[:8]}"
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEC_")}
    env.update(
        FEC_REDIS_URL=redis_url,
        FEC_NAMESPACE=namespace,
        FEC_FLUSH_INTERVAL_MS=str(FLUSH_MS),
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "tests.fleet.routes_app:app", "--preload"),
                *("--workers", str(WORKERS), "--worker-class", "uvicorn_worker.UvicornWorker"),
                *("--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10"),
                *("--log-level", "warning"),
            ],
            cwd=repo_root(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(proc, f"http://127.0.0.1:{port}", namespace, str(log))
    try:
        wait_for_port(port, timeout=30)
        # Every worker has started its lifespan (its flusher heartbeats into the namespace).
        deadline = time.monotonic() + 30
        while _scrape(server.base)[0].workers != WORKERS:
            assert time.monotonic() < deadline, _output(server)
            time.sleep(0.2)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        delete_namespace(redis_url, namespace)


def _output(server: Gunicorn) -> str:
    return Path(server.log).read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def load(fleet: Gunicorn) -> Load:
    """The requests, sent once for the module's tests."""
    return send_load(fleet.base)


@dataclass
class Scrape:
    """The series of one /metrics answer that these tests check."""

    requests: dict[tuple[str, str, str], float] = field(default_factory=dict)
    by_route: dict[tuple[str, str, str, str, str], float] = field(default_factory=dict)
    total: float | None = None
    by_code: dict[tuple[str, str, str], float] = field(default_factory=dict)
    workers: float | None = None


def _scrape(base: str) -> tuple[Scrape, int]:
    """GET /metrics (text format) on a fresh connection: (its series, the answering pid)."""
    response = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    found = Scrape()
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            labels = s.labels
            if s.name == "fastapi_requests_total":
                key = (labels["route"], labels["method"], labels["status_class"])
                found.requests[key] = s.value
            elif s.name == "fastapi_errors_by_route_total":
                found.by_route[_route_error(labels)] = s.value
            elif s.name == "fastapi_errors_total":
                found.total = s.value
            elif s.name == "fastapi_errors_by_code":
                key = (labels["error_code"], labels["error_name"], labels["status_code"])
                found.by_code[key] = s.value
            elif s.name == "fastapi_errors_workers":
                found.workers = s.value
    return found, int(response.headers["x-worker-pid"])


def _route_error(labels: dict[str, str]) -> tuple[str, str, str, str, str]:
    """The labels of an error-by-route sample, in the order of :attr:`Kind.error`."""
    return (
        labels["error_code"],
        labels["error_name"],
        labels["status_code"],
        labels["route"],
        labels["method"],
    )


@dataclass
class Expected:
    requests: dict[tuple[str, str, str], float]
    by_route: dict[tuple[str, str, str, str, str], float]
    total: float
    by_code: dict[tuple[str, str, str], float]


def expected_from(load: Load) -> Expected:
    """What the fleet must show for the requests sent (from the statuses received)."""
    requests: Counter[tuple[str, str, str]] = Counter()
    by_route: Counter[tuple[str, str, str, str, str]] = Counter()
    by_code: Counter[tuple[str, str, str]] = Counter()
    for a in load.answers:
        kind = a.kind
        requests[(kind.route, kind.method, f"{a.status // 100}xx")] += 1
        if kind.error is not None:
            by_route[kind.error] += 1
        if kind.handled is not None:
            code, name = kind.handled
            by_code[(str(code), name, str(kind.status))] += 1
    return Expected(
        {k: float(v) for k, v in requests.items()},
        {k: float(v) for k, v in by_route.items()},
        float(by_code.total()),
        {k: float(v) for k, v in by_code.items()},
    )


def _exact(found: Scrape, expected: Expected) -> bool:
    return (
        found.requests == expected.requests
        and found.by_route == expected.by_route
        and found.total == expected.total
        and found.by_code == expected.by_code
    )


def _settled(base: str, expected: Expected, timeout: float = 20) -> Scrape:
    """Poll /metrics until one answer is exact (every worker's counts reached Redis), then
    wait out the read cache: from then on, no worker may answer with anything else."""
    deadline = time.monotonic() + timeout
    found, _pid = _scrape(base)
    while not _exact(found, expected) and time.monotonic() < deadline:
        time.sleep(FLUSH_MS / 1000)
        found, _pid = _scrape(base)
    time.sleep(READ_CACHE_S + 2 * FLUSH_MS / 1000)
    return found


def test_load_was_answered_as_planned(load: Load) -> None:
    assert load.failures == []
    assert len(load.answers) == ROUNDS * PER_ROUND
    wrong = [(a.kind, a.status) for a in load.answers if a.status != a.kind.status]
    assert wrong == [], wrong
    pids = Counter(a.pid for a in load.answers if a.pid is not None)
    assert len(pids) == WORKERS, f"not every worker answered: {pids}"


def test_every_response_has_a_request_id(load: Load) -> None:
    received = [a.request_id for a in load.answers]
    assert None not in received, "a response without X-Request-ID"
    assert len(set(received)) == len(received), "a request id was given twice"
    for a in load.answers:
        if (
            a.sent_request_id is not None
            and " " not in a.sent_request_id
            and len(a.sent_request_id) <= 64
        ):
            assert a.request_id == a.sent_request_id, (a.kind, a.sent_request_id, a.request_id)
        else:  # none sent, or an invalid one: a new id, never the client's
            assert a.request_id is not None and NEW_ID.fullmatch(a.request_id), a
    echoed = sum(1 for a in load.answers if a.request_id == a.sent_request_id)
    assert echoed == len(load.answers) // 3  # every third request sent a valid id


def test_every_worker_answers_the_exact_fleet_totals(fleet: Gunicorn, load: Load) -> None:
    expected = expected_from(load)
    # the plan covers every kind the library counts differently
    assert {k[2] for k in expected.requests} == {"2xx", "4xx", "5xx"}
    assert {k[1] for k in expected.by_route} >= {UNDECLARED, "ItemLocked", "NotFound"}
    found = _settled(fleet.base, expected)
    assert found.requests == expected.requests, _output(fleet)
    assert found.by_route == expected.by_route
    assert found.total == expected.total and found.by_code == expected.by_code

    answered_by: Counter[int] = Counter()
    for n in range(60):
        found, pid = _scrape(fleet.base)
        answered_by[pid] += 1
        assert found.requests == expected.requests, (pid, n)
        assert found.by_route == expected.by_route, (pid, n)
        # the seed's families: only what a handler answered (no 503 returned, no 429)
        assert found.total == expected.total, (pid, n)
        assert found.by_code == expected.by_code, (pid, n)
        if n >= 19 and len(answered_by) == WORKERS:
            break
    assert len(answered_by) >= 2, f"every scrape was answered by one worker: {answered_by}"

    # each error response counted once, in the route family; the handled ones in the seed's
    errors = sum(1 for a in load.answers if a.status >= 400)
    assert sum(found.by_route.values()) == errors
    handled = sum(1 for a in load.answers if a.kind.handled is not None)
    assert found.total == handled < errors
    assert sum(found.requests.values()) == len(load.answers)


def test_errors_per_request_by_route_is_the_ratio_sent(fleet: Gunicorn, load: Load) -> None:
    expected = expected_from(load)
    found = _settled(fleet.base, expected)
    sent_requests: Counter[str] = Counter(a.kind.route for a in load.answers)
    sent_errors: Counter[str] = Counter(a.kind.route for a in load.answers if a.status >= 400)
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for (route, _method, _class), n in found.requests.items():
        requests[route] += int(n)
    for (_code, _name, _status, route, _method), n in found.by_route.items():
        errors[route] += int(n)
    assert set(requests) == set(sent_requests)
    ratios = {route: Fraction(errors[route], requests[route]) for route in requests}
    sent = {route: Fraction(sent_errors[route], n) for route, n in sent_requests.items()}
    assert ratios == sent
    # one round's mix: 3 of 9 /items/{item_id} requests fail, every /locked one, no POST
    assert ratios["/items/{item_id}"] == Fraction(1, 3)
    assert ratios["/items"] == 0
    assert ratios["/locked/{item_id}"] == ratios["/down"] == ratios[UNMATCHED] == 1


def test_openmetrics_exemplars_are_ids_the_client_received(fleet: Gunicorn, load: Load) -> None:
    expected = expected_from(load)
    _settled(fleet.base, expected)
    # request id -> (its series, the trace id sent with it)
    sent = {
        a.request_id: (a.kind.error, a.trace_id) for a in load.answers if a.kind.error is not None
    }
    pids = set()
    for _ in range(10):
        response = httpx.get(
            f"{fleet.base}/metrics",
            headers={"Accept": OPENMETRICS, "Connection": "close"},
            timeout=10,
        )
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        pids.add(response.headers["x-worker-pid"])
        seen = set()
        for family in openmetrics_families(response.text):  # type: ignore[no-untyped-call,unused-ignore]
            for s in family.samples:
                if s.name != "fastapi_errors_by_route_total":
                    continue
                series = _route_error(s.labels)
                seen.add(series)
                assert s.exemplar is not None, series
                ids = s.exemplar.labels
                request_id = ids["request_id"]
                assert request_id in sent, f"{series}: an id no client received: {ids}"
                assert sent[request_id] == (series, ids.get("trace_id")), (series, ids)
                assert s.exemplar.value == 1.0
                assert s.exemplar.timestamp is not None
                assert load.started - 2 <= float(s.exemplar.timestamp) <= load.ended + 2
        assert seen == set(expected.by_route)
    assert len(pids) >= 2, pids
