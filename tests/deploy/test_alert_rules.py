"""deploy/prometheus/alerts.yml: valid rules (promtool), tested (promtool), shipped everywhere.

``promtool test rules deploy/prometheus/alerts.test.yml`` replays series as a scrape of the
one Service target would store them and checks that each alert fires when it should and stays
quiet when it should not. The tests here also make sure that every alert has both cases, that
the rules only use series the service exports, and that every deployment loads the file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from fastapi_error_codes.metrics import MetricsConfig
from tests.deploy._files import DEPLOY, K8S, ROOT, app_job, load_yaml, load_yaml_all
from tests.examples._client import samples
from tests.examples._registry import example

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"
GROUP = "fastapi-error-codes"
SEVERITIES = {"critical", "warning", "info"}


def _promtool(promtool: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _rules() -> list[dict[str, Any]]:
    groups = load_yaml(RULES)["groups"]
    assert [g["name"] for g in groups] == [GROUP]
    return list(groups[0]["rules"])


def _alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in _rules() if "alert" in r}


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout, result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    # Run from the file's folder, as documented: rule_files are relative to the test file.
    result = _promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("expr", "broken_expr", "alert"),
    [
        (
            "fastapi_errors_flush_age_seconds > 6",
            "fastapi_errors_flush_age_seconds > 600",
            "FastapiErrorsFlushStale",
        ),
        # The target-down alert: only the scrape job's target, and only when it is down.
        ('up{job="fastapi-errors"} == 0', "up == 0", "FastapiErrorsScrapeFailing"),
        (
            'up{job="fastapi-errors"} == 0',
            'up{job="fastapi-errors"} < 0',
            "FastapiErrorsScrapeFailing",
        ),
    ],
    ids=["flush-stale-threshold", "target-down-any-job", "target-down-never"],
)
def test_promtool_unit_tests_can_fail(
    promtool: str, tmp_path: Path, expr: str, broken_expr: str, alert: str
) -> None:
    # The test file really checks something: with one alert's expression changed, it fails.
    rules = RULES.read_text()
    assert rules.count(f"expr: {expr}\n") == 1, expr
    broken = rules.replace(f"expr: {expr}\n", f"expr: {broken_expr}\n")
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = _promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert alert in result.stdout + result.stderr


def test_the_scrape_job_has_a_target_down_alert() -> None:
    # up == 0 for the one target of the service's scrape job: the alert that fires when the
    # fleet cannot be observed at all (Redis down: 503, a wrong token: 401, no ready pod).
    job = app_job(load_yaml(PROMETHEUS / "prometheus.yml"))["job_name"]
    target_down = f'up{{job="{job}"}} == 0'
    down = [name for name, rule in _alerts().items() if rule["expr"] == target_down]
    assert down == ["FastapiErrorsScrapeFailing"]
    assert _alerts()[down[0]]["labels"]["severity"] == "critical"
    assert target_down in (ROOT / "docs" / "DEPLOYMENT.md").read_text("utf-8")


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = load_yaml(RULE_TESTS)
    assert tests["rule_files"] == [RULES.name]
    fires: set[str] = set()
    quiet: set[str] = set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"
    assert (fires | quiet) <= alerts, "tests of alerts that do not exist"


def test_every_alert_has_a_severity_and_says_what_to_do() -> None:
    for name, rule in _alerts().items():
        assert re.fullmatch(r"FastapiErrors[A-Z][A-Za-z]+", name), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"]) > 40, name


_METRIC = re.compile(r"\b(fastapi_errors_\w+)")


def test_rules_use_only_fleet_wide_series_the_service_exports() -> None:
    # Per-process series (fastapi_errors_worker_*) would alternate between workers behind the
    # one target; the rules must use the fleet's series, and only ones that exist.
    app = example("app").create_app(MetricsConfig.testing())
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/users/7")
        exported = {name for name, _labels in samples(client.get("/metrics").text)}
    used = {m for rule in _rules() for m in _METRIC.findall(rule["expr"])}
    assert used, "no rule uses the service's series"
    assert not {m for m in used if m.startswith("fastapi_errors_worker_")}
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    # Counter alerts use increase()/resets() over counters only (the _total series).
    for rule in _rules():
        for fn, metric in re.findall(
            r"\b(increase|resets|rate)\((fastapi_errors_\w+)", rule["expr"]
        ):
            assert metric.endswith("_total"), (rule["alert"], fn, metric)


def test_prometheus_config_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == [RULES.name]  # relative to prometheus.yml's folder
    assert (PROMETHEUS / config["rule_files"][0]).is_file()


def test_compose_mounts_the_rules_beside_the_config() -> None:
    prometheus = load_yaml(ROOT / "docker-compose.yml")["services"]["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in prometheus["volumes"])
    config_flag = next(c for c in prometheus["command"] if c.startswith("--config.file="))
    config_dir = Path(config_flag.split("=", 1)[1]).parent
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert mounts.get(f"./deploy/prometheus/{rule_file}") == str(config_dir / rule_file)


def _k8s_prometheus_configmap() -> dict[str, Any]:
    docs = load_yaml_all(K8S / "prometheus-scrape.yaml")
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    return dict(configmap)


def test_k8s_configmap_embeds_the_same_rules() -> None:
    data = _k8s_prometheus_configmap()["data"]
    config = yaml.safe_load(data["prometheus.yml"])
    # The ConfigMap is mounted as a folder: each key is a file beside prometheus.yml.
    assert config["rule_files"] == [RULES.name]
    assert yaml.safe_load(data[RULES.name]) == load_yaml(RULES), (
        f"deploy/k8s/prometheus-scrape.yaml's {RULES.name} differs from {RULES}"
    )


def test_promtool_accepts_the_k8s_rules(promtool: str, tmp_path: Path) -> None:
    data = _k8s_prometheus_configmap()["data"]
    path = tmp_path / RULES.name
    path.write_text(data[RULES.name])
    result = _promtool(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_config_with_its_rules(promtool: str) -> None:
    # `check config` also loads and checks every rule file the configuration names.
    result = _promtool(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert RULES.name in result.stdout, result.stdout
