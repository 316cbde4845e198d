"""docker-compose.yml, the Dockerfile, Prometheus' and Grafana's files: consistent and complete.

No Docker engine runs here, so the compose file is checked by parsing it; ``docker compose
config`` (or ``docker-compose config``) runs too where it is installed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env
from tests.deploy._files import DEPLOY, ROOT, app_job, job_targets, k8s_manifests, load_yaml
from tests.examples._client import samples
from tests.examples._registry import example

COMPOSE = ROOT / "docker-compose.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "fastapi-error-codes.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert set(data["services"]) >= {"redis", "app", "prometheus", "grafana"}
    return dict(data)


def _flag(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_service_runs_gunicorn_with_four_uvicorn_workers(compose: dict[str, Any]) -> None:
    command = compose["services"]["app"]["command"]
    assert isinstance(command, list), "use the list form: no shell between Docker and gunicorn"
    assert command[0] == "gunicorn"
    config = _flag(command, "--config")
    assert config == "deploy/gunicorn.conf.py"
    assert (ROOT / config).is_file()
    assert _flag(command, "--workers") == "4"
    assert _flag(command, "--worker-class") == "uvicorn_worker.UvicornWorker"
    module, _, attr = command[-1].partition(":")
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    assert attr == "app"


def test_every_referenced_file_and_build_context_exists(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), name
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else ""
            assert (context / (dockerfile or "Dockerfile")).is_file(), name
            checked += 1
        for source, _target in _bind_mounts(service):
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            checked += 1
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in (compose.get("volumes") or {}), f"undeclared volume {source}"
    assert checked >= 4


def test_app_environment_is_a_valid_fleet_config(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["services"]["app"]["environment"].items()}
    config = get_config_from_env(env)
    assert config.redis_url is not None
    host = config.redis_url.split("://", 1)[1].split(":")[0]
    assert host == "redis" and "redis" in compose["services"]
    assert "redis" in compose["services"]["app"]["depends_on"]


def test_prometheus_scrapes_the_service_as_one_target(compose: dict[str, Any]) -> None:
    mounts = dict(_bind_mounts(compose["services"]["prometheus"]))
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    job = app_job(config)
    assert job_targets(job) == ["app:8000"]  # exactly one: the compose service
    assert job.get("metrics_path", "/metrics") == MetricsConfig().metrics_path
    ports = compose["services"]["app"]["ports"]
    assert any(str(p).endswith(":8000") for p in ports)
    assert _flag(compose["services"]["app"]["command"], "--bind").endswith(":8000")


def test_dockerfile_copies_what_the_command_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied: list[str] = []
    for line in lines:
        if line.startswith("COPY"):
            copied += line.split()[1:-1]
    ignored = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    for needed in ("pyproject.toml", "README.md", "src", "examples", "deploy/gunicorn.conf.py"):
        assert any(needed == c or needed.startswith(c + "/") for c in copied), needed
    cmd = next(line for line in lines if line.startswith("CMD"))
    assert json.loads(cmd[3:]) == [
        "gunicorn",
        "--config",
        "deploy/gunicorn.conf.py",
        "examples.app:app",
    ]


def test_grafana_provisioning_matches_compose(compose: dict[str, Any]) -> None:
    mounts = dict(_bind_mounts(compose["services"]["grafana"]))
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "fastapi-error-codes.yml")
    (provider,) = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == source["uid"]
    assert variables["job"]["current"]["value"] == "fastapi-errors"


def _dashboard_exprs() -> dict[str, list[str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}


def test_dashboard_has_the_panels_the_issue_asks_for() -> None:
    exprs = _dashboard_exprs()
    wanted = {
        "by code": "fastapi_errors_by_code",
        "by HTTP status": "fastapi_errors_by_status",
        "Top errors": "topk(",
        "Live workers": "fastapi_errors_workers",
        "ropped": "fastapi_errors_dropped_total",
        "Error ratio by route": "fastapi_requests_total",
        "by route and code": "fastapi_errors_by_route_total",
    }
    for title_part, metric in wanted.items():
        titles = [t for t in exprs if title_part in t]
        assert titles, f"no panel titled like {title_part!r}"
        assert any(metric in e for t in titles for e in exprs[t]), (title_part, metric)


def test_dashboard_queries_only_series_the_service_exports() -> None:
    app = example("app").create_app(MetricsConfig.testing())
    with TestClient(app, raise_server_exceptions=False) as c:
        c.get("/users/7")
        names = {name for name, _labels in samples(c.get("/metrics").text)}
    names.add("up")  # Prometheus' own series for the target
    for title, exprs in _dashboard_exprs().items():
        for expr in exprs:
            used = set(re.findall(r"\b(fastapi_\w+|up)\{", expr))
            assert used, (title, expr)
            assert used <= names, f"{title}: {used - names} not exported"


def _panels() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])


def test_dashboard_panels_of_errors_by_route_show_exemplars() -> None:
    # fastapi_errors_by_route_total carries exemplars (request_id, trace_id) when scraped with
    # OpenMetrics: every query of it asks Grafana to show them, and only those (the other
    # series carry none).
    by_route = 0
    for panel in _panels():
        for target in panel["targets"]:
            with_exemplars = "fastapi_errors_by_route_total" in target["expr"]
            by_route += with_exemplars
            assert target.get("exemplar", False) is with_exemplars, (panel["title"], target)
    assert by_route >= 2


def test_both_demo_prometheus_servers_keep_the_exemplars(compose: dict[str, Any]) -> None:
    # Without exemplar storage Prometheus drops them at the scrape: the panels above show none.
    flag = "--enable-feature=exemplar-storage"
    assert flag in compose["services"]["prometheus"]["command"]
    (deployment,) = [
        m
        for m in k8s_manifests()
        if m["kind"] == "Deployment" and m["metadata"]["name"].startswith("prometheus")
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert flag in container["args"]


def test_dashboard_error_ratio_divides_errors_by_requests_of_the_same_route() -> None:
    (panel,) = [p for p in _panels() if p["title"] == "Error ratio by route"]
    (target,) = panel["targets"]
    numerator, denominator = target["expr"].split(" / ")
    by = "sum by (route, method) "
    assert numerator.startswith(by + "(rate(fastapi_errors_by_route_total{"), numerator
    assert denominator.startswith(by + "(rate(fastapi_requests_total{"), denominator
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_dashboard_panels_do_not_overlap() -> None:
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_promtool_accepts_the_prometheus_config(promtool: str) -> None:
    # Its rule_files (alerts.yml, beside it) are checked too.
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
