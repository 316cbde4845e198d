"""A real Prometheus scrapes a live gunicorn fleet on Redis and sees exactly the errors raised.

The scrape configuration is derived from deploy/prometheus/prometheus.yml (the service's job,
with its one target pointed at the live app and a 1 s interval) plus the ``authorization``
block of the Kubernetes scrape config, so the bearer-token path is exercised too. The app
is examples/app.py under gunicorn with 3 ``uvicorn_worker.UvicornWorker`` workers and the
repository's gunicorn.conf.py (``preload_app`` on: the fork-safety is part of the test).
The alerting and recording rules of deploy/prometheus/alerts.yml are loaded beside the
configuration: they must evaluate on the live series without an error, and fire nothing but
the error-budget alerts of the two routes the test makes answer 5xx.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests._servers import free_port, wait_for_port
from tests.deploy._files import DEPLOY, K8S, ROOT, app_job, job_targets, load_yaml
from tests.examples._client import samples

pytestmark = [pytest.mark.slow, pytest.mark.redis]

WORKERS = 3
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "fastapi-error-codes.json"
TOKEN = "live-test-token-0123456789abcdef"
# Errors to raise: (method, path, headers) -> (error code, how many times).
RAISE: list[tuple[str, str, dict[str, str], int, int]] = [
    ("GET", "/users/7", {}, 301, 7),
    ("GET", "/orders/9", {}, 302, 5),
    ("POST", "/orders/2/cancel", {}, 303, 3),
    ("POST", "/orders?quantity=0", {}, 460, 4),
    ("POST", "/checkout", {"X-API-Key": "example-key"}, 520, 2),
    ("POST", "/checkout", {}, 201, 1),
    ("GET", "/boom", {}, 500, 3),
    ("GET", "/no/such/page", {}, 404, 2),
]
EXPECTED = {code: n for *_, code, n in RAISE}
EXPECTED_TOTAL = sum(EXPECTED.values())


def stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group we started; SIGKILL it if it does not end in time."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


@dataclass
class Served:
    """A server this module started: its port, process group and log."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


#: The gunicorn fleet of these tests.
Fleet = Served


@contextmanager
def serve(
    argv: list[str], env_extra: dict[str, str], tmp_path: Path, name: str, stop_s: float = 15
) -> Iterator[Served]:
    """Run *argv* (``{port}`` filled with a free port) from the repository, in its own process
    group, with ``FEC_*`` variables only from *env_extra*; stopped (group) afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEC_")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [arg.format(port=port) for arg in argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(port, proc, log)
    try:
        wait_for_port(port, timeout=30)
        yield served
    finally:
        stop_group(proc, timeout=stop_s)


@pytest.fixture
def fleet(redis_url: str, redis_namespace: str, tmp_path: Path) -> Iterator[Fleet]:
    env = {
        "FEC_REDIS_URL": redis_url,
        "FEC_NAMESPACE": redis_namespace,
        "FEC_FLUSH_INTERVAL_MS": "200",
        "FEC_AUTH_TOKEN": TOKEN,
        "GUNICORN_GRACEFUL_TIMEOUT": "15",
    }
    argv = [
        *(sys.executable, "-m", "gunicorn", "--config", str(DEPLOY / "gunicorn.conf.py")),
        *("--workers", str(WORKERS), "--worker-class", "uvicorn_worker.UvicornWorker"),
        *("--bind", "127.0.0.1:{port}", "examples.app:app"),
    ]
    with serve(argv, env, tmp_path, "gunicorn", stop_s=30) as served:
        yield served


@dataclass
class Prometheus:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def query(self, expr: str) -> dict[str, Any]:
        response = httpx.get(
            f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": expr}, timeout=5
        )
        body: dict[str, Any] = response.json()
        assert body["status"] == "success", f"{expr}: {body}"
        return body

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        result = self.query(expr)["data"]["result"]
        return [(r["metric"], float(r["value"][1])) for r in result]

    def rules(self) -> list[dict[str, Any]]:
        """Every rule Prometheus loaded, with its health and (alerts) state."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/rules", timeout=5)
        body: dict[str, Any] = response.json()
        assert body["status"] == "success", body
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]


