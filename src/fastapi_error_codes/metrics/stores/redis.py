"""The fleet store: every worker's batches land in Redis hashes and a capped stream.

All keys share the hash tag ``{namespace}``, so one Lua call touches them all on a single
Redis, Sentinel or Cluster alike. A batch is applied by one script that first checks the
worker's last applied ``seq``: a retry after a lost reply never counts twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import MetricsConfig
from ..models import Batch, FleetView
from ..wire import FILTER_SCAN, OVERFLOW_FIELD, WireEvent, decode_field, encode_field, select_events
from .base import BatchRejected, StoreUnavailable, describe_error, window_starts

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

__all__ = ["APPLY_SCRIPT", "RedisStore", "connect"]

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
        raise StoreUnavailable(describe_error(exc)) from exc


def connect(config: MetricsConfig) -> Redis | RedisCluster:
    """Open a client for ``config.redis_url`` with explicit timeouts and no hidden retries.

    ``redis://``, ``rediss://`` and ``unix://`` give a plain client; ``redis+cluster://``
    (``rediss+cluster://``) a Cluster client; ``redis+sentinel://[:password@]host:port[,
    host:port...]/service_name[/db]`` the master of a Sentinel-managed service.
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
        "max_connections": config.redis_max_connections,
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
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            hosts,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            password=unquote(parts.password) if parts.password else query.get("password"),
            ssl=scheme.startswith("rediss"),
        )
        db = int(path[1]) if len(path) > 1 else 0
        master: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            path[0],
            db=db,
            retry=options["retry"],
            health_check_interval=30,
            max_connections=config.redis_max_connections,
        )
        return master
    return redis.Redis.from_url(url, **options)


class RedisStore:
    """Fleet-wide store on Redis (standalone, Sentinel or Cluster) behind the store protocol."""

    def __init__(self, config: MetricsConfig, client: Redis | RedisCluster | None = None) -> None:
        """Use *client*, or connect to ``config.redis_url`` (nothing is sent until first use)."""
        self._config = config
        self._client = client if client is not None else connect(config)
        tag = "{" + config.namespace + "}"
        self.prefix = tag
        self.keys = {
            name: f"{tag}:{name}"
            for name in ("totals", "names", "events", "workers", "seq", "meta")
        }
        self._fixed_keys = [self.keys[k] for k in ("totals", "names", "events", "workers", "seq")]
        self._fixed_keys.append(self.keys["meta"])
        self._script = self._client.register_script(APPLY_SCRIPT)

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client in use."""
        return self._client

    def bucket_key(self, start_s: int) -> str:
        """Key of the bucket hash that starts at *start_s*."""
        return f"{self.prefix}:bucket:{start_s}"

    def apply(self, batch: Batch) -> bool:
        """Apply *batch* with one script call; False if it was applied before (a retry)."""
        cfg = self._config
        width = cfg.bucket_width_s
        now_ms = int(time.time() * 1000)
        bucket_index: dict[int, int] = {}
        count_args: list[str | int] = []
        for (bucket, code, status), delta in batch.counts.items():
            index = 0
            expire_at = 0
            if bucket:
                expire_at = bucket + width + cfg.retention_s
                if expire_at * 1000 > now_ms:
                    index = bucket_index.setdefault(bucket, len(bucket_index) + 1)
            count_args += (index, encode_field(code, status), delta, expire_at)
        keys = self._fixed_keys + [self.bucket_key(b) for b in bucket_index]
        forget_ms = now_ms - max(cfg.retention_s, 86400) * 1000
        args: list[str | int] = [
            SCHEMA_VERSION,
            OVERFLOW_FIELD,
            batch.worker_id,
            batch.seq,
            now_ms,
            cfg.max_series,
            cfg.max_events,
            forget_ms,
            batch.dropped,
            batch.events_dropped,
            batch.series_folded,
            len(batch.counts),
            *count_args,
            len(batch.names),
        ]
        for code, name in batch.names.items():
            args += (code, name)
        args.extend(batch.events[-cfg.max_events :])
        # redis-py's Script reloads itself after NOSCRIPT (restart, failover, SCRIPT FLUSH).
        with _store_errors():
            return bool(self._script(keys=keys, args=args))

    def read(self, window_s: int = 0) -> FleetView:
        """Read the fleet state in one pipeline; cost grows with series, not with workers."""
        cfg = self._config
        now = time.time()
        width = cfg.bucket_width_s
        starts = window_starts(now, window_s, width)
        live_from = int((now - cfg.live_window_s) * 1000)
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self.keys["totals"])
        pipe.hgetall(self.keys["names"])
        pipe.hgetall(self.keys["meta"])
        pipe.zcount(self.keys["workers"], live_from, "+inf")
        pipe.zrangebyscore(self.keys["workers"], live_from, "+inf", start=0, num=1, withscores=True)
        for start in starts:
            pipe.hgetall(self.bucket_key(start))
        with _store_errors():
            results = pipe.execute()
        totals_raw, names_raw, meta_raw, live, oldest = results[:5]
        meta = {_text(k): _text(v) for k, v in meta_raw.items()}
        created_ms = meta.get("created_ms")
        return FleetView(
            totals={decode_field(f): int(v) for f, v in totals_raw.items()},
            names={int(_text(c)): _text(n) for c, n in names_raw.items()},
            buckets={
                start: {decode_field(f): int(v) for f, v in raw.items()}
                for start, raw in zip(starts, results[5:], strict=True)
                if raw
            },
            dropped=int(meta.get("dropped", 0)),
            events_dropped=int(meta.get("events_dropped", 0)),
            series_folded=int(meta.get("series_folded", 0)),
            workers=int(live),
            oldest_flush_age_s=(now - oldest[0][1] / 1000) if oldest else None,
            created_s=int(created_ms) / 1000 if created_ms else None,
        )

    def recent_events(self, limit: int, error_code: int | None = None) -> list[WireEvent]:
        """Return up to *limit* newest events, newest first (filtering reads a bounded window).

        Never more than ``max_events``: the stream may hold a few more (``MAXLEN ~`` trims in
        whole nodes), but what readers see is the same bound as in the memory store.
        """
        if limit <= 0:
            return []
        scan = limit if error_code is None else max(limit, FILTER_SCAN)
        count = min(self._config.max_events, scan)
        with _store_errors():
            entries: Any = self._client.xrevrange(self.keys["events"], "+", "-", count=count)
        texts = (fields.get(b"e") or fields.get("e") for _id, fields in entries or ())
        return select_events((t for t in texts if t is not None), limit, error_code)

    def retire(self, worker_id: str) -> None:
        """Take a worker that shut down cleanly out of the live workers at once.

        Its last-seen time is moved out of the live window rather than removed, so the worker
        and its seq are still pruned after a day (a late retry stays idempotent till then).
        """
        retired_ms = int((time.time() - self._config.live_window_s) * 1000) - 1
        with _store_errors():
            self._client.zadd(self.keys["workers"], {worker_id: retired_ms}, xx=True)

    def clear(self) -> None:
        """Delete every key of this namespace (and only those)."""
        client = self._client
        with _store_errors():
            keys = list(self.keys.values())
            buckets = client.scan_iter(match=f"{self.prefix}:bucket:*", count=1000)
            keys += [_text(k) for k in buckets]
            for key in keys:
                client.delete(key)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
