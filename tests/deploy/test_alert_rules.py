"""deploy/prometheus/alerts.yml: valid rules (promtool), tested (promtool), shipped everywhere.

``promtool test rules alerts.test.yml alerts.days.test.yml`` (from deploy/prometheus/) replays
series as a scrape of the one Service target would store them and checks that each alert
fires when it should and stays quiet when it should not: alerts.test.yml for the fleet's own
health and the 5xx spike, alerts.days.test.yml for the rules whose windows are days long (the
SLO's multiwindow, multi-burn-rate alerts, a new error code). The tests here also make sure
that every alert (every variant of it) has both cases, that a broken rule makes them fail,
that the burn-rate alerts are the SRE workbook's and share one SLO, that the rules only use
series the service exports, and that every deployment loads the file.
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
from tests.deploy._files import DEPLOY, DEPLOYMENT_DOC, K8S, ROOT, app_job, load_yaml, load_yaml_all
from tests.deploy._sync_rules import COMMAND as SYNC_COMMAND
from tests.examples._client import samples
from tests.examples._registry import example

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = [PROMETHEUS / "alerts.test.yml", PROMETHEUS / "alerts.days.test.yml"]
GROUPS = ["fastapi-error-codes", "fastapi-error-codes-slo"]
SEVERITIES = {"critical", "warning", "info"}
BUDGET = "fastapi:slo_error_budget:ratio"
RATIO = "route:fastapi_request_errors:ratio_rate{}"
# The SRE workbook's multiwindow, multi-burn-rate alerts (30-day SLO period):
# (burn rate, long window, short window, severity).
WORKBOOK = {
    ("14.4", "1h", "5m", "critical"),
    ("6", "6h", "30m", "critical"),
    ("3", "1d", "2h", "warning"),
    ("1", "3d", "6h", "warning"),
}
WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]


def _promtool(promtool: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _groups() -> list[dict[str, Any]]:
    groups = load_yaml(RULES)["groups"]
    assert [g["name"] for g in groups] == GROUPS
    return list(groups)


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _groups() for rule in group["rules"]]


def _alert_rules() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def _alerts() -> dict[str, list[dict[str, Any]]]:
    """Alert name -> its rules (the burn-rate alert has one per pair of windows)."""
    alerts: dict[str, list[dict[str, Any]]] = {}
    for rule in _alert_rules():
        alerts.setdefault(rule["alert"], []).append(rule)
    return alerts


def _records() -> dict[str, str]:
    return {r["record"]: r["expr"] for r in _rules() if "record" in r}


def _rule_tests() -> list[dict[str, Any]]:
    """Every test group of the promtool test files."""
    groups: list[dict[str, Any]] = []
    for path in RULE_TESTS:
        tests = load_yaml(path)
        assert tests["rule_files"] == [RULES.name], path
        groups.extend(tests["tests"])
    return groups


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout, result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    # Run from the files' folder, as documented: rule_files are relative to the test files.
    result = _promtool(promtool, "test", "rules", *(p.name for p in RULE_TESTS), cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def _test_groups_of(alert: str) -> dict[str, dict[str, Any]]:
    """The promtool test files, each with only its test groups that test *alert*."""
    files = {}
    for path in RULE_TESTS:
        tests = load_yaml(path)
        groups = [
            group
            for group in tests["tests"]
            if any(case["alertname"] == alert for case in group.get("alert_rule_test", []))
        ]
        if groups:
            files[path.name] = {**tests, "tests": groups}
    assert files, f"no test of {alert}"
    return files


_SPIKE_RESET_GUARD = """\
          unless on (job)
          (sum by (job) (resets(fastapi_requests_total{job="fastapi-errors"}[5m])) > 0)
"""
_SPIKE_ZERO = """\
              or
              0 * sum by (job) (rate(fastapi_requests_total{job="fastapi-errors"}[1h] offset 5m))
"""
_NEW_CODE_BY_ROUTE = (
    "              or\n"
    "              sum by (job, error_code, error_name) "
    '(fastapi_errors_by_route_total{job="fastapi-errors",error_code!="other"})\n'
)
_NEW_CODE_GUARD = """\
          and on (job)
          max by (job) (max_over_time(fastapi_errors_total{job="fastapi-errors"}[15m] offset 1d))
