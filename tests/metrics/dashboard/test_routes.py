"""GET {dashboard_prefix}/routes, Sentry links of recent errors and the CSV exports.

Through a real app and real requests (TestClient), on the memory store and on the local Redis.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from fastapi_error_codes import BaseAppException, register_exception, setup_exception_handler
from fastapi_error_codes.metrics import MetricsConfig
from fastapi_error_codes.metrics.models import Batch
from fastapi_error_codes.metrics.setup import setup_metrics

BASE = "/api/metrics"
SENTRY = "https://sentry.example.org/organizations/acme"
TOKEN = "routes-test-token-0123456789"


@register_exception(error_code=8401, message="Item not found", status_code=404)
class ItemMissing(BaseAppException):
    """No item with that id."""


@register_exception(error_code=8501, message="Payments are down", status_code=503)
class PaymentsDown(BaseAppException):
    """The payment provider did not answer."""


def _app(config: MetricsConfig) -> FastAPI:
    """An app whose routes fail as the tests want: declared, undeclared, never."""
    app = FastAPI()
    setup_exception_handler(app, metrics_config=config)

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        if item_id >= 7:
            raise ItemMissing(detail={"item_id": item_id})
        return {"item_id": item_id}

    @app.post("/pay")
    def pay() -> dict[str, str]:
        raise PaymentsDown()

    @app.get("/legacy")
    def legacy() -> JSONResponse:
        # Returned, not raised: no handler sees it; counted as an "Undeclared" 500.
        return JSONResponse({"oops": True}, status_code=500)

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


MakeApp = Callable[..., FastAPI]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_app(request: pytest.FixtureRequest) -> MakeApp:
    """Factory: the test app on the memory store, or on the local Redis in a fresh namespace."""

    def make(**overrides: Any) -> FastAPI:
        overrides.setdefault("flush_interval_ms", 60_000)
        if request.param == "redis":
            make_config = request.getfixturevalue("make_config")
            return _app(make_config(**overrides))
        return _app(MetricsConfig.testing(**overrides))

    return make


def _send_traffic(client: TestClient) -> None:
    """10 item requests (3 fail with 404), 4 failing payments, 1 undeclared 500, 5 fine,
    2 paths no route matches."""
    for i in range(10):
        client.get(f"/items/{i}")
    for _ in range(4):
        assert client.post("/pay").status_code == 503
    assert client.get("/legacy").status_code == 500
    for _ in range(5):
        assert client.get("/ok").status_code == 200
    for path in ("/nowhere", "/also/nowhere"):
        assert client.get(path).status_code == 404


def _rows(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["route"], r["method"]): r for r in body["routes"]}


# -- /routes ----------------------------------------------------------------------------------


def test_routes_ratios_are_what_was_sent(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        _send_traffic(client)
        body = client.get(f"{BASE}/routes").json()
    rows = _rows(body)
    items = rows[("/items/{item_id}", "GET")]
    assert (items["requests"], items["errors"], items["errors_4xx"]) == (10, 3, 3)
    assert items["errors_5xx"] == 0
    assert items["error_ratio"] == 0.3
    assert items["top_errors"] == [
        {"error_code": 8401, "error_name": "ItemMissing", "status_code": 404, "count": 3}
    ]
    pay = rows[("/pay", "POST")]
    assert (pay["requests"], pay["errors"], pay["errors_5xx"], pay["error_ratio"]) == (4, 4, 4, 1.0)
    legacy = rows[("/legacy", "GET")]
    assert legacy["error_ratio"] == 1.0
    assert legacy["top_errors"] == [
        {"error_code": 500, "error_name": "Undeclared", "status_code": 500, "count": 1}
    ]
    unmatched = rows[("<unmatched>", "GET")]
    assert (unmatched["requests"], unmatched["errors"], unmatched["error_ratio"]) == (2, 2, 1.0)
    assert [e["status_code"] for e in unmatched["top_errors"]] == [404]
    assert rows[("/ok", "GET")]["error_ratio"] == 0.0
    # The routes that fail most first: by errors, then 5xx, then requests.
    assert [(r["route"], r["errors"]) for r in body["routes"]] == [
        ("/pay", 4),
        ("/items/{item_id}", 3),
        ("<unmatched>", 2),
        ("/legacy", 1),
        ("/ok", 0),
    ]
    assert body["requests"] == 10 + 4 + 1 + 5 + 2
    assert body["errors"] == 3 + 4 + 1 + 2
    assert body["errors_5xx"] == 4 + 1
    assert body["error_ratio"] == round(10 / 22, 6)
    assert (body["route_count"], body["route_folded"]) == (5, 0)
    assert body["window_s"] == 3600
    assert body["start_epoch"] % body["bucket_width_s"] == 0
    # The dashboard's own endpoints are never counted as the app's routes.
    assert not [r for r in body["routes"] if r["route"].startswith(BASE)]


def test_routes_limit_keeps_the_routes_that_fail_most(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        _send_traffic(client)
        body = client.get(f"{BASE}/routes", params={"limit": 2}).json()
    assert [r["route"] for r in body["routes"]] == ["/pay", "/items/{item_id}"]
    assert body["route_count"] == 5  # before the limit
    assert body["requests"] == 22  # the totals are of every route


def test_routes_window_and_all_time(make_app: MakeApp) -> None:
    """window=0 is all time; a window leaves out what another worker counted before it."""
    app = make_app()
    now = int(time.time())
    old = now - now % 60 - 3 * 3600  # three hours ago: kept (retention 1 day), not in an hour
    app.state.metrics_collector.store.apply(
        Batch(
            worker_id="old-worker",
            seq=1,
            counts={(old, 8401, 404): 6},
            names={8401: "ItemMissing"},
            events=[],
            requests={
                (old, "/items/{item_id}", "GET", 2): 4,
                (old, "/items/{item_id}", "GET", 4): 6,
            },
            route_errors={(old, 8401, "ItemMissing", 404, "/items/{item_id}", "GET"): 6},
        )
    )
    with TestClient(app) as client:
        _send_traffic(client)
        hour = _rows(client.get(f"{BASE}/routes").json())[("/items/{item_id}", "GET")]
        ever = client.get(f"{BASE}/routes", params={"window": 0}).json()
        short = client.get(f"{BASE}/routes", params={"window": 14400}).json()
    assert (hour["requests"], hour["errors"]) == (10, 3)
    items = _rows(ever)[("/items/{item_id}", "GET")]
    assert (items["requests"], items["errors"], items["error_ratio"]) == (20, 9, 0.45)
    assert items["top_errors"][0]["count"] == 9
    assert (ever["window_s"], ever["start"], ever["start_epoch"]) == (0, None, None)
    assert _rows(short)[("/items/{item_id}", "GET")]["requests"] == 20


def test_routes_of_an_empty_store(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        body = client.get(f"{BASE}/routes").json()
    assert body["routes"] == []
    assert (body["requests"], body["errors"], body["error_ratio"]) == (0, 0, None)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app(MetricsConfig.testing(flush_interval_ms=60_000))) as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "/routes?window=-1",
        "/routes?window=abc",
        "/routes?window=90000",  # longer than retention_s (86400)
        f"/routes?window={400 * 86400}",
        "/routes?limit=0",
        "/routes?limit=1001",
        "/routes?limit=x",
        "/routes.csv?window=-1",
        "/routes.csv?window=90000",
        "/routes.csv?limit=1001",
        "/timeseries.csv?window=0",
        "/timeseries.csv?step=90",
        "/timeseries.csv?top=21",
        "/timeseries.csv?window=600&step=1200",
    ],
)
def test_bad_parameters_are_422_in_our_body(client: TestClient, url: str) -> None:
    response = client.get(BASE + url)
    assert response.status_code == 422, url
    body = response.json()
    assert (body["status_code"], body["error_code"]) == (422, 422)
    assert body["message"]


def test_routes_window_spanning_too_many_buckets_is_422() -> None:
    config = MetricsConfig.testing(flush_interval_ms=60_000, collection_interval_ms=1000)
    with TestClient(_app(config)) as client:
        assert client.get(f"{BASE}/routes", params={"window": 10080}).status_code == 200
        response = client.get(f"{BASE}/routes", params={"window": 86400})
    assert response.status_code == 422
    assert "buckets" in response.json()["message"]


def test_new_endpoints_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    routes = paths[f"{BASE}/routes"]["get"]
    assert {p["name"] for p in routes["parameters"]} == {"window", "limit"}
    ref = routes["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/RoutesResponse")
    for name in ("summary.csv", "timeseries.csv", "routes.csv"):
        content = paths[f"{BASE}/{name}"]["get"]["responses"]["200"]["content"]
        assert set(content) == {"text/csv"}, name
    params = paths[f"{BASE}/timeseries.csv"]["get"]["parameters"]
    assert {p["name"] for p in params} == {"window", "step", "top"}


def test_include_in_schema_false_hides_the_new_endpoints() -> None:
    config = MetricsConfig.testing(flush_interval_ms=60_000, include_in_schema=False)
    with TestClient(_app(config)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert client.get(f"{BASE}/routes.csv").status_code == 200
    assert not [p for p in paths if p.startswith(BASE)]


# -- request ids and Sentry links of recent errors --------------------------------------------


def _sentry_id() -> str:
    return uuid.uuid4().hex


def _error(
    app: FastAPI,
    request_id: str,
    sentry_id: str | None,
    *,
    route: str | None = "/pay",
    code: int = 8501,
    name: str = "PaymentsDown",
    status: int = 503,
) -> None:
    """One error response as the observer and the request hook count it (with its exemplar)."""
    collector = app.state.metrics_collector
    event_id = collector.record(
        code, name, status, "down", path=route, method="POST", request_id=request_id
    )
    collector.count_request(
        route or "<unmatched>",
        "POST",
        status,
        (code, name, status),
        (request_id, None, sentry_id, event_id),
    )


def _events(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    body = client.get(f"{BASE}/recent", params=params).json()
    events: list[dict[str, Any]] = body["events"]
    return events


def test_recent_errors_carry_request_and_trace_ids(make_app: MakeApp) -> None:
    with TestClient(make_app(sentry_base_url=SENTRY)) as client:
        trace = "0af7651916cd43dd8448eb211c80319c"
        response = client.post(
            "/pay",
            headers={
                "X-Request-ID": "req-from-the-client",
                "traceparent": f"00-{trace}-b7ad6b7169203331-01",
            },
        )
        assert response.status_code == 503
        (event,) = _events(client)
    assert event["request_id"] == "req-from-the-client"
    assert event["trace_id"] == trace
    # The exemplar holds this request, but no Sentry event id (Sentry is off): no link.
    assert event["sentry_url"] is None


def test_sentry_link_only_for_the_exemplar_request(make_app: MakeApp) -> None:
    app = make_app(sentry_base_url=SENTRY + "/")
    older, newer = _sentry_id(), _sentry_id()
    _error(app, "req-older", older)
    _error(app, "req-newer", newer)  # the series' newest: its exemplar
    _error(app, "req-unmatched", _sentry_id(), route=None, code=404, name="NotFound", status=404)
    _error(app, "req-no-sentry", None, route="/items/{item_id}", code=8401, name="ItemMissing")
    with TestClient(app) as client:
        links = {e["request_id"]: e["sentry_url"] for e in _events(client)}
        stats = client.get(f"{BASE}/by-code/8501").json()
    assert links["req-newer"] == f"{SENTRY}/issues/?query={newer}"
    assert links["req-older"] is None  # its series' exemplar is another request: never a guess
    assert links["req-unmatched"] is not None
    assert links["req-unmatched"].startswith(f"{SENTRY}/issues/?query=")
    assert links["req-no-sentry"] is None
    by_code = {e["request_id"]: e["sentry_url"] for e in stats["recent_events"]}
    assert by_code == {"req-newer": links["req-newer"], "req-older": None}


def test_no_sentry_link_without_a_base_url(make_app: MakeApp) -> None:
    app = make_app()
    _error(app, "req-1", _sentry_id())
    with TestClient(app) as client:
        (event,) = _events(client)
    assert event["request_id"] == "req-1"
    assert event["sentry_url"] is None


@pytest.mark.parametrize(
    "sentry_id", ["javascript:alert(1)", "abc", "0" * 31 + "/../x", " " + "a" * 32]
)
def test_no_link_for_a_malformed_sentry_event_id(sentry_id: str) -> None:
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000, sentry_base_url=SENTRY))
    _error(app, "req-1", sentry_id)
    with TestClient(app) as client:
        (event,) = _events(client)
    assert event["sentry_url"] is None


def test_no_link_when_the_exemplar_names_another_event() -> None:
    """The same request id (a client's retry keeps it), but the exemplar is another event."""
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000, sentry_base_url=SENTRY))
    collector = app.state.metrics_collector
    collector.record(
        8501, "PaymentsDown", 503, "down", path="/pay", method="POST", request_id="req-1"
    )
    collector.count_request(
        "/pay",
        "POST",
        503,
        (8501, "PaymentsDown", 503),
        ("req-1", None, _sentry_id(), "some-other-event"),
    )
    with TestClient(app) as client:
        (event,) = _events(client)
    assert event["sentry_url"] is None


