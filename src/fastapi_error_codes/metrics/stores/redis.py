"""The fleet store: every worker's batches land in Redis hashes and a capped stream.

All keys of a shard share its hash tag (``{namespace}`` with one shard, the default), so one
Lua call touches them all on a single Redis, Sentinel or Cluster node alike. A batch is
applied by one script that first checks the worker's last applied ``seq``: a retry after a
lost reply never counts twice. With ``redis_shards`` > 1 each worker writes to one shard and
readers merge them all (:mod:`.shards`).
"""

from __future__ import annotations

import functools
import logging
import socket
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import MAX_REDIS_SHARDS, MetricsConfig
from ..models import (
    Batch,
    FleetView,
    RequestKey,
    RouteErrorKey,
    SeriesKey,
    folded_request,
    folded_route_error,
)
from ..wire import (
    FILTER_SCAN,
    OVERFLOW_FIELD,
    WireEvent,
    decode_exemplar,
    decode_field,
    decode_request_field,
    decode_route_error_field,
    encode_field,
    encode_request_field,
    encode_route_error_field,
    select_events,
)
from .base import BatchRejected, StoreUnavailable, describe_error, window_starts
from .shards import merge_events, merge_views, shard_of, shard_tags, since_of

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

__all__ = ["APPLY_SCRIPT", "RETIRE_SCRIPT", "RedisStore", "connect", "pack_events"]

_log = logging.getLogger("fastapi_error_codes.metrics")

K = TypeVar("K")

_MISSING_EXTRA = (
    "the Redis store needs redis-py: pip install 'fastapi-error-codes[redis]' (or [monitoring])"
)

SCHEMA_VERSION = "1"


def _load_script() -> str:
    """The batch script (``apply_batch.lua``, package data; its KEYS/ARGV are documented there)."""
    return (resources.files("fastapi_error_codes.metrics.stores") / "apply_batch.lua").read_text(
        encoding="utf-8"
    )


APPLY_SCRIPT = _load_script()


@contextmanager
def _store_errors() -> Iterator[None]:
    """Translate redis-py's exceptions into the store's own (the collector knows no redis-py)."""
    from redis.exceptions import DataError, RedisError

    try:
        yield
    except DataError as exc:  # redis-py can never encode this batch
        raise BatchRejected(describe_error(exc)) from exc
    except (RedisError, OSError) as exc:  # unreachable, timed out, or a Redis error reply
        raise StoreUnavailable(describe_error(exc), maybe_applied=_maybe_sent(exc)) from exc


def _maybe_sent(exc: BaseException) -> bool:
    """False when redis-py failed before sending anything: no connection could be made."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.sentinel import MasterNotFoundError

    if isinstance(exc, MasterNotFoundError):
        return False
    if isinstance(exc, (RedisConnectionError, ConnectionRefusedError)):
        text = str(exc)
        return not ("connecting to" in text or "Connection refused" in text)
    return True


def connect(
    config: MetricsConfig, *, max_connections: int | None = None, replica: bool = False
) -> Redis | RedisCluster:
    """Open a client for ``config.redis_url`` with explicit timeouts and no hidden retries.

    ``redis://``, ``rediss://`` and ``unix://`` give a plain client; ``redis+cluster://``
    (``rediss+cluster://``) a Cluster client; ``redis+sentinel://[:password@]host:port[,
    host:port...]/service_name[/db]`` the master of a Sentinel-managed service (with
    *replica*, one of its replicas, or the master when it has none).
    """
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.cluster import RedisCluster
        from redis.retry import Retry
        from redis.sentinel import Sentinel
    except ImportError as exc:  # pragma: no cover - exercised in the no-extras env
        raise ImportError(_MISSING_EXTRA) from exc

    url = config.redis_url or ""
    timeout = config.redis_timeout_ms / 1000
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # The flusher owns retries (the same batch, with backoff); redis-py must not retry
        # behind its back, and must not hang a reader for its default 10 attempts.
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
        "max_connections": max_connections or config.redis_max_connections,
    }
    scheme, _, rest = url.partition("://")
    if scheme.endswith("+cluster"):
        base = scheme.removesuffix("+cluster")
        return RedisCluster.from_url(f"{base}://{rest}", **options)
    if scheme.endswith("+sentinel"):
        parts = urlsplit(f"{scheme.removesuffix('+sentinel')}://{rest}")
        hosts = []
        for hostport in parts.netloc.rpartition("@")[2].split(","):
            host, _, port = hostport.rpartition(":")
            hosts.append((host or hostport, int(port) if host else 26379))
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("redis+sentinel:// URLs need the service name: .../mymaster[/db]")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            hosts,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            password=unquote(parts.password) if parts.password else query.get("password"),
            ssl=scheme.startswith("rediss"),
        )
        db = int(path[1]) if len(path) > 1 else 0
        find = sentinel.slave_for if replica else sentinel.master_for
        master: Redis = find(  # type: ignore[no-untyped-call,unused-ignore]
            path[0],
            db=db,
            retry=options["retry"],
            health_check_interval=30,
            max_connections=options["max_connections"],
        )
        return master
    return redis.Redis.from_url(url, **options)


#: Take a worker that shut down out of the live window, by Redis's clock. KEYS[1] workers;
#: ARGV[1] the live window (ms), ARGV[2] the worker id.
RETIRE_SCRIPT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now_ms - tonumber(ARGV[1]) - 1, ARGV[2])
"""

