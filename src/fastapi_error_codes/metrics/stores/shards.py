"""Sharded keys: the hash tags of ``redis_shards`` and the merge of the shards' reads.

With ``MetricsConfig.redis_shards`` = N the Redis store keeps N copies of its key layout, each
under a hash tag of its own, so a Redis Cluster can spread them over its primaries. Each worker
writes to one shard only (picked by its id), so every batch is still one script call on one
node and is applied exactly once there. Readers read every shard and merge: counts add up, the
series caps and names apply fleet-wide, recent events are merged by time.

Shard 0 is always ``{namespace}``, the tag of the unsharded layout, so raising N keeps what is
stored. The other tags are ``{namespace#j}``, with ``j`` the smallest number whose Cluster hash
slot falls in the middle of the shard's share of the 16384 slots: on a Cluster whose primaries
own equal ranges of slots (what ``redis-cli --cluster create`` makes) N shards spread evenly
over up to N primaries. ``#`` is never part of a namespace, so no namespace's tag is another's
shard. Which shard a worker writes to: :func:`shard_of`.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from ..models import (
    OVERFLOW_CODE,
    FleetView,
    RequestKey,
    RouteErrorKey,
    SeriesKey,
    folded_request,
    folded_route_error,
)
from ..wire import WireEvent, decode_field, decode_request_field, decode_route_error_field

__all__ = ["SLOTS", "merge_events", "merge_views", "shard_of", "shard_tags", "since_of"]

#: Hash slots of a Redis Cluster.
SLOTS = 16384

K = TypeVar("K")

_OVERFLOW: SeriesKey = (OVERFLOW_CODE, OVERFLOW_CODE)


def _slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def shard_tags(namespace: str, count: int) -> tuple[str, ...]:
    """The hash tags (braces included) of *count* shards; shard 0 is ``{namespace}``."""
    first = "{" + namespace + "}"
    if count <= 1:
        return (first,)
    width = SLOTS / count
    home = int(_slot(first) // width)
    tags: list[str] = [first]
    j = 0
    for share in range(count):
        if share == home:
            continue
        low, high = (share + 0.25) * width, (share + 0.75) * width
        while True:
            j += 1
            tag = "{" + f"{namespace}#{j}" + "}"
            if low <= _slot(tag) < high:
                break
        tags.append(tag)
        j = 0
    return tuple(tags)


def shard_of(worker_id: str, count: int, host: str = "") -> int:
    """The shard a worker writes to, from its id alone (0 when there is one shard).

    A worker id of this library starts with the worker's process id (``<pid>-<random>``):
    the shard is then the process id plus a hash of the host's name, modulo *count*, so the
    workers of one host (consecutive process ids, as gunicorn forks them) take consecutive
    shards, and hosts start at different ones. An id without a process id (the first part of
    it that is all digits) is hashed. The same worker always gets the same shard, so its
    retries meet its seq.
    """
    if count <= 1:
        return 0
    for part in worker_id.split("-"):
        if part.isascii() and part.isdigit():
            return (int(part) + zlib.crc32(host.encode("utf-8", "replace"))) % count
    return zlib.crc32(worker_id.encode("utf-8", "replace")) % count


#: How a family's stored fields are decoded (the ``since`` hash prefixes them with its number).
_DECODERS: tuple[Callable[[str], Any], ...] = (
    decode_field,
    decode_request_field,
    decode_route_error_field,
)


def since_of(raw: Mapping[Any, Any]) -> dict[tuple[int, Any], int]:
    """One shard's ``since`` hash: (family, series key) -> first counted (us); bad entries go."""
    out: dict[tuple[int, Any], int] = {}
    for field, value in raw.items():
        text = field.decode("utf-8", "replace") if isinstance(field, bytes) else str(field)
        family, sep, stored = text.partition("|")
        try:
            index = int(family)
            key = (index, _DECODERS[index](stored))
            ms = int(value)
        except (ValueError, IndexError):
            continue
        if sep:
            out[key] = ms
    return out


def _add(into: dict[K, int], cells: Mapping[K, int]) -> None:
    for key, n in cells.items():
        into[key] = into.get(key, 0) + n


def _add_buckets(into: dict[int, dict[K, int]], buckets: Mapping[int, Mapping[K, int]]) -> None:
    for start, cells in buckets.items():
        _add(into.setdefault(start, {}), cells)


