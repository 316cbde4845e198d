"""Fixtures of the benchmark smoke tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from benchmarks._common import Context, delete_namespace


@pytest.fixture
def ctx(redis_url: str) -> Iterator[Context]:
    """A tiny-scale run context on the local Redis; its namespaces are deleted afterwards."""
    context = Context(scale="tiny", redis_url=redis_url, repeats=1, verbose=False)
    yield context
    context.cleanup()
    client = context.redis()
    try:
        leftover = [ns for ns in context.namespaces if delete_namespace(client, ns)]
    finally:
        client.close()
    assert not leftover, f"keys left behind in {leftover}"
