"""GET {dashboard_prefix}/timeseries: values against seeded buckets, on memory and real Redis."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes import setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch

URL = "/api/metrics/timeseries"
NAMES = {101: "A", 102: "B", 103: "C", 104: "D", 105: "E"}
STATUS = {101: 404, 102: 409, 103: 500, 104: 400, 105: 503}

#: code -> {minutes ago: count}; all inside the last hour, none in the current minute.
SEED: dict[int, dict[int, int]] = {
    101: {3: 4, 7: 10, 12: 1},
    102: {3: 2, 44: 6},
    103: {7: 5},
    104: {12: 1},
    105: {44: 1},
}
#: Seeded outside a one-hour window: must never be counted in it.
OLD = {(101, 404): 100}


def _minute() -> int:
    now = int(time.time())
    return now - now % 60


def _seed(app: FastAPI, *, overflow: int = 0) -> dict[tuple[int, int], int]:
    """Apply the seed as one batch of another worker; return bucket start per (code, ago)."""
    current = _minute()
    counts: dict[tuple[int, int, int], int] = {}
    starts: dict[tuple[int, int], int] = {}
    for code, row in SEED.items():
        for ago, n in row.items():
            counts[(current - ago * 60, code, STATUS[code])] = n
            starts[(code, ago)] = current - ago * 60
    for (code, status), n in OLD.items():
        counts[(current - 3 * 3600, code, status)] = n
    if overflow:
        counts[(current - 5 * 60, OVERFLOW_CODE, OVERFLOW_CODE)] = overflow
    store = app.state.metrics_collector.store
    store.apply(Batch(worker_id="seed-worker", seq=1, counts=counts, names=NAMES, events=[]))
    return starts


def _app(config: MetricsConfig) -> FastAPI:
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config)
    return app


@pytest.fixture
def memory_app() -> FastAPI:
    return _app(MetricsConfig.testing(flush_interval_ms=60_000))


def _series(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in body["series"]}


def _expected_counts(
    body: dict[str, Any], starts: dict[tuple[int, int], int], code: int
) -> list[int]:
    """What the grid of *body* must hold for *code*, placed by the answer's own timestamps."""
    expected = [0] * body["points"]
    step, first = body["step_s"], body["start_epoch"]
    for ago, n in SEED[code].items():
        start = starts[(code, ago)]
        if first <= start < body["end_epoch"]:
            expected[(start - first) // step] += n
    return expected


def _check_seeded_hour(client: TestClient, starts: dict[tuple[int, int], int]) -> None:
    body = client.get(URL, params={"window": 3600, "step": 60, "top": 3}).json()
    assert body["window_s"] == 3600
    assert body["step_s"] == 60
    assert body["bucket_width_s"] == 60
    assert body["points"] == 60
    assert len(body["timestamps"]) == len(body["timestamps_epoch"]) == 60
    epochs = body["timestamps_epoch"]
    assert all(b - a == 60 for a, b in itertools.pairwise(epochs))
    assert body["start_epoch"] == epochs[0]
    assert body["end_epoch"] == epochs[-1] + 60
    for iso, epoch in zip(body["timestamps"], epochs, strict=True):
        assert datetime.fromisoformat(iso).timestamp() == epoch
    assert datetime.fromisoformat(body["start"]).timestamp() == body["start_epoch"]
    # Top 3 by errors in the window: 101 (15), 102 (8), 103 (5); 104 and 105 fold into "other".
    series = _series(body)
    assert [s["key"] for s in body["series"]] == ["101", "102", "103", "other"]
    for code in (101, 102, 103):
        line = series[str(code)]
        assert line["error_code"] == code
        assert line["error_name"] == NAMES[code]
        assert line["counts"] == _expected_counts(body, starts, code)
        assert line["total"] == sum(SEED[code].values())
    other = series["other"]
    assert other["error_code"] is None
    assert other["counts"] == [
        a + b
        for a, b in zip(
            _expected_counts(body, starts, 104), _expected_counts(body, starts, 105), strict=True
        )
    ]
    assert other["total"] == 2
    assert body["total"] == 15 + 8 + 5 + 2  # the bucket three hours old is not in the window
    assert body["status_classes"] == {"4xx": 15 + 8 + 1, "5xx": 5 + 1}


def test_seeded_buckets_per_minute_memory(memory_app: FastAPI) -> None:
    starts = _seed(memory_app)
    with TestClient(memory_app) as client:
        _check_seeded_hour(client, starts)


@pytest.mark.redis
def test_seeded_buckets_per_minute_redis(make_config: Callable[..., MetricsConfig]) -> None:
    app = _app(make_config(flush_interval_ms=60_000))
    starts = _seed(app)
    with TestClient(app) as client:
        _check_seeded_hour(client, starts)
        # The same FleetView path: records of this worker reach the current step via a flush.
        app.state.metrics_collector.record(101, "A", 404, "live")
        body = client.get(URL, params={"window": 600, "step": 60, "top": 1}).json()
        assert _series(body)["101"]["counts"][-1] == 1


def test_larger_step_sums_buckets(memory_app: FastAPI) -> None:
    starts = _seed(memory_app)
    with TestClient(memory_app) as client:
        body = client.get(URL, params={"window": 3600, "step": 300, "top": 5}).json()
    assert body["points"] == 12
    assert body["step_s"] == 300
    assert all(t % 300 == 0 for t in body["timestamps_epoch"])
    series = _series(body)
    for code in SEED:
        assert series[str(code)]["counts"] == _expected_counts(body, starts, code)
    assert series["other"]["total"] == 0
    assert series["other"]["counts"] == [0] * 12


def test_live_records_land_in_the_current_step(memory_app: FastAPI) -> None:
    collector = memory_app.state.metrics_collector
    for _ in range(3):
        collector.record(201, "Live", 404, "x")
    collector.record(202, "Other", 500, "y")
    with TestClient(memory_app) as client:
        body = client.get(URL, params={"window": 300, "top": 1}).json()
    assert body["step_s"] == 60  # left out: the bucket width while points stay few
    assert body["points"] == 5
    series = _series(body)
    assert series["201"]["counts"] == [0, 0, 0, 0, 3]
    assert series["other"]["counts"] == [0, 0, 0, 0, 1]
    assert body["status_classes"] == {"4xx": 3, "5xx": 1}


def test_overflow_series_counts_as_other(memory_app: FastAPI) -> None:
    _seed(memory_app, overflow=9)
    with TestClient(memory_app) as client:
        body = client.get(URL, params={"window": 3600, "top": 20}).json()
    keys = [s["key"] for s in body["series"]]
    assert str(OVERFLOW_CODE) not in keys
    assert keys[-1] == "other"
    assert _series(body)["other"]["total"] == 9
    assert body["status_classes"]["other"] == 9


def test_defaults_and_empty_store(memory_app: FastAPI) -> None:
    with TestClient(memory_app) as client:
        body = client.get(URL).json()
    assert body["window_s"] == 3600
    assert body["step_s"] == 60
    assert body["points"] == 60
    assert body["total"] == 0
    assert body["series"] == [
        {"key": "other", "error_code": None, "error_name": "other", "total": 0, "counts": [0] * 60}
    ]
    assert body["status_classes"] == {"4xx": 0, "5xx": 0}


def test_default_step_keeps_points_few() -> None:
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000))
    with TestClient(app) as client:
        body = client.get(URL, params={"window": 86400}).json()
    assert body["step_s"] == 720
    assert body["points"] == 120