def _cap(
    totals: dict[K, int],
    buckets: dict[int, dict[K, int]],
    *,
    family: int,
    limit: int,
    since: Mapping[tuple[int, Any], int],
    fold: Callable[[K], K],
) -> tuple[set[K], int]:
    """Fold the series past *limit* (the newest first counted) into their fold series.

    A fold series (one that *fold* leaves as it is) is no series of its own. Returns the folded
    series and the count moved. The oldest series stay, so a series that has its own label
    keeps it: the set that folds only grows as new series come.
    """
    series = [k for k in totals if fold(k) != k]
    if len(series) <= limit:
        return set(), 0
    series.sort(key=lambda k: (since.get((family, k), 0), cast(Any, k)))
    folded = set(series[limit:])
    moved = 0
    for cells in (totals, *buckets.values()):
        for key in folded & cells.keys():
            n = cells.pop(key)
            target = fold(key)
            cells[target] = cells.get(target, 0) + n
            if cells is totals:
                moved += n
    return folded, moved


def merge_views(
    views: list[FleetView],
    live: list[set[str]],
    since: Mapping[tuple[int, Any], int],
    *,
    max_series: int,
    max_route_series: int,
) -> FleetView:
    """One fleet view from the shards' views: counts summed, caps and names fleet-wide.

    *live* holds each shard's live worker ids (a worker counted once when it moved shards);
    *since* the oldest first-counted time of each series over all shards.
    """
    merged = FleetView(totals={}, names={}, buckets={})
    totals: dict[SeriesKey, int] = {}
    buckets: dict[int, dict[SeriesKey, int]] = {}
    requests: dict[RequestKey, int] = {}
    request_buckets: dict[int, dict[RequestKey, int]] = {}
    route_errors: dict[RouteErrorKey, int] = {}
    route_error_buckets: dict[int, dict[RouteErrorKey, int]] = {}
    exemplars: dict[RouteErrorKey, dict[str, Any]] = {}
    names: dict[int, str] = {}
    for view in views:
        _add(totals, view.totals)
        _add_buckets(buckets, view.buckets)
        _add(requests, view.requests)
        _add_buckets(request_buckets, view.request_buckets)
        _add(route_errors, view.route_errors)
        _add_buckets(route_error_buckets, view.route_error_buckets)
        for key, exemplar in view.exemplars.items():
            if key not in exemplars or exemplar.get("ts", 0) > exemplars[key].get("ts", 0):
                exemplars[key] = exemplar
        for code, name in view.names.items():
            names.setdefault(code, name)  # the lowest shard's name of a code wins
        for name in (
            "dropped",
            "events_dropped",
            "series_folded",
            "flush_failures",
            "sentry_skipped",
            "refused",
            "buffered",
            "route_folded",
            "malformed",
        ):
            setattr(merged, name, getattr(merged, name) + getattr(view, name))
    #: each family: its totals, its window's buckets, what its series fold into, its cap
    families: tuple[tuple[Any, Any, Callable[[Any], Any], int], ...] = (
        (totals, buckets, lambda _key: _OVERFLOW, max_series),
        (requests, request_buckets, folded_request, max_route_series),
        (route_errors, route_error_buckets, folded_route_error, max_route_series),
    )
    folded: list[set[Any]] = []
    for family, (cells, windows, fold, limit) in enumerate(families):
        gone, moved = _cap(cells, windows, family=family, limit=limit, since=since, fold=fold)
        folded.append(gone)
        if family:
            merged.route_folded += moved
        else:
            merged.series_folded += moved
    kept_codes = {code for code, _status in totals}
    merged.names = {code: name for code, name in names.items() if code in kept_codes}
    merged.totals = totals
    merged.buckets = {start: found for start, found in buckets.items() if found}
    merged.requests = requests
    merged.request_buckets = request_buckets
    merged.route_errors = route_errors
    merged.route_error_buckets = route_error_buckets
    merged.exemplars = {k: v for k, v in exemplars.items() if k not in folded[2]}
    merged.workers = len(set().union(*live)) if live else 0
    ages = [v.oldest_flush_age_s for v in views if v.oldest_flush_age_s is not None]
    merged.oldest_flush_age_s = max(ages) if ages else None
    created = [v.created_s for v in views if v.created_s is not None]
    merged.created_s = min(created) if created else None
    merged.eviction_policy = views[0].eviction_policy if views else None
    return merged


def merge_events(shards: Iterable[list[WireEvent]], limit: int) -> list[WireEvent]:
    """The newest *limit* events of the shards' lists (each newest first), newest first."""
    return heapq.nlargest(
        limit, (e for events in shards for e in events), key=lambda e: float(e["t"])
    )
