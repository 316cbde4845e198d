"""deploy/alertmanager/alertmanager.yml: accepted by amtool, routes by severity, holds no secret.

Debian 12's amtool (Alertmanager 0.25, installed by the ``amtool`` fixture) checks the file
with ``amtool check-config`` (its templates included) and its routing tree with ``amtool
config routes test``, which works offline from the file: every alert of
deploy/prometheus/alerts.yml, with its severity, must reach the receivers of that severity
(pages: Microsoft Teams and Slack; the rest: Slack). Teams goes through a webhook receiver,
because 0.25 has no Teams integration: the native form of docs/DEPLOYMENT.md is checked by
amtool 0.27 or later, and 0.25 must refuse it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._files import DEPLOY, DEPLOYMENT_DOC, ROOT, load_yaml, markdown_section

ALERTMANAGER = DEPLOY / "alertmanager"
CONFIG = ALERTMANAGER / "alertmanager.yml"
RULES = DEPLOY / "prometheus" / "alerts.yml"
SECTION = "## 11. Alerting: the rules, the SLO, Alertmanager"
SLACK = "slack-fastapi-errors"
TEAMS = "msteams-oncall"
# The receivers of each severity, in the order amtool prints them.
RECEIVERS = {"critical": [TEAMS, SLACK], "warning": [SLACK], "info": [SLACK]}
# Hosts of webhook URLs that embed their secret: never in the file, only in mounted files.
SECRET_HOSTS = ("hooks.slack.com", "webhook.office.com", "outlook.office.com", "logic.azure.com")
SECRETS_DIR = Path("/etc/alertmanager/secrets")


def _amtool(amtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _config() -> dict[str, Any]:
    return dict(load_yaml(CONFIG))


def _alerts() -> list[tuple[str, str]]:
    """(alert name, severity) of every alerting rule of alerts.yml."""
    groups = load_yaml(RULES)["groups"]
    rules = [r for g in groups for r in g["rules"] if "alert" in r]
    return sorted({(r["alert"], r["labels"]["severity"]) for r in rules})


def test_amtool_accepts_the_config(amtool: str) -> None:
    result = _amtool(amtool, "check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    receivers = {r["name"] for r in _config()["receivers"]}
    assert f" - {len(receivers)} receivers" in result.stdout, result.stdout
    assert " - 1 templates" in result.stdout, result.stdout


def test_amtool_checks_the_templates(amtool: str, tmp_path: Path) -> None:
    # check-config parses the templates the file names: a broken one is refused.
    shutil.copytree(ALERTMANAGER, tmp_path, dirs_exist_ok=True)
    template = tmp_path / "templates" / "fastapi-errors.tmpl"
    template.write_text(template.read_text().replace("{{- end }}", "", 1))
    result = _amtool(amtool, "check-config", str(tmp_path / CONFIG.name))
    assert result.returncode != 0, result.stdout


def _routes_test(amtool: str, *labels: str) -> list[str]:
    result = _amtool(amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


@pytest.mark.parametrize(("alert", "severity"), _alerts(), ids=lambda value: str(value))
def test_every_alert_reaches_the_receivers_of_its_severity(
    amtool: str, alert: str, severity: str
) -> None:
    labels = (f"alertname={alert}", f"severity={severity}", "job=fastapi-errors")
    assert _routes_test(amtool, *labels) == RECEIVERS[severity]
    # amtool's own check of the same: non-zero when the receivers differ.
    verify = f"--verify.receivers={','.join(RECEIVERS[severity])}"
    result = _amtool(amtool, "config", "routes", "test", f"--config.file={CONFIG}", verify, *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_other_services_alerts_do_not_page_through_this_tree(amtool: str) -> None:
    assert _routes_test(amtool, "alertname=KubePodCrashLooping", "severity=critical") == [SLACK]


def test_every_severity_has_its_receivers_and_every_receiver_is_used() -> None:
    assert {severity for _alert, severity in _alerts()} <= set(RECEIVERS)
    receivers = {r["name"] for r in _config()["receivers"]}
    assert receivers == {name for names in RECEIVERS.values() for name in names}


def test_no_secret_is_in_the_config() -> None:
    config = _config()
    text = CONFIG.read_text("utf-8")
    for host in SECRET_HOSTS:
        assert host not in text, host
    assert not {k for k in config.get("global", {}) if k.endswith(("_url", "_key", "_password"))}
    receivers = {r["name"]: r for r in config["receivers"]}
    # Slack's URL (its secret) from a file, mounted from a Secret: <dir>/<Secret>/<key>.
    (slack,) = receivers[SLACK]["slack_configs"]
    assert "api_url" not in slack
    url_file = Path(slack["api_url_file"])
    assert url_file.parent.parent == SECRETS_DIR
    # Teams through a bridge's in-cluster address: no secret in it.
    (teams,) = receivers[TEAMS]["webhook_configs"]
    assert re.fullmatch(r"http://[a-z0-9-]+\.[a-z0-9-]+\.svc(:\d+)?/[\w-]+", teams["url"])


def test_inhibit_rules_name_alerts_that_exist() -> None:
    alerts = dict(_alerts())
    names = {name for name, _severity in _alerts()}
    for rule in _config()["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            parsed = re.fullmatch(r'(\w+)="([^"]*)"', matcher)
            assert parsed, matcher
            label, value = parsed.groups()
            if label == "alertname":
                assert value in names, matcher
            elif label == "severity":
                assert value in alerts.values(), matcher
        assert "job" in rule["equal"]


def _documented_teams_receiver() -> dict[str, Any]:
    """The native Microsoft Teams receiver docs/DEPLOYMENT.md shows for Alertmanager 0.27+."""
    section = markdown_section(DEPLOYMENT_DOC.read_text("utf-8"), SECTION)
    blocks = re.findall(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    (block,) = [b for b in blocks if "msteams_configs" in b]
    (receiver,) = yaml.safe_load(block)["receivers"]
    return dict(receiver)


def _amtool_version(amtool: str) -> tuple[int, ...]:
    result = _amtool(amtool, "--version")
    found = re.search(r"version (\d+)\.(\d+)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    return tuple(int(part) for part in found.groups())


def test_the_documented_native_teams_receiver(amtool: str, tmp_path: Path) -> None:
    receiver = _documented_teams_receiver()
    assert receiver["name"] == TEAMS
    (teams,) = receiver["msteams_configs"]
    assert "webhook_url" not in teams
    assert Path(teams["webhook_url_file"]).parent.parent == SECRETS_DIR
    # The shipped configuration with its webhook receiver replaced by the documented one.
    shutil.copytree(ALERTMANAGER, tmp_path, dirs_exist_ok=True)
    config = _config()
    config["receivers"] = [r if r["name"] != TEAMS else receiver for r in config["receivers"]]
    path = tmp_path / CONFIG.name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = _amtool(amtool, "check-config", str(path))
    if _amtool_version(amtool) >= (0, 27):
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        # Debian 12's 0.25: no Teams integration, hence the webhook receiver in the file.
        assert result.returncode != 0, result.stdout
        assert "msteams_configs" in result.stdout + result.stderr
