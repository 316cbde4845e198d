"""unix:// and rediss:// URLs reach the store: private servers on a socket and over TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig
from tests._servers import RedisServer, free_port, wait_for_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _count_through(url: str) -> None:
    collector = ErrorMetricsCollector(
        MetricsConfig.testing(redis_url=url, flush_interval_ms=60_000)
    )
    try:
        for _ in range(3):
            collector.record(301, "UserNotFound", 404, "x")
        assert collector.flush(), collector.stats.last_error
        assert collector.read().totals == {(301, 404): 3}
    finally:
        collector.close(timeout=1)


def test_unix_socket_url(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    server = RedisServer("--unixsocket", str(sock), "--unixsocketperm", "700").start()
    try:
        _count_through(f"unix://{sock}?db=0")
    finally:
        server.close()


def _make_certs(folder: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_url(tmp_path: Path) -> None:
    _make_certs(tmp_path)
    tls_port = free_port()
    server = RedisServer(
        "--tls-port", str(tls_port),
        "--tls-cert-file", str(tmp_path / "server.crt"),
        "--tls-key-file", str(tmp_path / "server.key"),
        "--tls-ca-cert-file", str(tmp_path / "ca.crt"),
        "--tls-auth-clients", "no",
    ).start()  # fmt: skip
    try:
        wait_for_port(tls_port)
        ca = tmp_path / "ca.crt"
        _count_through(f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}")
    finally:
        server.close()
