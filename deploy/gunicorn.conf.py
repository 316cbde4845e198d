"""gunicorn settings for a fastapi-error-codes service: N uvicorn workers, one Redis.

    gunicorn -c deploy/gunicorn.conf.py examples.app:app

Every value can be overridden on the command line (``--workers 8``) or by the environment
variables read below. The short version of how metrics survive this process model:

* Each worker buffers its errors locally and a background thread flushes them into the
  store (Redis when ``FEC_REDIS_URL`` is set) every ``FEC_FLUSH_INTERVAL_MS``.
* That thread is started lazily *inside* the worker (lifespan startup or first error) and
  the library resets its state after ``fork`` (``os.register_at_fork``), so nothing has to
  be done in ``post_fork`` and ``preload_app = True`` is safe.
* The final flush runs in the app's **lifespan shutdown** (``setup_metrics`` wraps the
  lifespan). On SIGTERM a ``uvicorn_worker.UvicornWorker`` finishes its lifespan and then
  re-raises SIGTERM with the default handler: the process dies by the signal, so neither
  ``atexit`` nor gunicorn's ``worker_exit`` hook runs on that path. Do not move the final
  flush into a hook; the ``worker_exit`` below is a fallback for other exits only.
* ``graceful_timeout`` must leave room for that final flush (the collector waits up to 5 s
  for the store, Sentry up to 2 s). A worker that is SIGKILLed (timeout, OOM) loses at most
  one flush interval of its own errors; gunicorn logs the SIGKILL.
"""

from __future__ import annotations

import logging
import os
from typing import Any

# --- the process model -------------------------------------------------------------------

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "uvicorn_worker.UvicornWorker"

# Import the app once in the master, then fork: faster boots, less memory. Safe with this
# library (see above); set GUNICORN_PRELOAD=0 if your own app opens connections at import.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1").lower() not in ("0", "false", "no")

# A worker that does not report in for `timeout` seconds is killed (SIGKILL: its unflushed
# errors, at most one flush interval, are lost).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM -> lifespan shutdown -> final flush. Must exceed 5 s (store) + 2 s (Sentry); keep
# Kubernetes' terminationGracePeriodSeconds above this plus the preStop sleep.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5

# Recycling workers is harmless for the counts: a recycled worker exits through its
# lifespan shutdown, so its final flush runs. 0 = never recycle.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10

accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None  # "-" for stdout
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# Recent gunicorn (27 here) opens a control socket at ~/.gunicorn/gunicorn.ctl by default:
# one path per user, so two servers on one host (tests, side-by-side services) fight over
# it. Containers and pods do not need it; a gunicorn without the setting ignores it.
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "0").lower() in ("0", "no")

_log = logging.getLogger("gunicorn.error")


# --- hooks -------------------------------------------------------------------------------


def when_ready(server: Any) -> None:
    """Master, once listening: say which metrics store the workers will share (or not)."""
    redis_url = os.environ.get("FEC_REDIS_URL")
    if redis_url:
        server.log.info(
            "fastapi-error-codes: %d workers share the Redis store (namespace %s)",
            server.num_workers,
            os.environ.get("FEC_NAMESPACE", "fastapi_errors"),
        )
    elif server.num_workers > 1:
        server.log.warning(
            "fastapi-error-codes: FEC_REDIS_URL is not set, so each of the %d workers counts "
            "only its own errors and /metrics answers with whichever worker it reaches. "
            "Set FEC_REDIS_URL for fleet totals.",
            server.num_workers,
        )


# post_fork(server, worker): deliberately not defined. The collector resets itself in the
# child (os.register_at_fork) and starts its flusher thread there; Sentry is initialised in
# the lifespan startup of each worker. Starting threads or clients here would duplicate that.
#
# worker_abort(worker): not called with UvicornWorker, which resets SIGABRT to the default
# handler; a timed-out worker is killed without running Python code.


def worker_exit(server: Any, worker: Any) -> None:
    """Fallback final flush for exits that did not run the lifespan shutdown.

    The normal paths (SIGTERM, SIGINT, SIGQUIT, max_requests) already flushed in the
    lifespan shutdown, and ``close()`` is idempotent, so this is a no-op then. On SIGTERM
    this hook never runs at all (see the module docstring). gunicorn may also call it in the
    master for a worker that is already gone: only act inside the worker itself.
    """
    if worker.pid != os.getpid():
        return
    app = getattr(worker, "wsgi", None)
    collector = getattr(getattr(app, "state", None), "metrics_collector", None)
    if collector is not None:
        try:
            collector.close(timeout=2.0)
        except Exception:  # a hook must never turn an exit into a crash
            _log.warning("fastapi-error-codes: fallback flush in worker_exit failed", exc_info=True)