# -- CSV exports --------------------------------------------------------------------------------


def _csv(client: TestClient, path: str, **params: Any) -> list[list[str]]:
    response = client.get(f"{BASE}/{path}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def test_summary_csv(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        _send_traffic(client)
        rows = _csv(client, "summary.csv")
        summary = client.get(f"{BASE}/summary").json()
    assert rows[0] == ["error_code", "error_name", "status_code", "total", "last_5m", "last_1h"]
    body = {(int(r[0]), int(r[2])): (r[1], int(r[3]), int(r[4]), int(r[5])) for r in rows[1:]}
    assert body[(8501, 503)] == ("PaymentsDown", 4, 4, 4)
    assert body[(8401, 404)] == ("ItemMissing", 3, 3, 3)
    assert sum(total for _name, total, _5m, _1h in body.values()) == summary["total_errors"]
    # Most errors first.
    assert [int(r[3]) for r in rows[1:]] == sorted((int(r[3]) for r in rows[1:]), reverse=True)


def test_routes_csv_matches_the_json(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        _send_traffic(client)
        rows = _csv(client, "routes.csv")
        body = client.get(f"{BASE}/routes").json()
        limited = _csv(client, "routes.csv", limit=1, window=0)
    assert rows[0] == [
        "route",
        "method",
        "requests",
        "errors",
        "errors_4xx",
        "errors_5xx",
        "error_ratio",
    ]
    assert [r[:2] for r in rows[1:]] == [[r["route"], r["method"]] for r in body["routes"]]
    items = next(r for r in rows if r[0] == "/items/{item_id}")
    assert items[2:] == ["10", "3", "3", "0", "0.3"]
    assert len(limited) == 2


def test_timeseries_csv_matches_the_json(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        _send_traffic(client)
        params = {"window": 600, "step": 120, "top": 2}
        rows = _csv(client, "timeseries.csv", **params)
        body = client.get(f"{BASE}/timeseries", params=params).json()
    assert rows[0] == ["start", "start_epoch", "series", "error_code", "error_name", "count"]
    assert len(rows) == 1 + body["points"] * len(body["series"])
    expected = [
        [
            iso,
            str(epoch),
            s["key"],
            "" if s["error_code"] is None else str(s["error_code"]),
            s["error_name"],
            str(s["counts"][i]),
        ]
        for i, (iso, epoch) in enumerate(
            zip(body["timestamps"], body["timestamps_epoch"], strict=True)
        )
        for s in body["series"]
    ]
    assert rows[1:] == expected
    # Declared errors and unmatched paths (the handlers answer those); not the undeclared 500.
    assert sum(int(r[5]) for r in rows[1:]) == body["total"] == 3 + 4 + 2


def test_csv_cells_that_look_like_formulas_are_defused() -> None:
    app = _app(MetricsConfig.testing(flush_interval_ms=60_000))
    collector = app.state.metrics_collector
    names = {
        9001: '=HYPERLINK("http://evil.example","x")',
        9002: "+cmd|' /C calc'!A0",
        9003: "-2+3",
        9004: "@SUM(A1:A2)",
        9005: "\tTab",
        9006: "\rCarriage",
        9007: 'plain, "quoted"\nname',
    }
    for code, name in names.items():
        collector.record(code, name, 400, "x")
    collector.count_request("<unmatched>", "GET", 404, (404, "NotFound", 404))
    with TestClient(app) as client:
        summary = _csv(client, "summary.csv")
        series = _csv(client, "timeseries.csv", top=20)
        routes = _csv(client, "routes.csv")
    got = {int(r[0]): r[1] for r in summary[1:]}
    for code, name in names.items():
        expected = name if code == 9007 else "'" + name
        assert got[code] == expected, code
        assert expected in {r[4] for r in series[1:]}
    assert summary[0][0] == "error_code"
    # "<unmatched>" starts with none of the characters: kept as it is.
    assert ["<unmatched>", "GET"] in [r[:2] for r in routes[1:]]


def _session(request: Request) -> None:
    if request.cookies.get("session") != "ok":
        raise HTTPException(status_code=403, detail="no session")


def test_new_endpoints_carry_the_apps_auth_dependency() -> None:
    app = FastAPI()
    setup_exception_handler(app)
    setup_metrics(
        app,
        MetricsConfig.testing(flush_interval_ms=60_000, auth_token=TOKEN),
        auth_dependency=_session,
    )
    paths = ["routes", "routes.csv", "summary.csv", "timeseries.csv"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        for path in paths:
            assert client.get(f"{BASE}/{path}").status_code == 401, path
            assert client.get(f"{BASE}/{path}", headers=bearer).status_code == 403, path
        client.cookies.set("session", "ok")
        for path in paths:
            assert client.get(f"{BASE}/{path}").status_code == 401, path  # still no token
            assert client.get(f"{BASE}/{path}", headers=bearer).status_code == 200, path


def test_sentry_link_end_to_end_with_the_real_sdk() -> None:
    """A 5xx captured by the real sentry-sdk (its transport swapped for a capture): the recent
    error links to exactly the event Sentry received."""
    pytest.importorskip("sentry_sdk")
    from tests.metrics.sentry._helpers import capture_into
    from tests.metrics.sentry.conftest import FAKE_DSN, CapturingTransport, reset_sentry

    reset_sentry()
    transport = CapturingTransport()
    config = MetricsConfig.testing(
        flush_interval_ms=60_000,
        sentry_enabled=True,
        sentry_dsn=FAKE_DSN,
        sentry_base_url=SENTRY,
    )
    try:
        with TestClient(_app(config)) as client:
            capture_into(transport)
            response = client.post("/pay", headers={"X-Request-ID": "req-e2e"})
            assert response.status_code == 503
            (event,) = _events(client)
        (sent,) = [e for e in transport.events if e.get("type", "event") == "event"]
    finally:
        reset_sentry()
    assert event["request_id"] == "req-e2e"
    assert event["sentry_url"] == f"{SENTRY}/issues/?query={sent['event_id']}"
