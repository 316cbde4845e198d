"""The MetricsStore contract for the route series: requests and errors by route, exemplars.

Every test runs once per kind of store (memory, Redis, fakeredis): request totals and errors
by route land exactly once per seq, beside the error series, capped fleet-wide, with the
newest exemplar of each error-by-route series.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from fastapi_error_codes.metrics import MetricsStore
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
from tests.metrics.stores._batches import WIDTH, batch, current_bucket

MakeStore = Callable[..., MetricsStore]


def routes(seq: int, worker: str = "w1", **fields: object) -> Batch:
    """A batch carrying route series (``requests``, ``route_errors``, ``exemplars``, ...)."""
    return dataclasses.replace(batch(seq, worker), **fields)  # type: ignore[arg-type]


def exemplar(request_id: str, trace_id: str | None = None, sentry_id: str | None = None) -> str:
    data: dict[str, object] = {"ts": 1_700_000_000.5, "r": request_id}
    if trace_id:
        data["t"] = trace_id
    if sentry_id:
        data["s"] = sentry_id
    return json.dumps(data)


def test_route_series_count_once_per_seq_with_their_windows(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()
    requests = {(now, "/users/{id}", "GET", 2): 7, (now, "/users/{id}", "GET", 4): 3}
    errors = {(now, 1404, "UserNotFound", 404, "/users/{id}", "GET"): 2}
    errors[(now, 429, "Undeclared", 429, "/users/{id}", "GET")] = 1
    first = routes(1, requests=requests, route_errors=errors)
    assert store.apply(first) is True
    assert store.apply(first) is False  # a retry counts nothing again
    assert store.read(window_s=WIDTH).request_buckets == {}  # read on request only
    view = store.read(window_s=WIDTH, routes=True)
    assert view.requests == {("/users/{id}", "GET", 2): 7, ("/users/{id}", "GET", 4): 3}
    assert view.request_buckets == {now: view.requests}
    assert view.route_errors == {
        (1404, "UserNotFound", 404, "/users/{id}", "GET"): 2,
        (429, "Undeclared", 429, "/users/{id}", "GET"): 1,
    }
    assert view.route_error_buckets == {now: view.route_errors}
    assert view.totals == {}  # the error series (the specification's) are separate
    assert store.apply(routes(2, worker="w2", requests=requests))
    assert store.read().requests[("/users/{id}", "GET", 2)] == 14
    assert store.read().request_buckets == {}  # window_s=0: totals only


def test_routes_with_any_character_round_trip(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()
    odd = "/files/{path:path}\tx:y/ünï"
    store.apply(
        routes(
            1,
            requests={(now, odd, "GET", 5): 1, (now, "<unmatched>", "other", 4): 2},
            route_errors={(now, 500, "Na:me", 500, odd, "GET"): 1},
        )
    )
    view = store.read()
    assert view.requests == {(odd, "GET", 5): 1, ("<unmatched>", "other", 4): 2}
    assert list(view.route_errors) == [(500, "Na:me", 500, odd, "GET")]


def test_route_series_fold_into_other_fleet_wide_keeping_status(make_store: MakeStore) -> None:
    store = make_store(max_route_series=2)
    now = current_bucket()
    store.apply(routes(1, requests={(now, "/a", "GET", 2): 1, (now, "/b", "GET", 2): 1}))
    store.apply(
        routes(
            1,
            worker="w2",
            requests={
                (now, "/a", "GET", 2): 4,
                (now, "/c", "POST", 5): 3,
                (now, "/d", "GET", 2): 1,
            },
            route_errors={
                (now, 1, "A", 400, "/a", "GET"): 1,
                (now, 2, "B", 401, "/a", "GET"): 1,
                (now, 3, "C", 503, "/c", "POST"): 2,
            },
            route_folded=5,
        )
    )
    view = store.read(window_s=WIDTH, routes=True)
    assert view.requests == {
        ("/a", "GET", 2): 5,
        ("/b", "GET", 2): 1,
        ("other", "other", 5): 3,  # the status class is kept: 5xx ratios stay exact
        ("other", "other", 2): 1,
    }
    assert view.route_errors == {
        (1, "A", 400, "/a", "GET"): 1,
        (2, "B", 401, "/a", "GET"): 1,
        (OVERFLOW_CODE, "other", 503, "other", "other"): 2,
    }
    assert view.route_folded == 5 + 3 + 1 + 2
    assert sum(view.requests.values()) == 10  # nothing lost by folding
    # a folded series never counts as a series of its own: the cap still holds
    store.apply(routes(2, worker="w2", requests={(now, "other", "other", 2): 1}))
    store.apply(routes(3, worker="w2", requests={(now, "/e", "GET", 2): 1}))
    assert ("/e", "GET", 2) not in store.read().requests


def test_exemplars_keep_the_newest_of_series_of_their_own(make_store: MakeStore) -> None:
    store = make_store(max_route_series=1)
    now = current_bucket()
    key = (1404, "UserNotFound", 404, "/users/{id}", "GET")
    folded = (3, "C", 503, "/c", "POST")
    store.apply(
        routes(
            1,
            route_errors={(now, *key): 1, (now, *folded): 1},
            exemplars={key: exemplar("req-1"), folded: exemplar("req-x")},
        )
    )
    store.apply(
        routes(
            1,
            worker="w2",
            route_errors={(now, *key): 1},
            exemplars={key: exemplar("req-2", "ab" * 16, "cd" * 16)},
        )
    )
    view = store.read()
    assert view.exemplars == {
        key: {"r": "req-2", "t": "ab" * 16, "s": "cd" * 16, "ts": 1_700_000_000.5}
    }


def test_clear_forgets_route_series(make_store: MakeStore) -> None:
    store = make_store()
    now = current_bucket()
    key = (1, "A", 400, "/a", "GET")
    store.apply(
        routes(
            1,
            requests={(now, "/a", "GET", 4): 1},
            route_errors={(now, *key): 1},
            exemplars={key: exemplar("r")},
        )
    )
    store.clear()
    view = store.read(window_s=WIDTH, routes=True)
    assert (view.requests, view.route_errors, view.exemplars) == ({}, {}, {})
    assert (view.request_buckets, view.route_error_buckets, view.route_folded) == ({}, {}, 0)
