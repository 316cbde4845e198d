"""Loading the deployment files of the repository."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests._servers import repo_root

ROOT: Path = repo_root()
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
APP_JOB = "fastapi-errors"
DEPLOYMENT_DOC = ROOT / "docs" / "DEPLOYMENT.md"

Manifest = dict[str, Any]


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_all(path: Path) -> list[Any]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def gunicorn_settings() -> dict[str, Any]:
    """The module globals of deploy/gunicorn.conf.py, as gunicorn reads them."""
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def app_job(config: dict[str, Any]) -> dict[str, Any]:
    """The scrape job of the service in a Prometheus configuration."""
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == APP_JOB]
    assert len(jobs) == 1, f"expected one job {APP_JOB!r}, found {len(jobs)}"
    return dict(jobs[0])


def job_targets(job: dict[str, Any]) -> list[str]:
    """Every static target of a scrape job."""
    return [t for group in job.get("static_configs", []) for t in group["targets"]]


def kustomization() -> dict[str, Any]:
    """deploy/k8s/kustomization.yaml."""
    return dict(load_yaml(K8S / "kustomization.yaml"))


def k8s_manifests() -> list[Manifest]:
    """What ``kubectl kustomize deploy/k8s`` renders, read in Python: every document of every
    resource the kustomization lists, in order, each in the kustomization's namespace.

    The kustomization only lists files and sets a namespace the files already carry (checked
    by tests/deploy/test_k8s.py), so this is the whole rendering; test_k8s.py compares it with
    kubectl's own wherever kubectl is installed.
    """
    resources = kustomization()["resources"]
    return [doc for name in resources for doc in load_yaml_all(K8S / name)]


def markdown_section(text: str, heading: str) -> str:
    """The text under the Markdown heading *heading* (a whole line), up to the next heading
    of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == heading]
    assert len(starts) == 1, f"expected one heading {heading!r}, found {len(starts)}"
    start = starts[0] + 1
    end = next(
        (i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])),
        len(lines),
    )
    return "".join(lines[start:end])


_SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.S | re.M)


def shell_blocks(text: str) -> list[str]:
    """The bodies of the fenced bash/sh blocks of Markdown *text*, in order."""
    return _SHELL_BLOCK.findall(text)


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    """The pod template's spec of a workload (Deployment, StatefulSet, ...); None otherwise."""
    template = manifest.get("spec", {}).get("template")
    return None if template is None else dict(template["spec"])


def _credentials_files(pod: dict[str, Any], configmaps: dict[str, Manifest]) -> list[str]:
    """The credentials_file of every scrape job of the Prometheus configurations a pod mounts."""
    files: list[str] = []
    for volume in pod.get("volumes", []):
        if "configMap" not in volume:
            continue
        data = configmaps[volume["configMap"]["name"]].get("data", {})
        if "prometheus.yml" in data:
            config = yaml.safe_load(data["prometheus.yml"])
            for job in config.get("scrape_configs", []):
                credentials = job.get("authorization", {}).get("credentials_file")
                if credentials:
                    files.append(credentials)
    return files


def secret_references(manifests: list[Manifest]) -> dict[tuple[str, str], set[str]]:
    """Every Secret the workloads read, as (namespace, name) -> the keys they read.

    The keys: ``env[].valueFrom.secretKeyRef``; ``envFrom[].secretRef`` reads a whole Secret
    (no key named); a Secret volume is one file per key under its mountPath, and the keys it
    is read for are the files a mounted Prometheus configuration names (credentials_file).
    """
    configmaps = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ConfigMap"}
    refs: dict[tuple[str, str], set[str]] = {}
    for manifest in manifests:
        pod = pod_spec(manifest)
        if pod is None:
            continue
        namespace = manifest["metadata"]["namespace"]
        containers = pod.get("initContainers", []) + pod["containers"]
        for container in containers:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.setdefault((namespace, ref["name"]), set()).add(ref["key"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    refs.setdefault((namespace, source["secretRef"]["name"]), set())
        files = _credentials_files(pod, configmaps)
        for volume in pod.get("volumes", []):
            if "secret" not in volume:
                continue
            name = volume["secret"]["secretName"]
            keys = refs.setdefault((namespace, name), set())
            mounts = [
                Path(m["mountPath"])
                for c in containers
                for m in c.get("volumeMounts", [])
                if m["name"] == volume["name"]
            ]
            for file in map(Path, files):
                keys.update(file.name for mount in mounts if file.parent == mount)
    return refs


def run_documented(section: str, stubs: str, calls_dir: Path) -> list[Any]:
    """Run the shell blocks of DEPLOYMENT.md's *section* in bash after *stubs*.

    The stubs append one JSON line per stubbed call to the file named by ``$CALLS`` (``$PY``
    is this Python); returns those lines, decoded, in order.
    """
    blocks = shell_blocks(markdown_section(DEPLOYMENT_DOC.read_text("utf-8"), section))
    assert blocks, f"no shell block under {section!r} of {DEPLOYMENT_DOC.name}"
    calls_file = calls_dir / "calls.jsonl"
    calls_file.touch()
    result = subprocess.run(
        ["bash", "-c", stubs + "\n".join(blocks)],
        cwd=ROOT,
        env={**os.environ, "CALLS": str(calls_file), "PY": sys.executable},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"the documented commands failed:\n{result.stderr}"
    return [json.loads(line) for line in calls_file.read_text().splitlines()]