def test_bucket_width_other_than_a_minute() -> None:
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000, collection_interval_ms=10_000))
    app.state.metrics_collector.record(301, "X", 418, "z")
    with TestClient(app) as client:
        body = client.get(URL, params={"window": 120, "step": 30}).json()
        assert body["bucket_width_s"] == 10
        assert body["points"] == 4
        assert _series(body)["301"]["counts"][-1] == 1
        bad = client.get(URL, params={"window": 120, "step": 15})
    assert bad.status_code == 422


@pytest.fixture
def client(memory_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(memory_app) as c:
        yield c


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("window=0", "window below 1"),
        ("window=-60", "negative window"),
        ("window=abc", "not a number"),
        (f"window={400 * 86400}", "past the absolute bound"),
        ("window=90000", "longer than retention_s (86400)"),
        ("step=0", "step below 1"),
        ("step=90", "not a multiple of the bucket width"),
        ("step=86401", "past the absolute step bound"),
        ("window=600&step=1200", "step longer than the window"),
        ("window=3600&step=59", "not a multiple either"),
        ("top=0", "top below 1"),
        ("top=21", "top past 20"),
    ],
)
def test_bad_parameters_are_422_in_our_body(client: TestClient, query: str, why: str) -> None:
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 422, why
    body = response.json()
    assert body["status_code"] == 422
    assert body["error_code"] == 422
    assert body["message"]


def test_too_many_points_is_422() -> None:
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000, collection_interval_ms=1000))
    with TestClient(app) as client:
        ok = client.get(URL, params={"window": 1440, "step": 1})
        too_many = client.get(URL, params={"window": 1441, "step": 1})
        buckets = client.get(URL, params={"window": 86400, "step": 3600})
    assert ok.status_code == 200
    assert too_many.status_code == 422
    assert "1440" in too_many.json()["message"]
    # 86400 one-second buckets is more than one read may touch, whatever the step.
    assert buckets.status_code == 422
    assert "buckets" in buckets.json()["message"]


def test_retention_bounds_the_window() -> None:
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000, retention_s=600))
    with TestClient(app) as client:
        default = client.get(URL)
        assert default.status_code == 200
        assert default.json()["window_s"] == 600  # the default never passes retention
        assert default.json()["retention_s"] == 600
        response = client.get(URL, params={"window": 660})
    assert response.status_code == 422
    assert "retention" in response.json()["message"]


def test_timeseries_is_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][URL]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"window", "step", "top"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/TimeseriesResponse")
