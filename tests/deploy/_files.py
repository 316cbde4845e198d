"""Loading the deployment files of the repository."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import yaml

from tests._servers import repo_root

ROOT: Path = repo_root()
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
APP_JOB = "fastapi-errors"


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
