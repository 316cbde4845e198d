"""docs/DEPLOYMENT.md, section 11 (alerting): the documented commands are the ones that work.

The fenced shell blocks of the section run in bash from the repository's root, with
``kubectl``, ``promtool`` and ``amtool`` replaced by shell functions that record their
arguments and working directory. Then: the promtool commands are exactly those the suite
runs (tests/deploy/test_alert_rules.py), the amtool commands run for real and succeed, the
Operator's folder is the one applied, and the Secret created for Alertmanager has the name
and key alertmanager.yml reads its Slack URL from (``kubectl create secret --dry-run=client``
builds it, no cluster needed). The section also lists every alert of alerts.yml.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy._files import (
    DEPLOY,
    DEPLOYMENT_DOC,
    K8S,
    ROOT,
    load_yaml,
    markdown_section,
    run_documented,
)

SECTION = "## 11. Alerting: the rules, the SLO, Alertmanager"
PROMETHEUS = DEPLOY / "prometheus"
RULE_TESTS = ["alerts.test.yml", "alerts.days.test.yml"]
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"

# Each stub appends {"argv": [...], "cwd": "..."} as a JSON line to the file named by $CALLS.
_STUBS = """\
set -euo pipefail
_record() {
  "$PY" -c 'import json, os, sys; print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd()}))' \\
    "$@" >>"$CALLS"
}
kubectl() { _record kubectl "$@"; }
promtool() { _record promtool "$@"; }
amtool() { _record amtool "$@"; }
"""

Call = tuple[str, list[str], Path]  # (tool, arguments, working directory)


def _section() -> str:
    return markdown_section(DEPLOYMENT_DOC.read_text("utf-8"), SECTION)


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[Call]:
    recorded = run_documented(SECTION, _STUBS, tmp_path_factory.mktemp("alerting-docs"))
    return [(c["argv"][0], c["argv"][1:], Path(c["cwd"])) for c in recorded]


def _of(calls: list[Call], tool: str) -> list[tuple[list[str], Path]]:
    return [(args, cwd) for name, args, cwd in calls if name == tool]


def test_the_documented_promtool_commands_are_the_suites(calls: list[Call]) -> None:
    assert _of(calls, "promtool") == [
        (["check", "rules", "alerts.yml"], PROMETHEUS),
        (["test", "rules", *RULE_TESTS], PROMETHEUS),
    ]
    assert all((PROMETHEUS / name).is_file() for name in RULE_TESTS)


def test_the_documented_amtool_commands_succeed(calls: list[Call], amtool: str) -> None:
    documented = _of(calls, "amtool")
    assert [args[:2] for args, _cwd in documented] == [
        ["check-config", str(ALERTMANAGER_CONFIG.relative_to(ROOT))],
        ["config", "routes"],
    ]
    for args, cwd in documented:
        result = subprocess.run(
            [amtool, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, f"amtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def _kubectl_calls(calls: list[Call]) -> list[list[str]]:
    return [args for args, cwd in _of(calls, "kubectl") if cwd == ROOT]


def test_the_operator_folder_is_applied(calls: list[Call]) -> None:
    applies = [args for args in _kubectl_calls(calls) if args[:2] == ["apply", "-k"]]
    assert len(applies) == 1
    assert (ROOT / applies[0][2]).resolve() == (K8S / "operator").resolve()


def test_the_slack_secret_is_the_one_alertmanager_reads(calls: list[Call], kubectl: str) -> None:
    (create,) = [args for args in _kubectl_calls(calls) if "create" in args]
    (slack,) = [
        c for r in load_yaml(ALERTMANAGER_CONFIG)["receivers"] for c in r.get("slack_configs", [])
    ]
    url_file = Path(slack["api_url_file"])
    result = subprocess.run(
        [kubectl, *create, "--dry-run=client", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "KUBECONFIG": os.devnull},  # never a real cluster
    )
    assert result.returncode == 0, result.stderr
    secret = json.loads(result.stdout)
    # Mounted at /etc/alertmanager/secrets/<name>/, one file per key.
    assert secret["metadata"]["name"] == url_file.parent.name
    assert list(secret["data"]) == [url_file.name]


def test_the_section_lists_every_alert() -> None:
    section = _section()
    groups = load_yaml(PROMETHEUS / "alerts.yml")["groups"]
    names = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    listed = {name for name in names if f"| `{name}` |" in section}
    assert listed == names