#: The keys every batch touches, in the script's KEYS order (apply_batch.lua).
_FIXED_KEYS = (
    "totals",
    "names",
    "events",
    "workers",
    "seq",
    "meta",
    "buffered",
    "requests",
    "route_errors",
    "exemplars",
    "since",
    "marks",
)
#: Events per stream entry (the script's ARGV carries them packed, one per line).
EVENTS_PER_ENTRY = 100
#: Bucket hashes per family (errors, requests, errors by route): ``{ns}:<kind>:<start>``.
_BUCKET_KINDS = ("bucket", "requests", "route_errors")

#: How often the store looks at the server's maxmemory-policy again (a failover may change it).
EVICTION_CHECK_S = 300.0


#: How often a sharded store records its shard count again (a clear deletes the record).
REGISTER_S = 60.0
#: How long the names a script confirmed storing are not sent again: a name another process
#: changed or deleted (a clear) is put right within this time.
NAMES_RESEND_S = 300.0
#: Redis versions the batch script needs (``XTRIM MINID``, exclusive ranges: 6.2).
MIN_REDIS_VERSION = (6, 2)

#: A clock sample whose round trip took longer than this (and than twice the best one seen) is
#: not used: its error can be half the round trip (a WAIT, a slow reply).
_SAMPLE_RTT_S = 0.05


