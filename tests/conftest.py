"""Shared fixtures: the local Redis, a fresh namespace per test, cleanup of only its keys.

Tests mirror the package (``tests/core``, ``tests/metrics/...``); the folders that are kinds
of run rather than parts of the package (``fleet``, ``hardening``, ``deploy``, ``browser``)
mark their tests with the folder's name, so ``pytest -m "not fleet"`` selects by kind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import in_ci

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"

#: Folders of tests/ that are kinds of run; each marks its tests with its own name.
RUN_KINDS = ("fleet", "hardening", "deploy", "browser")
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of a run-kind folder with that folder's marker."""
    for item in items:
        try:
            folder = Path(item.path).relative_to(_TESTS).parts[0]
        except ValueError:
            continue
        if folder in RUN_KINDS:
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the machine's Redis; a skip locally when it is down, a failure in CI."""
    import redis

    client = redis.Redis.from_url(LOCAL_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {LOCAL_REDIS_URL} is not reachable: {exc!r}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return LOCAL_REDIS_URL


@pytest.fixture
def namespace() -> str:
    """A fresh random namespace (key prefix) for one test."""
    return f"fect-{uuid.uuid4().hex[:12]}"


def delete_namespace(url: str, ns: str) -> None:
    """Delete every key of namespace *ns*, in all its shards (and nothing else)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for pattern in ("{" + ns + "}:*", "{" + ns + "#*}:*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_namespace(redis_url: str, namespace: str) -> Iterator[str]:
    """A fresh namespace on the local Redis, whose keys are deleted after the test."""
    yield namespace
    delete_namespace(redis_url, namespace)


@pytest.fixture
def make_config(redis_namespace: str, redis_url: str) -> Callable[..., Any]:
    """Factory of MetricsConfig.testing() on the local Redis in this test's namespace."""
    from fastapi_error_codes.metrics import MetricsConfig

    def make(**overrides: Any) -> MetricsConfig:
        base: dict[str, Any] = {"redis_url": redis_url, "namespace": redis_namespace}
        return MetricsConfig.testing(**{**base, **overrides})

    return make
