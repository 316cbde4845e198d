"""Row 9: the per-request count. ``count_request()`` against prometheus_client's counters.

Request counting (``MetricsConfig(count_requests=True)``) runs once per request, when its
response is done: ``collector.count_request(route, method, status, error, exemplar)``, which
is ``LocalBuffer.count_request`` itself (one lock, one or two dict increments).

- ours, a 2xx: ``count_request(route, method, status)``;
- prometheus_client, a 2xx: ``Counter.labels(route, method, status).inc()``;
- ours, an error response: ``count_request(route, method, status, (code, name, status),
  (request id, None, ...))`` (the response by route, the error by route, its exemplar);
- prometheus_client, an error response: the same ``labels().inc()`` plus an errors counter's
  ``labels(code, name, status, route, method).inc()``.

Both loop over the same inputs in the same interleaved rounds; the bare loop is measured in the
same rounds and subtracted. Afterwards every count must have landed: the memory store's request
and error-by-route totals, and prometheus_client's samples, equal the calls made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._common import Context, Result, gc_paused, interleaved, median, ratio
from .hot_path import make_collector

ROUTES = 20
#: Statuses of the 2xx stream, and of the error stream with their (code, name).
OK_STATUSES = (200, 200, 200, 201, 204)
ERRORS = ((4101, "ItemNotFound", 404), (4102, "ItemExists", 409), (5101, "UpstreamFailed", 502))
METHODS = ("GET", "GET", "POST", "PUT", "DELETE")

Ok = tuple[str, str, int]
Err = tuple[str, str, int, tuple[int, str, int], tuple[str | None, ...]]


def ok_stream(n: int) -> list[Ok]:
    """*n* 2xx responses over ROUTES route templates, methods and statuses (fixed order)."""
    return [
        (f"/api/v1/resource{i % ROUTES}/{{item_id}}", METHODS[i % 5], OK_STATUSES[i % 7 % 5])
        for i in range(n)
    ]


def _exemplar_ids() -> int:
    """How many ids an exemplar carries (the request's first, then trace, Sentry, ...)."""
    from fastapi_error_codes.metrics.buffer import Exemplar

    return len(Exemplar.__args__) - 1  # the last member is its time


def error_stream(n: int) -> list[Err]:
    """*n* error responses: route, method, status, the error and its exemplar."""
    out: list[Err] = []
    padding = (None,) * (_exemplar_ids() - 1)
    for i in range(n):
        code, name, status = ERRORS[i % len(ERRORS)]
        route = f"/api/v1/resource{i % ROUTES}/{{item_id}}"
        out.append((route, METHODS[i % 5], status, (code, name, status), (f"{i:032x}", *padding)))
    return out


def _bare(inputs: list[Any]) -> float:
    start = time.perf_counter()
    for _item in inputs:
        pass
    return time.perf_counter() - start


def _ours_ok(count: Callable[..., None], inputs: list[Ok]) -> float:
    start = time.perf_counter()
    for route, method, status in inputs:
        count(route, method, status)
    return time.perf_counter() - start


def _prom_ok(counter: Any, inputs: list[Ok]) -> float:
    labels = counter.labels
    start = time.perf_counter()
    for route, method, status in inputs:
        labels(route, method, status).inc()
    return time.perf_counter() - start


def _ours_err(count: Callable[..., None], inputs: list[Err]) -> float:
    start = time.perf_counter()
    for route, method, status, error, exemplar in inputs:
        count(route, method, status, error, exemplar)
    return time.perf_counter() - start


def _prom_err(requests: Any, errors: Any, inputs: list[Err]) -> float:
    by_route, by_error = requests.labels, errors.labels
    start = time.perf_counter()
    for route, method, status, error, _exemplar in inputs:
        by_route(route, method, status).inc()
        by_error(error[0], error[1], error[2], route, method).inc()
    return time.perf_counter() - start


def _counters() -> tuple[Any, Any]:
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry(auto_describe=False)
    requests = Counter(
        "fec_bench_requests", "requests", ["route", "method", "status"], registry=registry
    )
    errors = Counter(
        "fec_bench_route_errors",
        "errors by route",
        ["error_code", "error_name", "status_code", "route", "method"],
        registry=registry,
    )
    return requests, errors


def _prom_total(counter: Any) -> int:
    samples = (s for m in counter.collect() for s in m.samples if s.name.endswith("_total"))
    return int(sum(s.value for s in samples))


def run(ctx: Context) -> list[Result]:
    """Row 9: microseconds per count, ours against prometheus_client, interleaved."""
    n = ctx.pick(200_000, 50_000, 500)
    repeats = ctx.pick(ctx.repeats, max(3, ctx.repeats // 2), 1)
    ok, err = ok_stream(n), error_stream(n)
    ctx.log(f"row 9: per-request count, {n} calls x {repeats} rounds")

    collector = make_collector()
    count = collector.count_request
    requests, errors = _counters()

    def per_call(fn: Callable[[], float]) -> Callable[[], float]:
        def sample() -> float:
            with gc_paused():
                return fn() / n * 1e6

        return sample

    samples = interleaved(
        {
            "bare": per_call(lambda: _bare(ok)),
            "ours_2xx": per_call(lambda: _ours_ok(count, ok)),
            "prom_2xx": per_call(lambda: _prom_ok(requests, ok)),
            "ours_error": per_call(lambda: _ours_err(count, err)),
            "prom_error": per_call(lambda: _prom_err(requests, errors, err)),
        },
        repeats,
    )

    # Correctness: every count landed, ours in the store, theirs in their samples.
    rounds = repeats + 1  # the warm-up round counts too
    if not collector.flush(timeout=10):
        raise AssertionError("the collector did not flush")
    view = collector.store.read()
    collector.close(timeout=5)
    responses = sum(view.requests.values())
    by_route = sum(view.route_errors.values())
    if responses != 2 * rounds * n or by_route != rounds * n:
        raise AssertionError(
            f"ours counted {responses} responses and {by_route} errors by route, "
            f"{2 * rounds * n} and {rounds * n} were made"
        )
    if view.route_folded:
        raise AssertionError(f"{view.route_folded} route series were folded")
    if _prom_total(requests) != 2 * rounds * n or _prom_total(errors) != rounds * n:
        raise AssertionError("prometheus_client's counts differ from the calls made")

    bare = median(samples["bare"])
    ours_ok = median(samples["ours_2xx"]) - bare
    prom_ok = median(samples["prom_2xx"]) - bare
    ours_err = median(samples["ours_error"]) - bare
    prom_err = median(samples["prom_error"]) - bare
    extra = {"calls_per_round": n, "rounds": repeats, "routes": ROUTES, "bare_us": bare}
    return [
        Result(
            row=9,
            what="per-request count, 2xx: count_request() vs prometheus_client "
            "Counter.labels(route, method, status).inc()",
            unit="us/call",
            us=ours_ok,
            peer=prom_ok,
            peer_name="prometheus_client single-process",
            ratio=ratio(ours_ok, prom_ok),
            aim="< 1 us",
            met=ours_ok < 1.0,
            samples=samples,
            extra=extra,
        ),
        Result(
            row=9,
            what="per-request count, error response: count_request() with the error and its "
            "exemplar vs two labels().inc() (requests, errors by route)",
            unit="us/call",
            us=ours_err,
            peer=prom_err,
            peer_name="prometheus_client single-process",
            ratio=ratio(ours_err, prom_err),
            aim="- (context)",
            met=None,
        ),
    ]
