"""deploy/k8s/: the manifests parse and refer to each other consistently.

Above all: Prometheus scrapes the fleet once, through the Service, because every replica
answers /metrics with the totals of the whole fleet.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env
from tests.deploy._files import K8S, app_job, gunicorn_settings, job_targets, load_yaml_all
from tests.examples._registry import example

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "kustomization.yaml must list every manifest"
    docs = [doc for name in listed for doc in load_yaml_all(K8S / name)]
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kustomization["namespace"], doc["metadata"]
    return docs


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


APP = "fastapi-errors-example"


def app_container(manifests: list[Manifest]) -> Manifest:
    deployment = one(manifests, "Deployment", APP)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_deployment_runs_several_replicas_selected_by_its_labels(
    manifests: list[Manifest],
) -> None:
    deployment = one(manifests, "Deployment", APP)
    assert deployment["spec"]["replicas"] >= 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_service_selects_the_pods_and_targets_their_port(manifests: list[Manifest]) -> None:
    service = one(manifests, "Service", APP)
    pod_labels = one(manifests, "Deployment", APP)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    container_ports = {p["name"]: p["containerPort"] for p in app_container(manifests)["ports"]}
    target = port["targetPort"]
    assert target in container_ports or target in container_ports.values()


def test_config_and_secret_are_the_ones_the_pods_read(manifests: list[Manifest]) -> None:
    env_from = app_container(manifests)["envFrom"]
    config_name = next(e["configMapRef"]["name"] for e in env_from if "configMapRef" in e)
    secret_name = next(e["secretRef"]["name"] for e in env_from if "secretRef" in e)
    config = one(manifests, "ConfigMap", config_name)["data"]
    secret = one(manifests, "Secret", secret_name)["stringData"]
    assert {"FEC_REDIS_URL", "FEC_AUTH_TOKEN"} <= set(secret)
    assert not {"FEC_REDIS_URL", "FEC_AUTH_TOKEN"} & set(config), "secrets belong in the Secret"
    # What the library will build from the pod's environment: valid, Redis on, token on.
    metrics = get_config_from_env({**config, **secret})
    assert metrics.redis_url and metrics.auth_token


def test_redis_url_points_at_the_redis_service(manifests: list[Manifest]) -> None:
    secret = one(manifests, "Secret", "fastapi-errors-secrets")["stringData"]
    host_port = secret["FEC_REDIS_URL"].split("://", 1)[1].split("/")[0]
    host, _, port = host_port.rpartition(":")
    name, namespace = host.split(".")[:2]
    redis = one(manifests, "Service", name)
    assert redis["metadata"]["namespace"] == namespace
    assert int(port) in [p["port"] for p in redis["spec"]["ports"]]


def test_probes_use_an_unprotected_route_of_the_app(manifests: list[Manifest]) -> None:
    container = app_container(manifests)
    paths = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    routes = {getattr(r, "path", None) for r in example("app").app.routes}
    assert paths <= routes
    assert not paths & {MetricsConfig().metrics_path}  # /metrics wants the token


def test_command_and_shutdown_budget(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = app_container(manifests)
    command = container["command"]
    assert command[0] == "gunicorn"
    assert command[command.index("--config") + 1] == "deploy/gunicorn.conf.py"
    assert command[-1] == "examples.app:app"
    env_from = container["envFrom"]
    config_name = next(e["configMapRef"]["name"] for e in env_from if "configMapRef" in e)
    for key, value in one(manifests, "ConfigMap", config_name)["data"].items():
        monkeypatch.setenv(key, value)
    settings = gunicorn_settings()  # as the pod's gunicorn reads it
    assert settings["workers"] == 4
    assert settings["worker_class"] == "uvicorn_worker.UvicornWorker"
    pod = one(manifests, "Deployment", APP)["spec"]["template"]["spec"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The kubelet's SIGKILL must come after the preStop sleep and gunicorn's graceful
    # shutdown, which holds every worker's final flush.
    budget = int(pre_stop[1]) + settings["graceful_timeout"]
    assert pod["terminationGracePeriodSeconds"] > budget


def test_nothing_invites_per_pod_scraping(manifests: list[Manifest]) -> None:
    for manifest in manifests:
        for meta in (
            manifest["metadata"],
            manifest.get("spec", {}).get("template", {}).get("metadata", {}),
        ):
            annotations = meta.get("annotations") or {}
            assert annotations.get("prometheus.io/scrape", "false") == "false", meta
    assert not [m for m in manifests if m["kind"] in ("ServiceMonitor", "PodMonitor")]


def _scrape_config(manifests: list[Manifest]) -> dict[str, Any]:
    configmap = one(manifests, "ConfigMap", "prometheus-fastapi-errors")
    return dict(yaml.safe_load(configmap["data"]["prometheus.yml"]))


def test_prometheus_scrapes_the_service_once(manifests: list[Manifest]) -> None:
    job = app_job(_scrape_config(manifests))
    service = one(manifests, "Service", APP)
    (port,) = service["spec"]["ports"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    # Exactly one target, the Service's DNS name and port; no discovery of pods/endpoints.
    assert job_targets(job) in (
        [f"{name}.{namespace}.svc:{port['port']}"],
        [f"{name}.{namespace}.svc.cluster.local:{port['port']}"],
    )
    assert not any(key.endswith("_sd_configs") for key in job)
    assert job.get("metrics_path", "/metrics") == MetricsConfig().metrics_path


def test_prometheus_sends_the_token_of_the_secret(manifests: list[Manifest]) -> None:
    job = app_job(_scrape_config(manifests))
    credentials = Path(job["authorization"]["credentials_file"])
    assert job["authorization"].get("type", "Bearer") == "Bearer"
    # Mounting the Secret as a volume makes one file per key: the file name is the key.
    secret = one(manifests, "Secret", "fastapi-errors-secrets")
    assert credentials.name == "FEC_AUTH_TOKEN"
    assert credentials.name in secret["stringData"]


def test_promtool_accepts_the_scrape_config(
    manifests: list[Manifest], tmp_path: Path, promtool: str
) -> None:
    config = _scrape_config(manifests)
    # The ConfigMap is mounted as a folder: its other keys (the rule files) lie beside.
    configmap = one(manifests, "ConfigMap", "prometheus-fastapi-errors")["data"]
    for rule_file in config.get("rule_files", []):
        (tmp_path / rule_file).write_text(configmap[rule_file])
    token = tmp_path / "FEC_AUTH_TOKEN"
    token.write_text("a-token-for-promtool-only")
    app_job_index = [j["job_name"] for j in config["scrape_configs"]].index("fastapi-errors")
    config["scrape_configs"][app_job_index]["authorization"]["credentials_file"] = str(token)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
