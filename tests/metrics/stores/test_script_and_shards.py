"""The batch script's cheaper protocol and sharded keys, on the local Redis server.

Names are sent until the script confirms it stored them (and again when a clear lost them),
events travel as compressed entries and older one-event entries stay readable, a key of the
wrong type refuses the batch before anything is written, and ``redis_shards`` spreads workers
over hash tags while every read merges the shards with the caps applied fleet-wide.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from fastapi_error_codes.metrics import MetricsConfig, RedisStore, StoreUnavailable
from fastapi_error_codes.metrics.models import OVERFLOW_CODE, Batch
from fastapi_error_codes.metrics.stores.shards import SLOTS, shard_of, shard_tags
from tests.conftest import delete_namespace

pytestmark = pytest.mark.redis

OVERFLOW = (OVERFLOW_CODE, OVERFLOW_CODE)


def _bucket() -> int:
    now = int(time.time())
    return now - now % 60


def _event(code: int, t: float, text: str = "x") -> str:
    data = {"id": f"e{t}", "t": t, "c": code, "n": f"E{code}", "s": 400, "m": text}
    return json.dumps(data, separators=(",", ":"))


@pytest.fixture
def open_store(redis_url: str) -> Iterator[Callable[..., RedisStore]]:
    """``open_store(namespace=None, **overrides)``: stores on the local Redis, cleaned up."""
    made: list[RedisStore] = []
    namespaces: set[str] = set()

    def open_(namespace: str | None = None, **overrides: Any) -> RedisStore:
        ns = namespace or f"fect-{uuid.uuid4().hex[:12]}"
        namespaces.add(ns)
        config = MetricsConfig.testing(redis_url=redis_url, namespace=ns, **overrides)
        made.append(RedisStore(config))
        return made[-1]

    yield open_
    for store in made:
        store.close()
    for ns in namespaces:
        delete_namespace(redis_url, ns)


def _workers(count: int, shards: int, want: int) -> list[str]:
    """*count* worker ids of shard *want* (of *shards*), as the library makes them."""
    out: list[str] = []
    pid = 1000
    while len(out) < count:
        pid += 1
        worker = f"{pid}-{uuid.uuid4().hex[:12]}"
        if shard_of(worker, shards, socket.gethostname()) == want:
            out.append(worker)
    return out


# ---------------------------------------------------------------- names and events


def test_a_name_is_sent_until_the_script_confirms_it(
    open_store: Callable[..., RedisStore],
) -> None:
    store = open_store()
    sent: list[list[Any]] = []
    script = store._script

    def spy(keys: list[str], args: list[Any]) -> Any:
        sent.append(list(args))
        return script(keys=keys, args=args)

    store._script = spy  # type: ignore[assignment]
    names = {301: "UserNotFound", 500: "InternalError"}
    for seq in (1, 2, 3):
        batch = Batch("w1", seq, {(_bucket(), 301, 404): 1, (_bucket(), 500, 500): 1}, names, [])
        assert store.apply(batch)
    assert "UserNotFound" in sent[0] and "InternalError" in sent[0]
    assert "UserNotFound" not in sent[1] and "UserNotFound" not in sent[2]
    renamed = Batch("w1", 4, {(_bucket(), 301, 404): 1}, {301: "NoSuchUser"}, [])
    assert store.apply(renamed)
    assert "NoSuchUser" in sent[3]  # a new name for a code is sent (and stored)
    assert store.read().names == {301: "NoSuchUser", 500: "InternalError"}


def test_names_come_back_after_another_process_clears_the_namespace(
    open_store: Callable[..., RedisStore],
) -> None:
    writer = open_store()
    other = open_store(writer._config.namespace)
    names = {301: "UserNotFound"}
    assert writer.apply(Batch("w1", 1, {(_bucket(), 301, 404): 1}, names, []))
    other.clear()
    # the worker still believes the name is stored: the script reports it missing at the new
    # series, and the next batch sends it again
    assert writer.apply(Batch("w1", 2, {(_bucket(), 301, 404): 1}, names, []))
    assert writer.apply(Batch("w1", 3, {(_bucket(), 301, 404): 1}, names, []))
    view = other.read()
    assert view.totals == {(301, 404): 2}
    assert view.names == {301: "UserNotFound"}


def test_events_from_older_releases_stay_readable(
    open_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    store = open_store()
    now = time.time()
    client.xadd(store.keys["events"], {"e": _event(1, now - 10)})  # one event per entry
    client.xadd(store.keys["events"], {"e": _event(2, now - 9)})
    batch = Batch("w1", 1, {(_bucket(), 3, 400): 2}, {3: "E3"}, [_event(3, now), _event(4, now)])
    assert store.apply(batch)
    assert [e["c"] for e in store.recent_events(10)] == [4, 3, 2, 1]
    assert [e["c"] for e in store.recent_events(3)] == [4, 3, 2]
    assert [e["c"] for e in store.recent_events(10, error_code=2)] == [2]


def test_recent_events_read_across_many_small_entries(
    open_store: Callable[..., RedisStore],
) -> None:
    store = open_store(max_events=1000)
    now = time.time()
    for seq in range(1, 41):  # 40 entries of 3 events
        events = [_event(seq, now + seq + k / 10) for k in range(3)]
        assert store.apply(Batch("w1", seq, {}, {}, events))
    got = store.recent_events(100)
    assert len(got) == 100
    assert [e["t"] for e in got] == sorted((e["t"] for e in got), reverse=True)
    assert got[0]["c"] == 40


def test_a_damaged_entry_is_skipped_and_counted(
    open_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    store = open_store()
    assert store.apply(Batch("w1", 1, {}, {}, [_event(1, time.time() - 1)]))
    client.xadd(store.keys["events"], {"z": b"not zlib at all"})
    assert [e["c"] for e in store.recent_events(10)] == [1]


@pytest.mark.parametrize(
    "key",
    ["totals", "names", "events", "workers", "seq", "meta", "buffered", "marks"],
)
def test_a_key_of_the_wrong_type_refuses_the_batch_before_any_write(
    open_store: Callable[..., RedisStore], client: redis.Redis, key: str
) -> None:
    store = open_store()
    client.set(store.keys[key], "squatter")
    batch = Batch("w1", 1, {(_bucket(), 301, 404): 1}, {301: "E"}, [_event(301, time.time())])
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        store.apply(batch)
    written = sorted(k.decode() for k in client.scan_iter(match=store.prefix + ":*"))
    assert written == [store.keys[key]]  # nothing else was written
    client.delete(store.keys[key])
    assert store.apply(batch)  # the same batch goes through once the key is gone
    assert store.read().totals == {(301, 404): 1}


def test_a_since_hash_of_the_wrong_type_does_not_stop_the_counts(
    open_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    store = open_store()
    client.set(store.keys["since"], "squatter")  # advisory: its writes cannot fail the script
    assert store.apply(Batch("1-w", 1, {(_bucket(), 301, 404): 2}, {301: "E"}, []))
    assert store.read().totals == {(301, 404): 2}
    assert client.get(store.keys["since"]) == b"squatter"


# ---------------------------------------------------------------- shards


@pytest.mark.parametrize("count", [1, 2, 3, 6, 8, 16])
def test_shard_tags_spread_over_the_slot_range(count: int) -> None:
    from redis.crc import key_slot

    tags = shard_tags("fastapi_errors", count)
    assert tags == shard_tags("fastapi_errors", count)  # the same on every worker
    assert tags[0] == "{fastapi_errors}" and len(set(tags)) == count
    shares = sorted(int(key_slot(t.encode()) // (SLOTS / count)) for t in tags)
    assert shares == list(range(count))  # one tag in each share of the slots
    assert all(t.startswith("{fastapi_errors#") for t in tags[1:])


def test_workers_of_one_host_take_consecutive_shards(
    open_store: Callable[..., RedisStore],
) -> None:
    store = open_store(redis_shards=6)
    tags = [store.shard_for(f"{pid}-{uuid.uuid4().hex[:12]}") for pid in range(300, 312)]
    assert sorted(tags[:6]) == sorted(store.shard_tags)  # six workers, six shards
    assert tags[:6] == tags[6:]  # the same turn again, whatever the random part
    assert store.shard_for("no-process-id") == store.shard_for("no-process-id")
    ns = store._config.namespace
    assert open_store(ns, redis_shards=1).shard_for("301-x") == "{" + ns + "}"


def test_redis_shards_is_checked_at_configuration_time() -> None:
    for bad in (0, 65, 2.5, True, "3"):
        with pytest.raises(ValueError, match="redis_shards must be a whole number from 1 to 64"):
            MetricsConfig(redis_shards=bad)  # type: ignore[arg-type]


def test_workers_write_to_their_shard_and_reads_merge_them(
    open_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    store = open_store(redis_shards=3)
    ns = store._config.namespace
    workers = [w for shard in range(3) for w in _workers(4, 3, shard)]
    now = time.time()
    for seq in (1, 2):
        for i, worker in enumerate(workers):
            events = [_event(100 + i, now + i)] if seq == 2 else []
            batch = Batch(worker, seq, {(_bucket(), 100 + i, 400): i + 1}, {100 + i: "E"}, events)
            assert store.apply(batch)
    for tag in store.shard_tags:
        assert client.exists(f"{tag}:totals")  # every shard holds some of the fleet
    view = store.read(600)
    assert view.total == 2 * sum(range(1, 13))
    assert view.by_code() == {100 + i: 2 * (i + 1) for i in range(12)}
    assert view.workers == 12
    assert view.window_total(0) == view.total
    assert len(view.names) == 12
    newest = store.recent_events(5)
    assert [e["c"] for e in newest] == [111, 110, 109, 108, 107]  # newest first, any shard
    # a reader configured with one shard reads every shard in use
    reader = open_store(ns)
    assert reader.read().total == view.total
    assert [e["c"] for e in reader.recent_events(2)] == [111, 110]
    reader.clear()
    left = [k for p in ("{" + ns + "}:*", "{" + ns + "#*}:*") for k in client.scan_iter(match=p)]
    assert left == []


def test_the_series_cap_applies_fleet_wide_on_read_and_keeps_the_oldest(
    open_store: Callable[..., RedisStore],
) -> None:
    store = open_store(redis_shards=3, max_series=4)
    by_shard = [_workers(1, 3, shard)[0] for shard in range(3)]
    seqs = dict.fromkeys(by_shard, 0)

    def count(worker: str, code: int, n: int = 1) -> None:
        seqs[worker] += 1
        batch = Batch(worker, seqs[worker], {(_bucket(), code, 400): n}, {code: f"E{code}"}, [])
        assert store.apply(batch)

    for code in range(1, 7):  # six series, first counted in turn on the three shards
        count(by_shard[code % 3], code)
    view = store.read(600)
    assert view.totals == {(1, 400): 1, (2, 400): 1, (3, 400): 1, (4, 400): 1, OVERFLOW: 2}
    assert view.buckets[_bucket()] == view.totals
    assert view.series_folded == 2
    assert set(view.names) == {1, 2, 3, 4}
    # later counts of old series and new series: the kept four stay themselves
    count(by_shard[0], 2, 5)  # series 2 counted on another shard too
    count(by_shard[1], 7)
    view = store.read()
    assert view.totals == {(1, 400): 1, (2, 400): 6, (3, 400): 1, (4, 400): 1, OVERFLOW: 3}
    assert view.total == 12


def test_counts_survive_raising_and_lowering_the_shard_count(
    open_store: Callable[..., RedisStore],
) -> None:
    one = open_store()
    ns = one._config.namespace
    assert one.apply(Batch("a-1", 1, {(_bucket(), 1, 400): 5}, {1: "E1"}, []))
    six = open_store(ns, redis_shards=6)
    for i, worker in enumerate(_workers(6, 6, s)[0] for s in range(6)):
        assert six.apply(Batch(worker, 1, {(_bucket(), 2, 400): i + 1}, {2: "E2"}, []))
    two = open_store(ns, redis_shards=2)
    for worker in (_workers(1, 2, s)[0] for s in range(2)):
        assert two.apply(Batch(worker, 1, {(_bucket(), 3, 400): 10}, {3: "E3"}, []))
    want = {(1, 400): 5, (2, 400): 21, (3, 400): 20}
    for shards in (1, 2, 3, 6):
        reader = open_store(ns, redis_shards=shards)
        assert reader.read().totals == want, shards


# ---------------------------------------------------------------- what a review found


def test_series_stored_before_shards_stay_the_oldest(
    open_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    # two series an earlier release stored (no first-counted time), then shards are raised
    first = open_store(max_series=3)
    ns = first._config.namespace
    client.hset(first.keys["totals"], mapping={"1:400": 10, "2:400": 10})
    sharded = open_store(ns, redis_shards=3, max_series=3)
    w0, w1 = _workers(1, 3, 0)[0], _workers(1, 3, 1)[0]
    assert sharded.apply(Batch(w0, 1, {(_bucket(), 3, 400): 1}, {3: "E3"}, []))
    assert sharded.apply(Batch(w1, 1, {(_bucket(), 4, 400): 1}, {4: "E4"}, []))
    before = sharded.read().totals
    assert before == {(1, 400): 10, (2, 400): 10, (3, 400): 1, OVERFLOW: 1}
    # series 1 counted on a second shard now: it is still one of the oldest
    assert sharded.apply(Batch(w1, 2, {(_bucket(), 1, 400): 1}, {1: "E1"}, []))
    assert sharded.read().totals == {**before, (1, 400): 11}


def test_a_reader_with_fewer_shards_folds_like_the_others_from_its_first_read(
    open_store: Callable[..., RedisStore],
) -> None:
    writer = open_store(redis_shards=3, max_series=2)
    ns = writer._config.namespace
    for seq, (code, shard) in enumerate(((1, 0), (2, 1), (3, 2), (2, 2)), start=1):
        worker = _workers(1, 3, shard)[0]
        assert writer.apply(Batch(worker, seq, {(_bucket(), code, 400): code}, {}, []))
    want = writer.read().totals
    assert want == {(1, 400): 1, (2, 400): 4, OVERFLOW: 3}
    reader = open_store(ns, max_series=2)
    assert reader.read().totals == want  # the first read, with one configured shard
    assert reader.read().totals == want
    fresh = open_store(ns, max_series=2)
    assert [e["c"] for e in fresh.recent_events(5)] == []  # no events, but no error either


def test_recent_events_of_a_fresh_reader_with_fewer_shards_come_from_every_shard(
    open_store: Callable[..., RedisStore],
) -> None:
    writer = open_store(redis_shards=3)
    now = time.time()
    for shard in range(3):
        worker = _workers(1, 3, shard)[0]
        assert writer.apply(Batch(worker, 1, {}, {}, [_event(100 + shard, now + shard)]))
    reader = open_store(writer._config.namespace)
    assert [e["c"] for e in reader.recent_events(10)] == [102, 101, 100]


def test_names_are_confirmed_only_for_a_while(
    open_store: Callable[..., RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi_error_codes.metrics.stores import redis as redis_store

    new = open_store()
    old = open_store(new._config.namespace)  # a worker of the app's previous version
    assert new.apply(Batch("1-new", 1, {(_bucket(), 7, 400): 1}, {7: "Renamed"}, []))
    assert old.apply(Batch("2-old", 1, {(_bucket(), 7, 400): 1}, {7: "OldName"}, []))
    assert new.apply(Batch("1-new", 2, {(_bucket(), 7, 400): 1}, {7: "Renamed"}, []))
    assert new.read().names == {7: "OldName"}  # confirmed: not sent again yet
    monkeypatch.setattr(redis_store, "NAMES_RESEND_S", 0.0)
    assert new.apply(Batch("1-new", 3, {(_bucket(), 7, 400): 1}, {7: "Renamed"}, []))
    assert new.read().names == {7: "Renamed"}  # after NAMES_RESEND_S every name is sent again


def test_a_worker_silent_for_the_forget_window_keeps_its_seq_and_heartbeat(
    open_store: Callable[..., RedisStore], client: redis.Redis
) -> None:
    store = open_store()
    batch = Batch("1-w", 1, {(_bucket(), 7, 400): 1}, {7: "E7"}, [])
    assert store.apply(batch)
    client.zadd(store.keys["workers"], {"1-w": 0})  # last seen long before the forget window
    assert store.apply(Batch("1-w", 2, {(_bucket(), 7, 400): 1}, {7: "E7"}, []))
    assert client.zscore(store.keys["workers"], "1-w") not in (None, 0)
    assert client.hget(store.keys["seq"], "1-w") == b"2"
    assert store.read().workers == 1
    assert not store.apply(Batch("1-w", 2, {(_bucket(), 7, 400): 1}, {7: "E7"}, []))
    assert store.read().totals == {(7, 400): 2}


def test_a_redis_older_than_6_2_is_refused_before_any_write(
    redis_url: str, client: redis.Redis
) -> None:
    class OldRedis(redis.Redis):
        def info(self, section: Any = None, *args: Any, **kwargs: Any) -> Any:
            if section == "server":
                return {"redis_version": "6.0.16"}
            return super().info(section, *args, **kwargs)

    ns = f"fect-{uuid.uuid4().hex[:12]}"
    config = MetricsConfig.testing(redis_url=redis_url, namespace=ns)
    store = RedisStore(config, client=OldRedis.from_url(redis_url))
    try:
        with pytest.raises(StoreUnavailable, match=r"Redis 6\.0\.16 is too old.*6\.2"):
            store.apply(Batch("1-w", 1, {(_bucket(), 7, 400): 1}, {7: "E7"}, []))
        assert list(client.scan_iter(match="{" + ns + "}:*")) == []
    finally:
        store.close()
