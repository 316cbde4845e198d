"""Fixtures of the deployment tests: the registry is left as found; the tools they run.

``prometheus_bin`` and ``promtool`` install Debian's ``prometheus`` package (which ships both)
once per session when they are missing; ``amtool`` installs Debian's
``prometheus-alertmanager`` (Alertmanager 0.25 on Debian 12: ``amtool check-config`` and
``amtool config routes test`` work offline) and ``kubectl`` Debian's ``kubernetes-client`` the
same way (``kubectl kustomize`` renders deploy/k8s/ and ``kubectl create secret
--dry-run=client`` checks the documented commands, neither needs a cluster). Where that is
impossible (not root, no apt-get, no network) a test that needs them fails under CI
(``CI=true``) and is skipped elsewhere, so a fresh machine runs every check instead of
silently skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests._servers import in_ci
from tests.examples._registry import restore_registry

PROMETHEUS_PACKAGE = "prometheus"  # Debian's package: /usr/bin/prometheus and /usr/bin/promtool
ALERTMANAGER_PACKAGE = "prometheus-alertmanager"  # Debian's package: /usr/bin/amtool
KUBECTL_PACKAGE = "kubernetes-client"  # Debian's package: /usr/bin/kubectl
INSTALL_TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def _leave_the_registry_as_found() -> Iterator[None]:
    yield from restore_registry()


def fail_or_skip(message: str) -> None:
    """A failure under CI, where every tool must be there; a skip on a developer's machine."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _apt_install(package: str) -> str | None:
    """Install one Debian package; None if it worked, else why it did not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a dpkg lock another install holds rather than failing at once.
    lock = "-o DPkg::Lock::Timeout=120"
    try:
        result = subprocess.run(
            f"apt-get update -qq && apt-get install -y -qq {lock} {package}",
            shell=True,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"installing {package} took more than {INSTALL_TIMEOUT_S} s"
    if result.returncode != 0:
        return f"apt-get install {package} failed:\n{result.stderr[-2000:]}"
    return None


@pytest.fixture(scope="session")
def _prometheus_package() -> str | None:
    """Makes sure Debian's prometheus package is installed, once; why not, if it cannot be."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return None
    return _apt_install(PROMETHEUS_PACKAGE)


@pytest.fixture(scope="session")
def _alertmanager_package() -> str | None:
    """Makes sure an amtool is installed (Debian's when none is), once; why not, if not."""
    if shutil.which("amtool"):
        return None
    return _apt_install(ALERTMANAGER_PACKAGE)


@pytest.fixture(scope="session")
def _kubectl_package() -> str | None:
    """Makes sure a kubectl is installed (Debian's when none is), once; why not, if not."""
    if shutil.which("kubectl"):
        return None
    return _apt_install(KUBECTL_PACKAGE)


def _binary(name: str, problem: str | None) -> str:
    found = shutil.which(name)
    if found:
        return found
    fail_or_skip(f"{name} is missing and could not be installed: {problem or 'not on PATH'}")
    raise AssertionError("unreachable")  # fail_or_skip raises


@pytest.fixture(scope="session")
def prometheus_bin(_prometheus_package: str | None) -> str:
    """The prometheus server binary (installed with apt-get when missing)."""
    return _binary("prometheus", _prometheus_package)


@pytest.fixture(scope="session")
def promtool(_prometheus_package: str | None) -> str:
    """The promtool binary (installed with apt-get when missing)."""
    return _binary("promtool", _prometheus_package)


@pytest.fixture(scope="session")
def kubectl(_kubectl_package: str | None) -> str:
    """A kubectl binary (Debian's kubernetes-client installed with apt-get when missing)."""
    return _binary("kubectl", _kubectl_package)


@pytest.fixture(scope="session")
def amtool(_alertmanager_package: str | None) -> str:
    """Alertmanager's amtool (Debian's prometheus-alertmanager installed when missing)."""
    return _binary("amtool", _alertmanager_package)
