"""deploy/k8s/: the manifests parse and refer to each other consistently.

Above all: Prometheus scrapes the fleet once, through the Service, because every replica
answers /metrics with the totals of the whole fleet. And no Secret is committed: the app and
Prometheus read Secrets the user creates (tests/deploy/test_k8s_docs.py walks the documented
commands that create them), Prometheus one that holds the token only.

The manifests are read in Python (tests/deploy/_files.py, ``k8s_manifests``); where kubectl is
installed (or can be, from Debian) ``kubectl kustomize`` must render exactly the same.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastapi_error_codes.metrics import MetricsConfig
from tests.deploy._files import (
    DEPLOY,
    K8S,
    ROOT,
    Manifest,
    app_job,
    gunicorn_settings,
    job_targets,
    k8s_manifests,
    kustomization,
    load_yaml_all,
    secret_references,
)
from tests.examples._registry import example

APP_SECRET = "fastapi-errors-secrets"
PROMETHEUS = "prometheus"
SECRET_KEYS = {"FEC_REDIS_URL", "FEC_AUTH_TOKEN"}


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "kustomization.yaml must list every manifest"
    docs = k8s_manifests()
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kustomization()["namespace"], doc["metadata"]
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


def test_no_secret_is_committed_or_generated() -> None:
    # A Secret applied with the kustomization would overwrite the one the user created (and
    # a committed token is public): none in any manifest of deploy/, no secretGenerator.
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        for doc in load_yaml_all(path):
            if isinstance(doc, dict):
                assert doc.get("kind") != "Secret", f"{path.relative_to(ROOT)} holds a Secret"
    assert not {"secretGenerator", "generators"} & set(kustomization())
    assert not (K8S / "secret.yaml").exists()


def test_pods_read_the_redis_url_and_token_from_the_users_secret(
    manifests: list[Manifest],
) -> None:
    container = app_container(manifests)
    config_name = next(e["configMapRef"]["name"] for e in container["envFrom"])
    config = one(manifests, "ConfigMap", config_name)["data"]
    assert not SECRET_KEYS & set(config), "secrets belong in the Secret"
    assert not [e for e in container["envFrom"] if "secretRef" in e], "name the keys read"
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert from_secrets == {key: {"name": APP_SECRET, "key": key} for key in SECRET_KEYS}
    namespace = kustomization()["namespace"]
    assert secret_references(manifests)[(namespace, APP_SECRET)] == SECRET_KEYS
    assert not [m for m in manifests if m["kind"] == "Secret"]


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


def _mounts(pod: dict[str, Any]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each volume a pod's container mounts: name -> (mountPath, the volume)."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    return {
        m["name"]: (Path(m["mountPath"]), volumes[m["name"]]) for m in container["volumeMounts"]
    }


def test_prometheus_runs_the_scrape_config(manifests: list[Manifest]) -> None:
    pod = one(manifests, "Deployment", PROMETHEUS)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config_file = Path(
        next(a for a in container["args"] if a.startswith("--config.file=")).split("=", 1)[1]
    )
    # The ConfigMap is mounted as the configuration's folder: prometheus.yml and the rule
    # files it names (relative to it) are its keys.
    (config_mount,) = [
        (path, volume["configMap"]["name"])
        for path, volume in _mounts(pod).values()
        if "configMap" in volume
    ]
    assert config_mount == (config_file.parent, "prometheus-fastapi-errors")
    data = one(manifests, "ConfigMap", "prometheus-fastapi-errors")["data"]
    assert config_file.name in data
    for rule_file in yaml.safe_load(data[config_file.name])["rule_files"]:
        assert rule_file in data


def test_prometheus_reads_the_token_from_a_secret_of_its_own(manifests: list[Manifest]) -> None:
    job = app_job(_scrape_config(manifests))
    assert job["authorization"].get("type", "Bearer") == "Bearer"
    credentials = Path(job["authorization"]["credentials_file"])
    pod = one(manifests, "Deployment", PROMETHEUS)["spec"]["template"]["spec"]
    secrets = {
        name: (path, volume["secret"])
        for name, (path, volume) in _mounts(pod).items()
        if "secret" in volume
    }
    # Exactly one Secret, mounted where the job reads the token: a Secret volume is one file
    # per key, so the file name is the key. Not the app's Secret with the Redis URL.
    ((path, secret),) = secrets.values()
    assert credentials.parent == path
    assert secret["secretName"] != APP_SECRET
    assert "items" not in secret or [i["key"] for i in secret["items"]] == [credentials.name]
    (container,) = pod["containers"]
    assert not container.get("env") and not container.get("envFrom")
    namespace = one(manifests, "Deployment", PROMETHEUS)["metadata"]["namespace"]
    assert secret_references(manifests)[(namespace, secret["secretName"])] == {credentials.name}


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


def test_kubectl_kustomize_renders_what_the_tests_read(
    manifests: list[Manifest], kubectl: str
) -> None:
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert not [d for d in rendered if d["kind"] == "Secret"]

    def key(doc: Manifest) -> tuple[str, str, str]:
        meta = doc["metadata"]
        return (doc["kind"], meta.get("namespace", ""), meta["name"])

    # kustomize orders by kind; the documents themselves must be the same.
    assert sorted(rendered, key=key) == sorted(manifests, key=key)