"""


@pytest.mark.parametrize(
    ("text", "broken", "alert"),
    [
        (
            "expr: fastapi_errors_flush_age_seconds > 6\n",
            "expr: fastapi_errors_flush_age_seconds > 600\n",
            "FastapiErrorsFlushStale",
        ),
        # The target-down alert: only the scrape job's target, and only when it is down.
        ('expr: up{job="fastapi-errors"} == 0\n', "expr: up == 0\n", "FastapiErrorsScrapeFailing"),
        (
            'expr: up{job="fastapi-errors"} == 0\n',
            'expr: up{job="fastapi-errors"} < 0\n',
            "FastapiErrorsScrapeFailing",
        ),
        # The SLO: a budget 10 times as large (99%) leaves the outages unpaged.
        ("expr: vector(1 - 0.999)\n", "expr: vector(1 - 0.99)\n", "FastapiErrorsErrorBudgetBurn"),
        # The page's short window: without the 5m one, it would not resolve when errors stop.
        (
            "ratio_rate5m / on () group_left () fastapi:slo_error_budget:ratio > 14.4",
            "ratio_rate30m / on () group_left () fastapi:slo_error_budget:ratio > 14.4",
            "FastapiErrorsErrorBudgetBurn",
        ),
        # 4xx responses are the clients' errors: counted, the 1h ratio would page.
        (
            'rate(fastapi_requests_total{job="fastapi-errors",status_class="5xx"}[1h])',
            'rate(fastapi_requests_total{job="fastapi-errors",status_class=~"4xx|5xx"}[1h])',
            "FastapiErrorsErrorBudgetBurn",
        ),
        # A Redis data loss is no spike; a first 5xx ever is one.
        (_SPIKE_RESET_GUARD, "", "FastapiErrorsServerErrorSpike"),
        (_SPIKE_ZERO, "              or vector(0)\n", "FastapiErrorsServerErrorSpike"),
        # On a new deployment every code is new: none is reported until a day was watched.
        (_NEW_CODE_GUARD, "", "FastapiErrorsNewErrorCode"),
        # Undeclared errors (a middleware's 429) only show in the per-route counter.
        (_NEW_CODE_BY_ROUTE, "", "FastapiErrorsNewErrorCode"),
    ],
    ids=[
        "flush-stale-threshold",
        "target-down-any-job",
        "target-down-never",
        "slo-99",
        "page-without-5m-window",
        "ratio-counts-4xx",
        "spike-on-counter-reset",
        "spike-needs-a-5xx-history",
        "new-code-on-a-new-deployment",
        "new-code-ignores-undeclared",
    ],
)
def test_promtool_unit_tests_can_fail(
    promtool: str, tmp_path: Path, text: str, broken: str, alert: str
) -> None:
    # The test files really check something: with one rule changed, the tests of that alert
    # fail (only those run: replaying days of history for every change would be slow).
    rules = RULES.read_text()
    assert rules.count(text) == 1, text
    (tmp_path / RULES.name).write_text(rules.replace(text, broken))
    files = _test_groups_of(alert)
    for name, tests in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(tests, sort_keys=False))
    assert _promtool(promtool, "check", "rules", RULES.name, cwd=tmp_path).returncode == 0
    result = _promtool(promtool, "test", "rules", *files, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    # The failure is that alert's, or a value its test groups check (an `expr:`).
    assert re.search(rf"alertname: {alert}\b|expr: ", result.stdout + result.stderr), result.stdout


def test_the_scrape_job_has_a_target_down_alert() -> None:
    # up == 0 for the one target of the service's scrape job: the alert that fires when the
    # fleet cannot be observed at all (Redis down: 503, a wrong token: 401, no ready pod).
    job = app_job(load_yaml(PROMETHEUS / "prometheus.yml"))["job_name"]
    target_down = f'up{{job="{job}"}} == 0'
    down = [rule for rule in _alert_rules() if rule["expr"] == target_down]
    assert [rule["alert"] for rule in down] == ["FastapiErrorsScrapeFailing"]
    assert down[0]["labels"]["severity"] == "critical"
    assert target_down in DEPLOYMENT_DOC.read_text("utf-8")


def _fired(case: dict[str, Any], rule: dict[str, Any]) -> bool:
    """Whether an alert_rule_test case shows this rule firing (its name and labels)."""
    wanted = {k: str(v) for k, v in rule["labels"].items()}
    return case["alertname"] == rule["alert"] and any(
        wanted.items() <= {k: str(v) for k, v in alert["exp_labels"].items()}.items()
        for alert in case.get("exp_alerts") or []
    )


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [case for group in _rule_tests() for case in group.get("alert_rule_test", [])]
    alerts = _alerts()
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert set(alerts) - quiet == set(), "alerts never shown quiet"
    assert {case["alertname"] for case in cases} <= set(alerts), "tests of alerts that do not exist"
    # Every rule: the burn-rate alert's four (one per pair of windows) each.
    never = [
        (rule["alert"], rule["labels"])
        for rule in _alert_rules()
        if not any(_fired(case, rule) for case in cases)
    ]
    assert never == [], "alert rules never shown firing"


def test_every_alert_has_a_severity_and_says_what_to_do() -> None:
    for rule in _alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"FastapiErrors[A-Z][A-Za-z]+", name), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"]) > 40, name
    # Rules of one name differ in their labels: Alertmanager would merge identical ones.
    for name, rules in _alerts().items():
        labels = [tuple(sorted(rule["labels"].items())) for rule in rules]
        assert len(set(labels)) == len(labels), name


def test_the_burn_rate_alerts_are_the_sre_workbooks() -> None:
    # The ratio of 5xx responses per route, over each window, recorded once.
    records = _records()
    for window in WINDOWS:
        expr = records[RATIO.format(window)]
        selectors = re.findall(r"rate\((fastapi_requests_total\{[^}]*\})\[(\w+)\]\)", expr)
        assert selectors == [
            ('fastapi_requests_total{job="fastapi-errors",status_class="5xx"}', window),
            ('fastapi_requests_total{job="fastapi-errors"}', window),
        ], expr
        assert expr.count("sum by (job, route, method)") == 2, expr
    assert set(records) == {BUDGET} | {RATIO.format(w) for w in WINDOWS}
    # Each page and ticket: its burn rate over its long AND its short window.
    found = set()
    for rule in _alerts()["FastapiErrorsErrorBudgetBurn"]:
        labels = rule["labels"]
        pairs = re.findall(
            rf"{re.escape(RATIO.format(''))}(\w+) / on \(\) group_left \(\) {BUDGET} > ([\d.]+)",
            rule["expr"],
        )
        assert len(pairs) == 2, rule["expr"]
        (long, rate), (short, short_rate) = pairs
        assert rate == short_rate, rule["expr"]
        assert (labels["long_window"], labels["short_window"]) == (long, short)
        assert re.search(r"\)\s+and\s+\(", rule["expr"]) and "for" not in rule
        found.add((rate, long, short, labels["severity"]))
    assert found == WORKBOOK


def test_the_slo_is_set_in_one_place() -> None:
    # The SLO (99.9% by default) is one recording rule: every burn-rate alert divides by it,
    # no rule carries the budget as a number, and the documentation says how to change it.
    assert _records()[BUDGET] == "vector(1 - 0.999)"
    for rule in _alerts()["FastapiErrorsErrorBudgetBurn"]:
        assert rule["expr"].count(BUDGET) == 2
    for rule in _rules():
        if rule.get("record") != BUDGET:
            assert not re.search(r"0\.99|0\.001\b", rule["expr"]), rule
    doc = DEPLOYMENT_DOC.read_text("utf-8")
    assert BUDGET in doc and "vector(1 - 0.999)" in doc and "99.9%" in doc


# The service's series: fastapi_*, not the names of recording rules (level:name:operation).
_METRIC = re.compile(r"(?<![\w:])(fastapi_\w+)(?![\w:])")
_RECORDED = re.compile(r"\b(\w+:\w+:\w+)\b")


def test_rules_use_only_fleet_wide_series_the_service_exports() -> None:
    # Per-process series (fastapi_errors_worker_*) would alternate between workers behind the
    # one target; the rules must use the fleet's series, and only ones that exist.
    app = example("app").create_app(MetricsConfig.testing())
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/users/1")
        client.get("/users/7")  # 404, error code 301
        exported = samples(client.get("/metrics").text)
    names = {name for name, _labels in exported}
    used = {m for rule in _rules() for m in _METRIC.findall(rule["expr"])}
    assert used, "no rule uses the service's series"
    assert not {m for m in used if m.startswith("fastapi_errors_worker_")}
    assert used <= names, f"not exported: {sorted(used - names)}"
    # The labels the rules select and aggregate by are the ones exported.
    for metric, labels in (
        ("fastapi_requests_total", {"route", "method", "status_class"}),
        ("fastapi_errors_by_route_total", {"error_code", "error_name", "route", "method"}),
        ("fastapi_errors_by_code", {"error_code", "error_name"}),
    ):
        series = [dict(ls) for name, ls in exported if name == metric]
        assert series and all(labels <= set(s) for s in series), (metric, series)
    requests = [dict(ls) for name, ls in exported if name == "fastapi_requests_total"]
    assert {"2xx", "4xx"} <= {labels["status_class"] for labels in requests}, requests
    # Recording rules used are recorded here; counter functions only over counters (_total).
    records = set(_records())
    for rule in _rules():
        assert set(_RECORDED.findall(rule["expr"])) <= records, rule
        for fn, metric in re.findall(r"\b(increase|resets|rate)\((fastapi_\w+)", rule["expr"]):
            assert metric.endswith("_total"), (rule.get("alert", rule.get("record")), fn, metric)


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
        f"deploy/k8s/prometheus-scrape.yaml's {RULES.name} differs from {RULES}: "
        f"run `{SYNC_COMMAND}`"
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