class _Shard:
    """The keys of one shard: its hash tag, the script's fixed keys, its bucket keys."""

    __slots__ = ("fixed", "keys", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.keys = {name: f"{tag}:{name}" for name in _FIXED_KEYS}
        self.fixed = [self.keys[name] for name in _FIXED_KEYS]

    def bucket_key(self, start_s: int, family: int = 0) -> str:
        """Key of the bucket hash of *family* (0 errors, 1 requests, 2 errors by route)."""
        return f"{self.tag}:{_BUCKET_KINDS[family]}:{start_s}"


@functools.lru_cache(maxsize=64)
def _layout(namespace: str, count: int) -> tuple[_Shard, ...]:
    """The shards of *namespace* with *count* shards (computed once per process)."""
    return tuple(_Shard(tag) for tag in shard_tags(namespace, count))


class RedisStore:
    """Fleet-wide store on Redis (standalone, Sentinel or Cluster) behind the store protocol.

    Writes (the flusher's batches) and reads (scrapes, the dashboard) use separate clients and
    connection pools, so a storm of reads can never take the connections the flusher needs.
    Redis's clock is the fleet's: the offset of this process's clock to it is measured at every
    batch and every read, and :meth:`now` gives Redis's time by this process's clock.
    """

    def __init__(
        self,
        config: MetricsConfig,
        client: Redis | RedisCluster | None = None,
        *,
        read_client: Redis | RedisCluster | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Use *client* (and *read_client*; default: the same), or connect to ``redis_url``.

        *clock* is this worker's wall clock (``time.time``); tests pass a skewed one. Nothing is
        sent until first use.
        """
        self._config = config
        if client is None:
            client = connect(config)
            if read_client is None:
                # With redis_min_replicas behind Sentinel, reads come from a replica: they see
                # only what a failover keeps, so the fleet total never goes back down.
                replica = bool(config.redis_min_replicas) and "+sentinel" in (
                    config.redis_url or ""
                )
                read_client = connect(
                    config, max_connections=config.read_concurrency + 1, replica=replica
                )
        self._client = client
        self._reader = read_client if read_client is not None else client
        from redis.cluster import RedisCluster

        # A Cluster pipeline refuses TIME: there the offset comes from the batch script's reply
        # (Redis's TIME on the namespace's node) and from sync_clock().
        self._cluster = isinstance(self._client, RedisCluster)
        self._replica_reads = self._reader is not self._client and bool(config.redis_min_replicas)
        self._clock = clock or time.time
        self._offset: float | None = None
        self._best_rtt = float("inf")
        # The replication id of this master while it had replicas (redis_min_replicas).
        self._replid_with_replicas: str | None = None
        # The shards this store writes to (a worker to one of them, by its id), and every
        # shard count known to be in use in the namespace: readers read all their shards.
        self._shards = self._shards_of(config.redis_shards)
        home = self._shards[0]
        self.prefix = home.tag
        self.keys = home.keys
        self._counts_key = f"{home.tag}:shards"
        self._counts_in_use = {1, config.redis_shards}
        self._host = socket.gethostname()
        self._registered_at = -EVICTION_CHECK_S
        # Names the script confirmed it stored, per shard, and names to send again.
        self._names_stored: dict[int, dict[int, str]] = {}
        self._names_resend: dict[int, dict[int, str]] = {}
        self._names_confirmed_at = time.monotonic()
        self._version_checked = False
        self._script = self._client.register_script(APPLY_SCRIPT)
        self._retire = self._client.register_script(RETIRE_SCRIPT)
        self._eviction_checked = -EVICTION_CHECK_S
        self._eviction_policy: str | None = None
        self._policies_seen = ""
        self._replicas_seen = config.redis_min_replicas
        self._malformed_logged = False

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client the flusher writes with."""
        return self._client

    @property
    def read_client(self) -> Redis | RedisCluster:
        """The redis-py client reads use (its own connection pool)."""
        return self._reader

    @property
    def clock_offset_s(self) -> float:
        """Redis's clock minus this process's, as last measured (0.0 before any round trip)."""
        return self._offset or 0.0

    def now(self) -> float:
        """Redis's time (Unix seconds) by this process's clock and the measured offset."""
        return self._clock() + (self._offset or 0.0)

    def sync_clock(self) -> float:
        """Measure the offset to Redis's clock now (one ``TIME``); returns it.

        Asked of the master (the node of the namespace on a Cluster): the clock the batch
        script uses, whatever serves the reads.
        """
        with _store_errors():
            sent = self._clock()
            seconds, micros = self._client.time(**self._namespace_node())
            received = self._clock()
        self._sample(sent, received, seconds * 1000 + micros / 1000, force=True)
        return self.clock_offset_s

    def _sample(self, sent: float, received: float, server_ms: float, force: bool = False) -> None:
        """Take Redis's time *server_ms*, read between *sent* and *received*, as an offset.

        The reply is taken to have been made half-way; a sample whose round trip was long (a
        WAIT, a slow reply) is skipped unless nothing better is known.
        """
        rtt = max(0.0, received - sent)
        if not (force or self._offset is None or rtt <= max(_SAMPLE_RTT_S, 2 * self._best_rtt)):
            return
        self._best_rtt = min(self._best_rtt, rtt)
        self._offset = server_ms / 1000 - (sent + received) / 2

    def _namespace_node(self) -> dict[str, Any]:
        """On a Cluster, the keyword that sends a keyless command to the namespace's node."""
        if not self._cluster:
            return {}
        client: Any = self._client
        return {"target_nodes": client.get_node_from_key(self.keys["totals"])}

    def _all_primaries(self) -> dict[str, Any]:
        """On a Cluster, the keyword that sends a keyless command to every primary."""
        if not self._cluster:
            return {}
        from redis.cluster import RedisCluster

        return {"target_nodes": RedisCluster.PRIMARIES}

    def bucket_key(self, start_s: int, family: int = 0) -> str:
        """Key of shard 0's bucket hash of *family* (0 errors, 1 requests, 2 errors by route)."""
        return self._shards[0].bucket_key(start_s, family)

    @property
    def shard_tags(self) -> tuple[str, ...]:
        """The hash tags this store writes to, shard 0 first (``redis_shards`` of them)."""
        return tuple(shard.tag for shard in self._shards)

    def shard_for(self, worker_id: str) -> str:
        """The hash tag a worker's batches go to."""
        return self._shards[self._home(worker_id)].tag

    def _home(self, worker_id: str) -> int:
        """The index of the shard a worker writes to (:func:`.shards.shard_of`)."""
        return shard_of(worker_id, len(self._shards), self._host)

    def _shards_of(self, count: int) -> tuple[_Shard, ...]:
        """The shards of a layout of *count* shards in this namespace."""
        return _layout(self._config.namespace, count)

    def _read_shards(self, counts: Iterable[int]) -> list[_Shard]:
        """Every shard of the layouts of *counts* shards, each once, shard 0 first."""
        seen: dict[str, _Shard] = {}
        for count in sorted(counts):
            for shard in self._shards_of(count):
                seen.setdefault(shard.tag, shard)
        return list(seen.values())

    def _learn_counts(self, members: Any, shards: list[_Shard]) -> bool:
        """Take the shard counts in use (SMEMBERS of ``{ns}:shards``); True when *shards*,
        the shards just read, miss some of theirs."""
        counts = _counts(members)
        if counts <= self._counts_in_use:
            return False
        self._counts_in_use |= counts
        read = {s.tag for s in shards}
        return any(s.tag not in read for s in self._read_shards(self._counts_in_use))

    def _register_count(self) -> None:
        """Record this layout's shard count under shard 0, so every reader reads its shards.

        Sent before the first batch and every ``REGISTER_S`` (a clear deletes it); one SADD.
        """
        count = len(self._shards)
        mono = time.monotonic()
        if count == 1 or mono - self._registered_at < REGISTER_S:
            return
        with _store_errors():
            self._client.sadd(self._counts_key, count)
        self._registered_at = mono

    # ------------------------------------------------------------------ writes
    def apply(self, batch: Batch) -> bool:
        """Apply *batch* with one script call on its worker's shard; False if it was applied
        before (a retry).

        Raises :class:`BatchRejected` when the batch is a retry older than the forget window
        whose earlier outcome is unknown (applying it could count it twice), and
        :class:`StoreUnavailable` when ``redis_min_replicas`` replicas did not confirm it.
        """
        cfg = self._config
        width = cfg.bucket_width_s
        now_ms = int(self.now() * 1000)
        index = self._home(batch.worker_id)
        shard = self._shards[index]
        bucket_index: dict[tuple[int, int], int] = {}
        count_args: list[str | int] = []
        counted = 0

        def count(family: int, bucket: int, field: str, fold: str, delta: int) -> None:
            nonlocal counted
            if delta <= 0:
                return
            index = 0
            if bucket and (bucket + width + cfg.retention_s) * 1000 > now_ms:
                index = bucket_index.setdefault((family, bucket), len(bucket_index) + 1)
            count_args.extend((family, index, field, fold, delta))
            counted += 1

        for (bucket, code, status), delta in batch.counts.items():
            count(0, bucket, encode_field(code, status), OVERFLOW_FIELD, delta)
        for (bucket, *request), delta in batch.requests.items():
            key = cast("RequestKey", tuple(request))
            fold = encode_request_field(*folded_request(key))
            count(1, bucket, encode_request_field(*key), fold, delta)
        for (bucket, *route_error), delta in batch.route_errors.items():
            error = cast("RouteErrorKey", tuple(route_error))
            fold = encode_route_error_field(*folded_route_error(error))
            count(2, bucket, encode_route_error_field(*error), fold, delta)
        keys = shard.fixed + [shard.bucket_key(b, family) for family, b in bucket_index]
        args: list[str | int | bytes] = [
            SCHEMA_VERSION,
            OVERFLOW_FIELD,
            batch.worker_id,
            batch.seq,
            cfg.forget_s * 1000,
            cfg.max_series,
            cfg.max_events,
            batch.dropped,
            batch.events_dropped,
            batch.series_folded,
            batch.flush_failures,
            batch.sentry_skipped,
            batch.refused,
            batch.buffered,
            batch.age_ms,
            1 if batch.unsure else 0,
            cfg.max_route_series,
            batch.route_folded,
            counted,
            *count_args,
            len(bucket_index),
            *(b + width + cfg.retention_s for _family, b in bucket_index),
        ]
        names = self._names_to_send(index, batch.names)
        args.append(len(names))
        for code, name in names.items():
            args += (code, name)
        args.append(len(batch.exemplars))
        for error, exemplar in batch.exemplars.items():
            args += (encode_route_error_field(*error), exemplar)
        events = batch.events[-cfg.max_events :]
        args.append(-(-len(events) // EVENTS_PER_ENTRY))
        for at in range(0, len(events), EVENTS_PER_ENTRY):
            chunk = events[at : at + EVENTS_PER_ENTRY]
            args += (len(chunk), pack_events(chunk))
        self._check_version()
        self._check_eviction()
        self._register_count()
        sent = self._clock()
        with _store_errors():
            if cfg.redis_min_replicas:
                reply = self._apply_replicated(keys, args)
            else:
                # redis-py's Script reloads itself after NOSCRIPT (restart, failover, flush).
                reply = self._script(keys=keys, args=args)
        status, server_ms = int(reply[0]), int(reply[1])
        self._sample(sent, self._clock(), server_ms)
        if status < 0:
            raise BatchRejected(
                maybe_applied=True,
                message=f"batch {batch.seq} of worker {batch.worker_id} is a retry older than the "
                f"forget window ({cfg.forget_s} s) whose first attempt may have been applied; "
                "its seq is forgotten, so it is refused rather than risk counting it twice",
            )
        if status == 1:
            self._names_confirmed(index, names, reply)
        return status == 1

    def _names_to_send(self, index: int, names: Mapping[int, str]) -> dict[int, str]:
        """The batch's names the script has not confirmed storing, and names to send again.

        Confirmations last ``NAMES_RESEND_S``: then every name is sent (and stored) once more.
        """
        mono = time.monotonic()
        if mono - self._names_confirmed_at >= NAMES_RESEND_S:
            self._names_confirmed_at = mono
            self._names_stored.clear()
        stored = self._names_stored.get(index, {})
        out = {code: name for code, name in names.items() if stored.get(code) != name}
        for code, name in self._names_resend.get(index, {}).items():
            out.setdefault(code, name)
        return out

    def _names_confirmed(self, index: int, sent: Mapping[int, str], reply: Any) -> None:
        """Note the names the script stored, and the codes whose stored name is missing."""
        stored = self._names_stored.setdefault(index, {})
        resend = self._names_resend.setdefault(index, {})
        kept = int(reply[2])
        for raw in reply[3 : 3 + kept]:
            code = int(raw)
            stored[code] = sent[code]
            resend.pop(code, None)
        for raw in reply[3 + kept :]:
            code = int(raw)
            name = stored.pop(code, None) or sent.get(code)
            if name is not None:
                resend[code] = name

    def _apply_replicated(self, keys: list[str], args: list[str | int | bytes]) -> Any:
        """The script, ``INFO replication`` and ``WAIT`` on one connection, as WAIT requires.

        The batch counts as confirmed when ``redis_min_replicas`` replicas acknowledged it.
        Fewer are accepted only from a master that has never had replicas under its current
        replication id: a promoted master without replicas (or a lone development server)
        does not jam the flush, while a master cut off from its replicas keeps every batch
        unconfirmed — sent again — until they are back or a failover replaces it. ``WAIT``
        asks for the replicas seen at the previous batch, so a master without them answers at
        once instead of waiting out the timeout at every flush.
        """
        from redis.exceptions import NoScriptError

        cfg = self._config
        want = cfg.redis_min_replicas
        wait_ms = max(10, min(500, cfg.redis_timeout_ms // 2))
        for _ in range(2):
            pipe = self._client.pipeline(transaction=False)
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            pipe.info("replication")
            pipe.execute_command("WAIT", min(self._replicas_seen, want), wait_ms)
            reply, info, acked = pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):
                self._client.script_load(APPLY_SCRIPT)
                continue
            if isinstance(reply, Exception):
                raise reply
            attached, replid = _replication(info)
            self._replicas_seen = attached
            if attached:
                self._replid_with_replicas = replid
            had_replicas = replid is not None and replid == self._replid_with_replicas
            needed = want if had_replicas else min(attached, want)
            if isinstance(acked, Exception) or int(acked) < needed:
                raise StoreUnavailable(
                    f"the batch reached {acked} of the {needed} replicas redis_min_replicas asks "
                    f"for ({attached} attached) within {wait_ms} ms; it is sent again"
                )
            return reply
        raise StoreUnavailable("the batch script could not be loaded")

    def _check_version(self) -> None:
        """Refuse a Redis older than ``MIN_REDIS_VERSION`` at first use, with a clear message.

        Asked once per store (``INFO server``); a server that does not say is taken as recent.
        The script would fail half-way on an older one, after the counts were written.
        """
        if self._version_checked:
            return
        from redis.exceptions import ResponseError

        try:
            with _store_errors():
                info: Any = self._client.info("server", **self._namespace_node())
        except StoreUnavailable as exc:
            if not isinstance(exc.__cause__, ResponseError):
                raise
            info = {}  # INFO refused (renamed, or an emulation without it): taken as recent
        self._version_checked = True
        found = info.get("redis_version")
        if found is None:  # a Cluster answers per node
            found = next(
                (v.get("redis_version") for v in info.values() if isinstance(v, dict)), None
            )
        try:
            version = tuple(int(p) for p in str(found).split(".")[:2])
        except ValueError:
            return
        if version < MIN_REDIS_VERSION:
            self._version_checked = False
            need = ".".join(map(str, MIN_REDIS_VERSION))
            raise StoreUnavailable(
                f"Redis {found} is too old: fastapi-error-codes needs Redis {need} or later "
                "(XTRIM MINID); the flusher keeps its counts and tries again",
                maybe_applied=False,
            )

    def _check_eviction(self) -> None:
        """Look at the server's maxmemory-policy (``INFO memory``) every few minutes."""
        mono = time.monotonic()
        if mono - self._eviction_checked < EVICTION_CHECK_S:
            return
        self._eviction_checked = mono
        # every primary of a sharded Cluster: the shards live on several
        where = self._namespace_node() if len(self._shards) == 1 else self._all_primaries()
        try:
            info: Any = self._client.info("memory", **where)
        except Exception:  # best effort; the batch itself reports an outage
            return
        policies = {str(v.get("maxmemory_policy")) for v in info.values() if isinstance(v, dict)}
        if "maxmemory_policy" in info:
            policies = {str(info["maxmemory_policy"])}
        seen = ", ".join(sorted(policies))
        risky = sorted(p for p in policies if p.startswith("allkeys-"))
        self._eviction_policy = risky[0] if risky else None
        if seen == self._policies_seen:
            return
        self._policies_seen = seen
        if risky:
            _log.warning(
                "fastapi_error_codes: Redis runs with maxmemory-policy %s: under memory pressure "
                "it may evict this library's keys (%s:totals, :seq, :meta), losing totals and "
                "letting a retried batch count twice. Use noeviction (or a volatile-* policy, "
                "which only evicts the bucket hashes) for the metrics Redis.",
                risky[0],
                self.prefix,
            )
        elif any(p.startswith("volatile-") for p in policies):
            _log.info(
                "fastapi_error_codes: Redis maxmemory-policy %s may evict the bucket hashes "
                "(time windows) under memory pressure; totals and seq have no TTL and stay",
                seen,
            )

    @property
    def eviction_policy(self) -> str | None:
        """The server's maxmemory-policy when it may evict our keys (``allkeys-*``), else None."""
        return self._eviction_policy

    # ------------------------------------------------------------------ reads
    def read(self, window_s: int = 0, *, routes: bool = False) -> FleetView:
        """Read the fleet state in one pipeline; cost grows with series and live workers.

        The window's buckets of the route series are read only with *routes*. With shards,
        every shard of every shard count in use is read (one pipeline per node on a Cluster)
        and merged: counts add up, the series caps and names apply fleet-wide.
        """
        cfg = self._config
        if self._offset is None:
            self.sync_clock()
        self._check_eviction()
        now = self.now()
        starts = window_starts(now, window_s, cfg.bucket_width_s)
        shards = self._read_shards(self._counts_in_use)
        pipe = self._reader.pipeline(transaction=False)
        if not self._cluster:
            pipe.time()
        pipe.smembers(self._counts_key)
        sizes = [self._queue_read(pipe, s, starts, routes, since=len(shards) > 1) for s in shards]
        sent = self._clock()
        with _store_errors():
            results = pipe.execute()
        received = self._clock()
        if not self._cluster:
            seconds, micros = results.pop(0)
            if not self._replica_reads:  # a replica's clock is not the script's
                self._sample(sent, received, seconds * 1000 + micros / 1000)
        if self._learn_counts(results.pop(0), shards):
            # a shard count this worker did not know of is in use: read again, all shards
            return self.read(window_s, routes=routes)
        bad = _Malformed()
        parsed = []
        at = 0
        for size in sizes:
            parsed.append(self._parse_read(results[at : at + size], now, starts, routes, bad))
            at += size
        if len(parsed) == 1:
            view = parsed[0][0]
        else:
            since: dict[tuple[int, Any], int] = {}
            for shard_view, _live, shard_since in parsed:
                # a series stored without a first-counted time (by an earlier release) is older
                # than any with one
                families: tuple[Mapping[Any, int], ...] = (
                    shard_view.totals,
                    shard_view.requests,
                    shard_view.route_errors,
                )
                for family, cells in enumerate(families):
                    for series in cells:
                        key = (family, series)
                        since[key] = min(shard_since.get(key, 0), since.get(key, 1 << 62))
            view = merge_views(
                [v for v, _live, _since in parsed],
                [live for _v, live, _since in parsed],
                since,
                max_series=cfg.max_series,
                max_route_series=cfg.max_route_series,
            )
        view.malformed = bad.found
        if bad.found:
            self._note_malformed(bad.found)
        return view

    def _queue_read(
        self, pipe: Any, shard: _Shard, starts: range, routes: bool, *, since: bool
    ) -> int:
        """Queue one shard's reads (``_parse_read`` takes their replies in this order).

        Returns how many commands were queued.
        """
        live_from = int((self.now() - self._config.live_window_s) * 1000)
        keys = shard.keys
        pipe.hgetall(keys["totals"])
        pipe.hgetall(keys["names"])
        pipe.hgetall(keys["meta"])
        pipe.zrangebyscore(keys["workers"], live_from, "+inf", withscores=True)
        pipe.hgetall(keys["buffered"])
        pipe.hgetall(keys["requests"])
        pipe.hgetall(keys["route_errors"])
        pipe.hgetall(keys["exemplars"])
        if since:
            pipe.hgetall(keys["since"])
        kinds = len(_BUCKET_KINDS) if routes else 1
        for start in starts:
            for family in range(kinds):
                pipe.hgetall(shard.bucket_key(start, family))
        return 8 + since + len(starts) * kinds

    def _parse_read(
        self, results: list[Any], now: float, starts: range, routes: bool, bad: _Malformed
    ) -> tuple[FleetView, set[str], dict[tuple[int, Any], int]]:
        """One shard's view, its live worker ids and the first-counted times of its series."""
        totals_raw, names_raw, meta_raw, live, buffered_raw = results[:5]
        requests_raw, route_errors_raw, exemplars_raw = results[5:8]
        kinds = len(_BUCKET_KINDS) if routes else 1
        windows = results[-len(starts) * kinds :] if starts else []
        since = since_of(results[8]) if len(results) > 8 + len(windows) else {}

        def route_window(
            family: int, decode: Callable[[str | bytes], K]
        ) -> dict[int, dict[K, int]]:
            """The window's non-empty buckets of a route family (none unless *routes*)."""
            if not routes:
                return {}
            found = zip(starts, windows[family::kinds], strict=True)
            return {start: cells for start, raw in found if (cells := bad.routes(raw, decode))}

        meta = {_text(k): _text(v) for k, v in meta_raw.items()}
        created_ms = bad.number(meta.get("created_ms"), None)
        live_ids = {_text(w) for w, _score in live}
        view = FleetView(
            totals=bad.series(totals_raw),
            names=bad.names(names_raw),
            buckets={
                start: cells
                for start, raw in zip(starts, windows[0::kinds], strict=True)
                if raw and (cells := bad.series(raw))
            },
            dropped=bad.count(meta.get("dropped")),
            events_dropped=bad.count(meta.get("events_dropped")),
            series_folded=bad.count(meta.get("series_folded")),
            workers=len(live),
            oldest_flush_age_s=(now - min(s for _w, s in live) / 1000) if live else None,
            created_s=created_ms / 1000 if created_ms else None,
            flush_failures=bad.count(meta.get("flush_failures")),
            sentry_skipped=bad.count(meta.get("sentry_skipped")),
            # "auth_refused": the meta "refused" counts stale retries the script refused
            refused=bad.count(meta.get("auth_refused")),
            buffered=sum(bad.count(v) for w, v in buffered_raw.items() if _text(w) in live_ids),
            eviction_policy=self._eviction_policy,
            requests=bad.routes(requests_raw, decode_request_field),
            request_buckets=route_window(1, decode_request_field),
            route_errors=bad.routes(route_errors_raw, decode_route_error_field),
            route_error_buckets=route_window(2, decode_route_error_field),
            exemplars=bad.exemplars(exemplars_raw),
            route_folded=bad.count(meta.get("route_folded")),
        )
        return view, live_ids, since

    def _note_malformed(self, found: int) -> None:
        if not self._malformed_logged:
            self._malformed_logged = True
            _log.warning(
                "fastapi_error_codes: %d stored entries under %s could not be parsed and were "
                "skipped (exported as fastapi_errors_store_malformed; logged once)",
                found,
                self.prefix,
            )

    def recent_events(self, limit: int, error_code: int | None = None) -> list[WireEvent]:
        """Return up to *limit* newest events, newest first (filtering reads a bounded window).

        Never more than ``max_events`` per shard: the stream may hold a few more (it is cut in
        whole entries), but what readers see is the same bound as in the memory store. Entries
        that cannot be parsed are skipped. With shards, each shard's newest are merged by time.
        """
        if limit <= 0:
            return []
        scan = limit if error_code is None else max(limit, FILTER_SCAN)
        want = min(self._config.max_events, scan)
        shards = self._read_shards(self._counts_in_use)
        per_shard = self._event_texts(shards, want)
        if per_shard is None:  # a shard count this worker did not know of is in use
            shards = self._read_shards(self._counts_in_use)
            per_shard = self._event_texts(shards, want) or []
        found: list[list[WireEvent]] = []
        skipped: list[int] = []
        for texts in per_shard:
            found.append(select_events(texts, limit, error_code, skipped))
        if skipped:
            self._note_malformed(len(skipped))
        return found[0] if len(found) == 1 else merge_events(found, limit)

    def _event_texts(self, shards: list[_Shard], want: int) -> list[list[str | bytes]] | None:
        """The newest *want* stored events of each shard, newest first (one pipeline a round).

        An entry holds up to ``EVENTS_PER_ENTRY`` events (older releases wrote one per entry):
        the first round asks for as many entries as *want* needs when they are full, later
        rounds for what the entries seen so far suggest. None when the first round found a
        shard count in use whose shards are not among *shards*.
        """
        out: list[list[str | bytes]] = [[] for _ in shards]
        cursor = ["+"] * len(shards)
        entries = [0] * len(shards)
        ask = [1 + want // EVENTS_PER_ENTRY] * len(shards)
        active = list(range(len(shards)))
        first = True
        while active:
            pipe = self._reader.pipeline(transaction=False)
            if first:
                pipe.smembers(self._counts_key)
            for i in active:
                pipe.xrevrange(shards[i].keys["events"], cursor[i], "-", count=ask[i])
            with _store_errors():
                replies = pipe.execute()
            if first and self._learn_counts(replies.pop(0), shards):
                return None
            first = False
            still = []
            for i, page in zip(active, replies, strict=True):
                for entry_id, fields in page or ():
                    events = _unpack(fields)
                    if events is None:
                        self._note_malformed(1)
                    else:
                        out[i].extend(events)
                    cursor[i] = "(" + _text(entry_id)
                entries[i] += len(page or ())
                if len(page or ()) == ask[i] and len(out[i]) < want:
                    per_entry = max(1.0, len(out[i]) / max(1, entries[i]))
                    ask[i] = 1 + int((want - len(out[i])) / per_entry)
                    still.append(i)
            active = still
        return [texts[:want] for texts in out]

    def retire(self, worker_id: str) -> None:
        """Take a worker that shut down cleanly out of the live workers at once.

        Its last-seen time (Redis's clock) is moved out of the live window rather than removed,
        so the worker and its seq are still forgotten only after the forget window (a late
        retry stays idempotent till then).
        """
        live_ms = int(self._config.live_window_s * 1000)
        shard = self._shards[self._home(worker_id)]
        with _store_errors():
            self._retire(keys=[shard.keys["workers"]], args=[live_ms, worker_id])

    def clear(self) -> None:
        """Delete every key of this namespace (and only those), in every shard in use."""
        client = self._client
        with _store_errors():
            counts = self._counts_in_use | _counts(client.smembers(self._counts_key))
            keys = [self._counts_key]
            for shard in self._read_shards(counts):
                keys += shard.keys.values()
                for kind in _BUCKET_KINDS:
                    buckets = client.scan_iter(match=f"{shard.tag}:{kind}:*", count=1000)
                    keys += [_text(k) for k in buckets]
            for key in keys:
                client.delete(key)
        self._names_stored.clear()
        self._names_resend.clear()
        self._registered_at = -EVICTION_CHECK_S

    def close(self) -> None:
        """Close the clients' connections."""
        self._client.close()
        if self._reader is not self._client:
            self._reader.close()


def _counts(raw: Any) -> set[int]:
    """The shard counts in use, from the SMEMBERS of ``{namespace}:shards`` (bad ones skipped)."""
    out = {1}
    for member in raw or ():
        try:
            count = int(member)
        except ValueError:
            continue
        if 1 <= count <= MAX_REDIS_SHARDS:
            out.add(count)
    return out


def pack_events(events: Sequence[str]) -> bytes:
    """One stream entry's events: one per line, oldest first, zlib-compressed (field ``z``).

    Compact JSON holds no raw newline (outside strings it would be a space). Similar events
    compress several-fold (tests/bench/test_fleet.py checks the fleet row's events), and a
    script's arguments cost Redis CPU by the byte.
    """
    text = "\n".join(e.replace("\n", " ") if "\n" in e else e for e in events)
    return zlib.compress(text.encode("utf-8", "replace"), 1)


#: The most one stream entry may unpack to (a damaged or foreign entry is cut there).
_MAX_ENTRY_BYTES = 64 * 1024 * 1024


def _unpack(fields: Mapping[Any, Any]) -> list[str | bytes] | None:
    """The events of one stream entry, newest first: field ``z`` (packed) or ``e`` (one).

    None when a packed entry cannot be unpacked.
    """
    packed = fields.get(b"z")
    if packed is not None:
        try:
            text = zlib.decompressobj().decompress(packed, _MAX_ENTRY_BYTES)
        except zlib.error:
            return None
        lines: list[str | bytes] = list(text.split(b"\n"))
        lines.reverse()
        return lines
    single = fields.get(b"e") or fields.get("e")
    return [single] if single is not None else []


def _replication(info: Any) -> tuple[int, str | None]:
    """Replicas online and the replication id, from a parsed ``INFO replication``."""
    if not isinstance(info, dict):
        return 0, None
    online = sum(
        1
        for key, value in info.items()
        if str(key).startswith("slave")
        and isinstance(value, dict)
        and value.get("state") == "online"
    )
    replid = info.get("master_replid")
    return online, str(replid) if replid is not None else None


class _Malformed:
    """Parses stored values defensively: a bad entry is skipped and counted, never fatal."""

    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found = 0

    def series(self, raw: Mapping[Any, Any]) -> dict[SeriesKey, int]:
        out: dict[SeriesKey, int] = {}
        for field, value in raw.items():
            try:
                key = decode_field(field)
                n = int(value)
            except (ValueError, UnicodeDecodeError):
                self.found += 1
                continue
            out[key] = out.get(key, 0) + n
        return out

    def routes(self, raw: Mapping[Any, Any], decode: Callable[[str | bytes], K]) -> dict[K, int]:
        """The route series of one stored hash (requests or errors by route)."""
        out: dict[K, int] = {}
        for field, value in raw.items():
            try:
                key = decode(_text(field))
                n = int(value)
            except (ValueError, UnicodeDecodeError):
                self.found += 1
                continue
            out[key] = out.get(key, 0) + n
        return out

    def exemplars(self, raw: Mapping[Any, Any]) -> dict[RouteErrorKey, dict[str, Any]]:
        """The exemplars hash: error-by-route series -> its newest request's ids."""
        out: dict[RouteErrorKey, dict[str, Any]] = {}
        for field, value in raw.items():
            try:
                key = decode_route_error_field(_text(field))
            except ValueError:
                self.found += 1
                continue
            exemplar = decode_exemplar(value)
            if exemplar:
                out[key] = exemplar
        return out

    def names(self, raw: Mapping[Any, Any]) -> dict[int, str]:
        out: dict[int, str] = {}
        for code, name in raw.items():
            try:
                out[int(code)] = _text(name)
            except (ValueError, UnicodeDecodeError):
                self.found += 1
        return out

    def number(self, value: Any, default: int | None) -> int | None:
        if value is None:
            return default
        try:
            return int(value)
        except (ValueError, UnicodeDecodeError):
            self.found += 1
            return default

    def count(self, value: Any) -> int:
        return max(0, self.number(value, 0) or 0)


def _text(value: bytes | str) -> str:
    """*value* as text; bytes that are not UTF-8 are shown with replacement characters."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
