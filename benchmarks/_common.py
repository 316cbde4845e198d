"""Shared pieces of the benchmark rows: run context, timing, results, Redis namespaces."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: Sizes per scale. "full" is the documented run, "quick" a shorter one with the same rows,
#: "tiny" what the smoke test runs (correctness only, figures meaningless).
SCALES = ("full", "quick", "tiny")


@dataclass
class Result:
    """One row of the results table (plus the raw samples behind it)."""

    row: int
    what: str
    unit: str
    us: float | None
    peer: float | None = None
    peer_name: str = ""
    #: us / peer; whether lower or higher is better is said by ``aim``.
    ratio: float | None = None
    aim: str = ""
    #: True/False when the aim is a checkable bound, None when there is none (or no figure).
    met: bool | None = None
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class Context:
    """What every row gets: sizes, repeats, the Redis URL and the namespaces it made."""

    scale: str = "full"
    redis_url: str = DEFAULT_REDIS_URL
    repeats: int = 7
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    verbose: bool = True
    namespaces: list[str] = field(default_factory=list)

    def pick(self, full: Any, quick: Any, tiny: Any) -> Any:
        """The value for this run's scale."""
        return {"full": full, "quick": quick, "tiny": tiny}[self.scale]

    def namespace(self, label: str) -> str:
        """A fresh namespace of this run; its keys ``{ns}:*`` are deleted by :meth:`cleanup`."""
        ns = f"fecb-{self.run_id}-{label}"
        self.namespaces.append(ns)
        return ns

    def log(self, message: str) -> None:
        """Progress on stderr (the table goes to stdout)."""
        if self.verbose:
            print(f"[bench] {message}", file=sys.stderr, flush=True)

    def redis(self) -> Any:
        """A plain redis-py client on the run's URL."""
        import redis

        return redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)

    def cleanup(self) -> int:
        """Delete the keys of every namespace this run made (never FLUSHDB: Redis is shared)."""
        if not self.namespaces:
            return 0
        client = self.redis()
        deleted = 0
        try:
            for ns in self.namespaces:
                deleted += delete_namespace(client, ns)
        finally:
            client.close()
        return deleted


def delete_namespace(client: Any, ns: str) -> int:
    """Delete every key matching ``{ns}:*`` and nothing else; returns how many."""
    deleted = 0
    for key in client.scan_iter(match="{" + ns + "}:*", count=1000):
        deleted += client.delete(key)
    return deleted


def median(values: list[float]) -> float:
    """Median of *values*."""
    return float(statistics.median(values))


def interleaved(
    variants: dict[str, Callable[[], float]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each variant *repeats* times, round-robin, reversing the order every round.

    Each callable returns one measurement. Interleaving (A B C, C B A, A B C ...) makes slow
    drift of the machine (frequency, neighbours) hit every variant alike.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(variants[name]())
    return samples


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the cyclic GC off while timing (it is on again afterwards)."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of *fn* takes (perf_counter)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    return free_port()


def ratio(us: float | None, peer: float | None) -> float | None:
    """us / peer, or None when either is missing."""
    if us is None or peer is None or peer == 0:
        return None
    return us / peer


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or the platform's best guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU, core count, Python and library versions: stored with the figures."""
    import platform
    from importlib import metadata

    versions = {}
    for dist in (
        "fastapi-error-codes",
        "prometheus-client",
        "redis",
        "hiredis",
        "fastapi",
        "starlette",
        "uvicorn",
        "gunicorn",
        "prometheus-redis-client",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def python() -> str:
    """The interpreter running the benchmarks (children use the same one)."""
    return sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python: ours, with the repo root importable."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (status line, headers, Content-Length body): status, body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return int(head[9:12]), body


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM a server (its graceful shutdown), SIGKILL it if it outlives *timeout*."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
