"""The fleet shape: the example service under gunicorn, N uvicorn workers, one Redis.

    FEC_REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.fleet
    # which runs:
    gunicorn -c deploy/gunicorn.conf.py examples.fleet:app

It is ``examples/app.py`` (same errors, same routes), with one difference: it refuses to
start without ``FEC_REDIS_URL``. Without Redis every worker keeps its own in-process counts,
and ``/metrics`` would answer with whichever worker the request happened to reach. With
Redis every worker flushes into the same namespace (``FEC_NAMESPACE``), so any worker, on
any replica, answers with the totals of the whole fleet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI

from examples.app import create_app
from fastapi_error_codes.metrics import MetricsConfig, get_config_from_env

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def fleet_config(environ: Mapping[str, str] | None = None) -> MetricsConfig:
    """The ``FEC_*`` configuration; a clear error when no Redis is configured."""
    config = get_config_from_env(environ)
    if not config.redis_url:
        raise RuntimeError(
            "examples.fleet needs FEC_REDIS_URL (e.g. redis://127.0.0.1:6379/0): several "
            "workers can only report fleet totals through a shared Redis. For one process "
            "without Redis run examples.app instead."
        )
    return config


def gunicorn_argv(workers: int = 4, bind: str = "127.0.0.1:8000") -> list[str]:
    """The gunicorn command line that serves this module."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--workers",
        str(workers),
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--bind",
        bind,
        "examples.fleet:app",
    ]


def create_fleet_app(environ: Mapping[str, str] | None = None) -> FastAPI:
    """The example service on the fleet store."""
    return create_app(fleet_config(environ))


if __name__ == "__main__":  # python -m examples.fleet: become the gunicorn master
    fleet_config()  # fail here, once, rather than in every worker
    argv = gunicorn_argv(
        workers=int(os.environ.get("WEB_CONCURRENCY", "4")),
        bind=os.environ.get("BIND", "127.0.0.1:8000"),
    )
    os.chdir(ROOT)
    os.execv(argv[0], argv)

# What gunicorn imports in every worker (examples.fleet:app).
app = create_fleet_app()
