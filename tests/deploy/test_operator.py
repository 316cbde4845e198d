"""deploy/k8s/operator/: the same rules, and the same ONE scrape, for the Prometheus Operator.

The folder is a kustomization of its own, not listed in deploy/k8s/kustomization.yaml: on a
cluster without the Operator's CRDs, kubectl would refuse the whole kustomization. kubectl's
client-side dry run cannot check a custom resource without a cluster that knows its CRD, so
the manifests are parsed and compared with what the rest of deploy/ holds: the
PrometheusRule's groups are alerts.yml's, and the ScrapeConfig scrapes the Service's DNS name
once, as the demo Prometheus's job does, with the same token Secret and job label.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from fastapi_error_codes.metrics import MetricsConfig
from tests.deploy._files import (
    APP_JOB,
    DEPLOY,
    K8S,
    ROOT,
    Manifest,
    app_job,
    job_targets,
    kustomization,
    load_yaml,
    load_yaml_all,
)
from tests.deploy._sync_rules import COMMAND as SYNC_COMMAND

OPERATOR = K8S / "operator"
RULES = DEPLOY / "prometheus" / "alerts.yml"
APP = "fastapi-errors-example"


def _operator_kustomization() -> dict[str, Any]:
    return dict(load_yaml(OPERATOR / "kustomization.yaml"))


def _manifests() -> list[Manifest]:
    resources = _operator_kustomization()["resources"]
    return [doc for name in resources for doc in load_yaml_all(OPERATOR / name)]


def _one(kind: str) -> Manifest:
    (found,) = [m for m in _manifests() if m["kind"] == kind]
    return found


def test_the_operator_folder_is_a_kustomization_of_its_own() -> None:
    listed = _operator_kustomization()["resources"]
    on_disk = sorted(p.name for p in OPERATOR.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    assert not [r for r in kustomization()["resources"] if "operator" in r]
    namespace = kustomization()["namespace"]
    assert _operator_kustomization()["namespace"] == namespace
    kinds = sorted((m["apiVersion"], m["kind"]) for m in _manifests())
    assert kinds == [
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1alpha1", "ScrapeConfig"),
    ]
    for manifest in _manifests():
        assert manifest["metadata"]["namespace"] == namespace


def test_the_prometheus_rule_holds_the_groups_of_alerts_yml() -> None:
    rule = _one("PrometheusRule")
    assert rule["spec"] == load_yaml(RULES), (
        f"{OPERATOR / 'prometheus-rule.yaml'} differs from {RULES}: run `{SYNC_COMMAND}`"
    )


def test_promtool_accepts_the_prometheus_rules(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(_one("PrometheusRule")["spec"]))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _service() -> Manifest:
    (service,) = [
        d
        for d in load_yaml_all(K8S / "service.yaml")
        if d["kind"] == "Service" and d["metadata"]["name"] == APP
    ]
    return service


def _demo_job() -> dict[str, Any]:
    """The service's scrape job of the demo Prometheus (deploy/k8s/prometheus-scrape.yaml)."""
    docs = load_yaml_all(K8S / "prometheus-scrape.yaml")
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    return app_job(yaml.safe_load(configmap["data"]["prometheus.yml"]))


def test_the_scrape_config_scrapes_the_service_once() -> None:
    spec = _one("ScrapeConfig")["spec"]
    service = _service()
    (port,) = service["spec"]["ports"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    # One static target, the Service's DNS name and port: kube-proxy sends each scrape to one
    # ready pod. No discovery of pods or endpoints, which would scrape every pod.
    (static,) = spec["staticConfigs"]
    assert static["targets"] == [f"{name}.{namespace}.svc:{port['port']}"]
    assert not [key for key in spec if key.endswith("SDConfigs")]
    # The same scrape as the demo Prometheus's job, and the job label the rules select.
    job = _demo_job()
    assert static["targets"] == job_targets(job)
    assert static["labels"] == job["static_configs"][0]["labels"]
    assert spec["metricsPath"] == job["metrics_path"] == MetricsConfig().metrics_path
    assert (spec["scrapeInterval"], spec["scrapeTimeout"]) == (
        job["scrape_interval"],
        job["scrape_timeout"],
    )
    assert spec["scheme"] == job["scheme"].upper()
    assert spec["jobName"] == APP_JOB
    assert spec["relabelings"] == [{"targetLabel": "job", "replacement": APP_JOB}]


def test_the_scrape_config_reads_the_token_of_the_demo_prometheus_secret() -> None:
    authorization = _one("ScrapeConfig")["spec"]["authorization"]
    # The demo Prometheus reads /etc/prometheus/secrets/<Secret>/<key>; the Operator takes the
    # Secret by name and key, in the ScrapeConfig's namespace (the one section 6 creates it in).
    credentials_file = Path(_demo_job()["authorization"]["credentials_file"])
    assert authorization == {
        "type": "Bearer",
        "credentials": {"name": credentials_file.parent.name, "key": credentials_file.name},
    }


def test_no_service_monitor_or_pod_monitor_anywhere() -> None:
    # Both scrape every endpoint behind a Service: N copies of the fleet's totals.
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        for doc in load_yaml_all(path):
            if isinstance(doc, dict):
                kind = doc.get("kind")
                assert kind not in ("ServiceMonitor", "PodMonitor"), path.relative_to(ROOT)


def test_kubectl_kustomize_renders_the_operator_folder(kubectl: str) -> None:
    result = subprocess.run(
        [kubectl, "kustomize", str(OPERATOR)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def key(doc: Manifest) -> str:
        return str(doc["kind"])

    assert sorted(rendered, key=key) == sorted(_manifests(), key=key)
