"""Copy deploy/prometheus/alerts.yml into the manifests that embed it.

    .venv/bin/python -m tests.deploy._sync_rules

deploy/prometheus/alerts.yml is the one to edit. Two manifests carry its groups, comments
included: the ConfigMap of deploy/k8s/prometheus-scrape.yaml (key alerts.yml, a file beside
prometheus.yml) and the PrometheusRule of deploy/k8s/operator/prometheus-rule.yaml (its
spec). tests/deploy/test_alert_rules.py and test_operator.py fail while they differ and name
this command.
"""

from __future__ import annotations

import re
import sys
from textwrap import indent

from tests.deploy._files import DEPLOY, K8S

RULES = DEPLOY / "prometheus" / "alerts.yml"
CONFIGMAP = K8S / "prometheus-scrape.yaml"
PROMETHEUS_RULE = K8S / "operator" / "prometheus-rule.yaml"
COMMAND = "python -m tests.deploy._sync_rules"


def rule_groups_text() -> str:
    """alerts.yml from its `groups:` line on (the header comment stays in alerts.yml)."""
    text = RULES.read_text("utf-8")
    start = re.search(r"^groups:$", text, re.M)
    assert start, f"{RULES} has no top-level `groups:`"
    return text[start.start() :]


def _indented(text: str, prefix: str) -> str:
    return indent(text, prefix, lambda line: bool(line.strip()))


def synced_configmap() -> str:
    """prometheus-scrape.yaml with its ConfigMap key alerts.yml replaced by alerts.yml."""
    text = CONFIGMAP.read_text("utf-8")
    key = re.search(r"^  alerts\.yml: \|\n", text, re.M)
    assert key, f"{CONFIGMAP} has no data key `alerts.yml: |`"
    # The block ends at the next line indented less than its content (4 spaces), or the end.
    end = re.compile(r"^(?! {4}|$)", re.M).search(text, key.end())
    tail = text[end.start() :] if end else ""
    return text[: key.end()] + _indented(rule_groups_text(), "    ") + tail


def synced_prometheus_rule() -> str:
    """prometheus-rule.yaml with its spec replaced by the groups of alerts.yml."""
    text = PROMETHEUS_RULE.read_text("utf-8")
    spec = re.search(r"^spec:\n", text, re.M)
    assert spec, f"{PROMETHEUS_RULE} has no `spec:`"
    return text[: spec.end()] + _indented(rule_groups_text(), "  ")


def main() -> int:
    copies = {CONFIGMAP: synced_configmap(), PROMETHEUS_RULE: synced_prometheus_rule()}
    for path, synced in copies.items():
        if path.read_text("utf-8") != synced:
            path.write_text(synced, "utf-8")
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