def derived_config(app_port: int, token_file: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, pointed at the live app, scraping every second."""
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    job = app_job(config)
    assert len(job_targets(job)) == 1, "the fleet must be scraped as one target"
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{app_port}"]
    job["scrape_interval"] = "1s"
    job["scrape_timeout"] = "1s"
    # The token path as deployed on Kubernetes, with the token in a local file.
    k8s = yaml.safe_load(
        next(
            doc
            for doc in yaml.safe_load_all((K8S / "prometheus-scrape.yaml").read_text())
            if doc and doc["kind"] == "ConfigMap"
        )["data"]["prometheus.yml"]
    )
    job["authorization"] = {**app_job(k8s)["authorization"], "credentials_file": str(token_file)}
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["scrape_configs"] = [job]  # only the service (the original's self-scrape is moot)
    return dict(config)


@pytest.fixture
def prometheus(fleet: Fleet, tmp_path: Path, prometheus_bin: str) -> Iterator[Prometheus]:
    binary = prometheus_bin
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = derived_config(fleet.port, token_file)
    # The rules, beside the configuration as in deploy/prometheus/ (the paths in rule_files
    # are relative to the configuration file), every group evaluated at the test's 1 s (the
    # SLO group's own interval is a minute).
    for rule_file in config.get("rule_files", []):
        rules = load_yaml(DEPLOY / "prometheus" / rule_file)
        for group in rules["groups"]:
            group.pop("interval", None)
        (tmp_path / rule_file).write_text(yaml.safe_dump(rules, sort_keys=False))
    with run_prometheus(binary, config, tmp_path) as prom:
        yield prom


@contextmanager
def run_prometheus(
    binary: str, config: dict[str, Any], tmp_path: Path, *flags: str
) -> Iterator[Prometheus]:
    """A Prometheus on *config* (written to *tmp_path*), ready, stopped afterwards."""
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *flags,
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prom = Prometheus(port, proc, log)
    try:
        wait_for_port(port, timeout=30)

        def ready() -> bool:
            try:
                url = f"http://127.0.0.1:{port}/-/ready"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, 30), log.read_text(errors="replace")
        yield prom
    finally:
        stop_group(proc, timeout=15)


def _app_metrics(fleet: Fleet) -> str:
    response = httpx.get(
        f"http://127.0.0.1:{fleet.port}/metrics",
        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.text


def _dashboard_exprs() -> list[tuple[str, str]]:

    dashboard = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "fastapi-error-codes.json").read_text()
    )
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_prometheus_sees_exactly_the_errors_raised(
    fleet: Fleet, prometheus: Prometheus, redis_url: str, redis_namespace: str
) -> None:
    # Every worker has booted (after the fork) and heartbeats into the shared namespace.
    def all_workers_live() -> bool:
        text = _app_metrics(fleet)
        return samples(text)[("fastapi_errors_workers", frozenset())] == WORKERS

    assert wait_until(all_workers_live, 30), fleet.output()

    # Raise the errors, one connection per request so the kernel spreads them over the
    # workers; successful requests in between must not count.
    base = f"http://127.0.0.1:{fleet.port}"
    with httpx.Client(base_url=base, timeout=10, headers={"Connection": "close"}) as http:
        for method, path, headers, code, times in RAISE:
            for _ in range(times):
                response = http.request(method, path, headers=headers)
                assert response.json()["error_code"] == code, response.text
                assert http.get("/users/1").status_code == 200

    def by_code() -> dict[int, float]:
        rows = prometheus.vector(
            'sum by (error_code) (fastapi_errors_by_code{job="fastapi-errors"})'
        )
        return {int(labels["error_code"]): value for labels, value in rows}

    def total() -> list[float]:
        return [v for _l, v in prometheus.vector('fastapi_errors_total{job="fastapi-errors"}')]

    def converged() -> bool:
        return total() == [EXPECTED_TOTAL] and by_code() == EXPECTED

    ok = wait_until(converged, 60, interval=0.5)
    assert ok, (
        f"Prometheus has total={total()} by_code={by_code()}, expected {EXPECTED_TOTAL} "
        f"{EXPECTED}\n--- gunicorn ---\n{fleet.output()}\n"
        f"--- prometheus ---\n{prometheus.log.read_text(errors='replace')[-3000:]}"
    )
    # One target, up, scraped with the token (a 401 would have been counted as an error).
    ((labels, up),) = prometheus.vector('up{job="fastapi-errors"}')
    assert (labels["instance"], up) == (f"127.0.0.1:{fleet.port}", 1.0)
    statuses = prometheus.vector('fastapi_errors_by_status{job="fastapi-errors"}')
    assert sum(v for _l, v in statuses) == EXPECTED_TOTAL
    assert wait_until(
        lambda: [v for _l, v in prometheus.vector("fastapi_errors_workers")] == [WORKERS], 15
    )
    assert [v for _l, v in prometheus.vector("fastapi_errors_dropped_total")] == [0.0]

    # Every query of the Grafana dashboard runs on this data; the top-errors table has rows.
    for title, expr in _dashboard_exprs():
        concrete = (
            expr.replace("$job", "fastapi-errors")
            .replace("$__rate_interval", "10s")
            .replace("$__range", "5m")
        )
        prometheus.query(concrete)  # asserts status == success
        if title.startswith("Top errors"):
            # increase() needs two samples of a series: give the scrapes a few seconds.
            assert wait_until(lambda q=concrete: bool(prometheus.vector(q)), 15), title
            rows = prometheus.vector(concrete)
            assert {int(r["error_code"]) for r, _v in rows} <= set(EXPECTED), rows

    # The rules of deploy/prometheus/alerts.yml are loaded and evaluate on the live fleet's
    # series without an error. Nothing fires on the fleet itself; the error budget of the two
    # routes made to answer 5xx (/boom: 3 of 3, /checkout: 2 of 3) may burn, no other's.
    rules = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    names = {r.get("alert") or r["record"] for group in rules["groups"] for r in group["rules"]}

    def rules_evaluated() -> bool:
        rules = prometheus.rules()
        return {r["name"] for r in rules} == names and all(r["health"] == "ok" for r in rules)

    assert wait_until(rules_evaluated, 15), prometheus.rules()
    burning = {("GET", "/boom"), ("POST", "/checkout")}
    firing = [
        (alert["labels"]["alertname"], alert["labels"].get("method"), alert["labels"].get("route"))
        for rule in prometheus.rules()
        for alert in rule.get("alerts", [])
        if alert["state"] == "firing"
    ]
    unexpected = [
        f for f in firing if f[0] != "FastapiErrorsErrorBudgetBurn" or f[1:] not in burning
    ]
    assert unexpected == [], firing

    # SIGTERM: every worker runs its lifespan shutdown (the final flush) and gunicorn exits
    # cleanly; the totals in Redis stay exact (nothing lost, nothing counted twice).
    stop_group(fleet.proc, timeout=30)
    assert fleet.proc.returncode == 0, fleet.output()
    assert fleet.output().count("Application shutdown complete") == WORKERS, fleet.output()
    client = redis.Redis.from_url(redis_url)
    try:
        totals = client.hgetall("{" + redis_namespace + "}:totals")
    finally:
        client.close()
    per_code: dict[int, int] = {}
    for field, value in totals.items():
        code = int(field.decode().split(":")[0])
        per_code[code] = per_code.get(code, 0) + int(value)
    assert per_code == EXPECTED
