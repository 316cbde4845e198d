"""The dashboard's pure computations on hand-built fleet views: no app, no store, no clock."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from fastapi_error_codes.metrics.dashboard import export, queries
from fastapi_error_codes.metrics.dashboard.queries import Grid, resolve_grid
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, ErrorEvent, FleetView

WIDTH = 60
NOW = 10_000.0
OVERFLOW = (OVERFLOW_CODE, OVERFLOW_CODE)


def _view(buckets: dict[int, dict[tuple[int, int], int]], **extra: Any) -> FleetView:
    """A view whose totals are the sum of its buckets."""
    totals: dict[tuple[int, int], int] = {}
    for cells in buckets.values():
        for key, n in cells.items():
            totals[key] = totals.get(key, 0) + n
    names = {101: "UserNotFound", 102: "Conflict", 103: "Boom"}
    return FleetView(totals=totals, names=names, buckets=buckets, **extra)


# -- summary and one code ---------------------------------------------------------------------


def test_summary_windows_count_buckets_that_overlap_them() -> None:
    view = _view(
        {
            9960: {(101, 404): 2},  # the current bucket
            9700: {(101, 404): 1, (102, 409): 1},  # ends 9760, inside the last 5 minutes
            9640: {(103, 500): 4},  # ends exactly 5 minutes ago: the hour only
            6000: {(101, 404): 7},  # ends before the last hour
        },
        workers=3,
        dropped=2,
        oldest_flush_age_s=1.5,
    )
    body = queries.summary(view, now=NOW, width=WIDTH)
    assert body.total_errors == 15
    assert body.error_counts == {101: 10, 102: 1, 103: 4}
    assert body.status_counts == {404: 10, 409: 1, 500: 4}
    assert body.last_5m == 4
    assert body.last_1h == 8
    assert body.bucket_count == 4
    assert (body.workers, body.dropped, body.oldest_flush_age_s) == (3, 2, 1.5)
    assert body.timestamp == datetime.fromtimestamp(NOW, timezone.utc).isoformat()


def test_code_stats_of_one_code_and_of_an_unknown_one() -> None:
    view = _view({9960: {(101, 404): 2, (101, 400): 1, (102, 409): 5}, 6000: {(101, 404): 4}})
    event = ErrorEvent(101, "UserNotFound", 404, "user missing", path="/users/{id}")
    stats = queries.code_stats(view, 101, [event], now=NOW, width=WIDTH)
    assert stats.error_name == "UserNotFound"
    assert stats.total == stats.count == 7
    assert stats.status_counts == {404: 6, 400: 1}
    assert (stats.last_5m, stats.last_1h) == (3, 3)
    assert [e.event_id for e in stats.recent_events] == [event.event_id]
    assert stats.timestamp == datetime.fromtimestamp(NOW, timezone.utc).isoformat()
    unknown = queries.code_stats(view, 999, [], now=NOW, width=WIDTH)  # the original: count 0
    assert (unknown.error_code, unknown.count, unknown.total) == (999, 0, 0)
    assert (unknown.error_name, unknown.status_counts, unknown.recent_events) == ("", {}, [])
    assert (unknown.last_5m, unknown.last_1h) == (0, 0)


def test_code_stats_names_the_overflow_series_other() -> None:
    view = _view({9960: {OVERFLOW: 3}})
    stats = queries.code_stats(view, OVERFLOW_CODE, [], now=NOW, width=WIDTH)
    assert (stats.error_name, stats.total, stats.recent_events) == ("other", 3, [])


# -- top errors -------------------------------------------------------------------------------


def test_top_errors_largest_first_ties_by_code_with_shares() -> None:
    view = _view({60: {(103, 500): 3, (101, 404): 3, (102, 409): 1, (104, 418): 2, OVERFLOW: 3}})
    rows = queries.top_errors(view, 4)
    assert [(r.error_code, r.count) for r in rows] == [(-1, 3), (101, 3), (103, 3), (104, 2)]
    assert [r.error_name for r in rows] == ["other", "UserNotFound", "Boom", ""]
    assert [r.share for r in rows] == [0.25, 0.25, 0.25, round(2 / 12, 6)]
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    assert queries.top_errors(view, 1)[0].error_code == OVERFLOW_CODE


def test_top_errors_of_an_empty_fleet() -> None:
    assert queries.top_errors(_view({}), 10) == []


def test_recent_counts_the_events_and_stamps_the_answer() -> None:
    events = [ErrorEvent(101, "UserNotFound", 404, f"missing {i}") for i in range(3)]
    body = queries.recent(events, now=NOW)
    assert body.count == 3
    assert [e.event_id for e in body.events] == [e.event_id for e in events]
    assert body.timestamp == datetime.fromtimestamp(NOW, timezone.utc).isoformat()
    assert queries.recent([], now=NOW).model_dump() == {
        "events": [],
        "count": 0,
        "timestamp": body.timestamp,
    }


# -- timeseries grid --------------------------------------------------------------------------


def test_grid_defaults_follow_retention_and_default_points() -> None:
    assert resolve_grid(None, None, 60, 86400) == Grid(3600, 60, 60, 60, 86400)
    assert resolve_grid(None, None, 60, 600) == Grid(600, 60, 10, 60, 600)
    # A day in one-minute buckets: the smallest multiple of 60 giving at most 120 points.
    day = resolve_grid(86400, None, 60, 86400)
    assert (day.step_s, day.points) == (720, 120)
    # A step that does not divide the window rounds the points up: the steps cover more.
    odd = resolve_grid(1000, 300, 60, 86400)
    assert (odd.points, odd.span_s) == (4, 1200)


@pytest.mark.parametrize(
    ("window", "step", "width", "retention", "words"),
    [
        (7200, None, 60, 3600, "longer than the retention (3600 s)"),
        (86400, None, 1, 86400, "more than 10080 buckets of 1 s"),
        (3600, 90, 60, 86400, "step=90 must be a multiple of the bucket width (60 s)"),
        (600, 1200, 60, 86400, "step=1200 must not be longer than window=600"),
        (1441, 1, 1, 86400, "window/step gives 1441 points; at most 1440"),
    ],
)
def test_bad_grids_are_value_errors_naming_the_rule(
    window: int, step: int | None, width: int, retention: int, words: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        resolve_grid(window, step, width, retention)


# -- timeseries values ------------------------------------------------------------------------

#: Grid of 10 one-minute steps ending with the one holding NOW_TS: 59_460 ... 60_000.
NOW_TS = 60_030.0
FIRST, LAST = 59_460, 60_000
SERIES_BUCKETS = {
    LAST: {(101, 404): 3, (102, 500): 1},
    FIRST: {(101, 404): 2, (103, 409): 4, OVERFLOW: 5},
    FIRST - 60: {(101, 404): 100},  # before the first step
    LAST + 60: {(101, 404): 100},  # after the last step
}


def test_timeseries_aligns_the_grid_and_folds_the_rest_into_other() -> None:
    view = _view(SERIES_BUCKETS)
    body = queries.timeseries(view, resolve_grid(600, 60, 60, 86400), now=NOW_TS, top=1)
    assert (body.start_epoch, body.end_epoch, body.points) == (FIRST, LAST + 60, 10)
    assert body.timestamps_epoch == list(range(FIRST, LAST + 1, 60))
    assert body.timestamps[0] == datetime.fromtimestamp(FIRST, timezone.utc).isoformat()
    top, other = body.series
    assert (top.key, top.error_code, top.error_name, top.total) == ("101", 101, "UserNotFound", 5)
    assert top.counts == [2, 0, 0, 0, 0, 0, 0, 0, 0, 3]
    # "other" holds the codes past ``top`` and the overflow series.
    assert (other.key, other.error_code, other.error_name) == ("other", None, "other")
    assert other.counts == [9, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert body.total == 15 == sum(s.total for s in body.series)
    assert body.status_classes == {"4xx": 9, "5xx": 1, "other": 5}


def test_timeseries_other_is_only_the_overflow_when_every_code_is_shown() -> None:
    view = _view(SERIES_BUCKETS)
    body = queries.timeseries(view, resolve_grid(600, 60, 60, 86400), now=NOW_TS, top=5)
    assert [(s.key, s.error_name, s.total) for s in body.series] == [
        ("101", "UserNotFound", 5),
        ("103", "Boom", 4),
        ("102", "Conflict", 1),
        ("other", "other", 5),
    ]


def test_timeseries_of_an_empty_view_has_only_a_zero_other_line() -> None:
    body = queries.timeseries(_view({}), resolve_grid(300, 60, 60, 86400), now=NOW_TS, top=5)
    assert [(s.key, s.counts) for s in body.series] == [("other", [0] * 5)]
    assert (body.total, body.status_classes) == (0, {"4xx": 0, "5xx": 0})


# -- routes, Sentry links, CSV cells ----------------------------------------------------------


def _route_view(**extra: Any) -> FleetView:
    return FleetView(totals={}, names={}, buckets={}, **extra)


def test_routes_of_a_window_sum_its_buckets_and_rank_by_errors() -> None:
    view = _route_view(
        requests={("/a", "GET", 2): 1000, ("/b", "GET", 5): 1},
        request_buckets={
            9960: {("/a", "GET", 2): 7, ("/a", "GET", 4): 2, ("/b", "POST", 5): 2},
            9900: {("/a", "GET", 5): 1, ("/c", "GET", 2): 4, ("/b", "POST", 2): 1},
            9840: {("other", "other", 4): 3},
        },
        route_error_buckets={
            9960: {
                (101, "UserNotFound", 404, "/a", "GET"): 2,
                (500, "Undeclared", 500, "/b", "POST"): 2,
            },
            9900: {(103, "Boom", 500, "/a", "GET"): 1},
            9840: {(OVERFLOW_CODE, "other", 404, "other", "other"): 3},
        },
        route_folded=3,
    )
    body = queries.routes(view, 300, limit=10, now=NOW, width=WIDTH)
    assert [(r.route, r.method, r.requests, r.errors, r.errors_5xx) for r in body.routes] == [
        ("/a", "GET", 10, 3, 1),
        ("other", "other", 3, 3, 0),  # as many errors as /a, fewer 5xx
        ("/b", "POST", 3, 2, 2),
        ("/c", "GET", 4, 0, 0),
    ]
    first = body.routes[0]
    assert first.error_ratio == 0.3
    assert [(e.error_code, e.count) for e in first.top_errors] == [(101, 2), (103, 1)]
    assert (body.requests, body.errors, body.errors_5xx) == (20, 8, 3)
    assert body.error_ratio == 0.4
    assert (body.route_count, body.route_folded) == (4, 3)
    assert body.start_epoch == 9660  # the bucket that holds now - 300
    assert queries.routes(view, 300, limit=1, now=NOW, width=WIDTH).routes[0].route == "/a"


def test_routes_all_time_reads_the_totals() -> None:
    view = _route_view(
        requests={("/a", "GET", 2): 9, ("/a", "GET", 5): 1},
        request_buckets={9960: {("/a", "GET", 2): 1}},
    )
    body = queries.routes(view, 0, limit=10, now=NOW, width=WIDTH)
    assert [(r.requests, r.errors, r.error_ratio) for r in body.routes] == [(10, 1, 0.1)]
    assert (body.start, body.start_epoch, body.window_s) == (None, None, 0)
    empty = queries.routes(_route_view(), 0, limit=10, now=NOW, width=WIDTH)
    assert (empty.routes, empty.error_ratio) == ([], None)


def test_resolve_window() -> None:
    assert queries.resolve_window(None, 60, 86400) == 3600
    assert queries.resolve_window(None, 60, 600) == 600
    assert queries.resolve_window(0, 60, 600) == 0
    with pytest.raises(ValueError, match="retention"):
        queries.resolve_window(601, 60, 600)
    with pytest.raises(ValueError, match="buckets"):
        queries.resolve_window(86400, 1, 86400)


SENTRY_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("exemplar", "base", "expected"),
    [
        ({"e": "ev-1", "s": SENTRY_ID}, "https://s.example/organizations/o/", SENTRY_ID),
        ({"e": "ev-1", "s": SENTRY_ID}, None, None),
        ({"e": "ev-2", "s": SENTRY_ID}, "https://s.example/organizations/o", None),
        ({"e": "ev-1"}, "https://s.example/organizations/o", None),
        ({"r": "req-1", "s": SENTRY_ID}, "https://s.example/organizations/o", None),
        ({"e": "ev-1", "s": "x" * 32}, "https://s.example/organizations/o", None),
    ],
)
def test_sentry_url(exemplar: dict[str, Any], base: str | None, expected: str | None) -> None:
    event = ErrorEvent(101, "UserNotFound", 404, "m", path="/u/{id}", method="GET", event_id="ev-1")
    view = _route_view(exemplars={(101, "UserNotFound", 404, "/u/{id}", "GET"): exemplar})
    url = queries.sentry_url(event, queries.sentry_links(view), base)
    if expected is None:
        assert url is None
    else:
        assert url == f"https://s.example/organizations/o/issues/?query={expected}"


def test_sentry_links_need_a_view() -> None:
    assert queries.sentry_links(None) == {}


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\uff1dx", "'\uff1dx"),
        ("a=1", "a=1"),
        ("/users/{id}", "/users/{id}"),
        ("", ""),
        (None, ""),
        (-1, -1),
        (0.25, 0.25),
    ],
)
def test_csv_cell(value: Any, cell: Any) -> None:
    assert export.csv_cell(value) == cell


def test_render_csv_quotes_and_defuses() -> None:
    text = export.render_csv(["a", "b"], [["=x", 'q"uote, and\nnewline'], [-1, None]])
    assert text == 'a,b\r\n\'=x,"q""uote, and\nnewline"\r\n-1,\r\n'
