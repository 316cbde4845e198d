"""The fleet store: every worker's batches land in Redis hashes and a capped stream.

All keys share the hash tag ``{namespace}``, so one Lua call touches them all on a single
Redis, Sentinel or Cluster alike. A batch is applied by one script that first checks the
worker's last applied ``seq``: a retry after a lost reply never counts twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import MetricsConfig
from ..models import Batch, FleetView
from .base import OVERFLOW_FIELD, decode_field, encode_field, select_events

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

__all__ = ["APPLY_SCRIPT", "RedisStore", "connect"]

_MISSING_EXTRA = (
    "the Redis store needs redis-py: pip install 'fastapi-error-codes[redis]' (or [monitoring])"
)

SCHEMA_VERSION = "1"

# KEYS: 1 totals, 2 names, 3 events, 4 workers, 5 seq, 6 meta, 7.. bucket hashes
# ARGV: 1 worker, 2 seq, 3 now_ms, 4 max_series, 5 max_events, 6 forget_before_ms,
#       7 dropped, 8 events_dropped, 9 folded_locally, 10 n_counts,
#       then n_counts x (bucket index (0 = totals only), field, delta, expire_at_s),
#       then n_names, n_names x (code, name), then the events.
APPLY_SCRIPT = (
    """
-- Refuse a batch before writing anything if a key holds the wrong type: Redis does not roll
-- back a script that fails half-way, and a half-applied batch would be marked applied.
local want = {'hash', 'hash', 'stream', 'zset', 'hash', 'hash'}
for k = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[k])['ok']
  local w = want[k] or 'hash'
  if t ~= 'none' and t ~= w then
    return redis.error_reply('WRONGTYPE fastapi_error_codes: key ' .. KEYS[k] .. ' holds a '
      .. t .. ', expected a ' .. w .. '; delete or rename it')
  end
end
local worker = ARGV[1]
local seq = tonumber(ARGV[2])
local now_ms = ARGV[3]
redis.call('ZADD', KEYS[4], now_ms, worker)
local last = tonumber(redis.call('HGET', KEYS[5], worker) or '0')
if seq <= last then
  return 0
end
redis.call('HSET', KEYS[5], worker, seq)
redis.call('HSETNX', KEYS[6], 'created_ms', now_ms)
redis.call('HSETNX', KEYS[6], 'schema', '"""
    + SCHEMA_VERSION
    + """')
local max_series = tonumber(ARGV[4])
local overflow = '"""
    + OVERFLOW_FIELD
    + """'
local series = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], overflow)
local folded = tonumber(ARGV[9])
local n = tonumber(ARGV[10])
local i = 11
local kept = {}
for _ = 1, n do
  local b = tonumber(ARGV[i])
  local f = ARGV[i + 1]
  local d = tonumber(ARGV[i + 2])
  if f ~= overflow and redis.call('HEXISTS', KEYS[1], f) == 0 then
    if series >= max_series then
      f = overflow
      folded = folded + d
    else
      series = series + 1
    end
  end
  if f ~= overflow then
    kept[string.match(f, '^[^:]*')] = true
  end
  redis.call('HINCRBY', KEYS[1], f, d)
  if b > 0 then
    local k = KEYS[6 + b]
    redis.call('HINCRBY', k, f, d)
    redis.call('EXPIREAT', k, ARGV[i + 3])
  end
  i = i + 4
end
local names = tonumber(ARGV[i])
i = i + 1
for _ = 1, names do
  if kept[ARGV[i]] then  -- names only of codes with a series of their own: bounded too
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
local max_events = ARGV[5]
while i <= #ARGV do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', max_events, '*', 'e', ARGV[i])
  i = i + 1
end
if tonumber(ARGV[7]) > 0 then redis.call('HINCRBY', KEYS[6], 'dropped', ARGV[7]) end
if tonumber(ARGV[8]) > 0 then redis.call('HINCRBY', KEYS[6], 'events_dropped', ARGV[8]) end
if folded > 0 then redis.call('HINCRBY', KEYS[6], 'series_folded', folded) end
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[6], 'LIMIT', 0, 100)
for _, w in ipairs(gone) do
  redis.call('HDEL', KEYS[5], w)
  redis.call('ZREM', KEYS[4], w)
end
return 1
"""
)


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
        return bool(self._script(keys=keys, args=args))

    def read(self, window_s: int = 0) -> FleetView:
        """Read the fleet state in one pipeline; cost grows with series, not with workers."""
        cfg = self._config
        now = time.time()
        width = cfg.bucket_width_s
        starts: list[int] = []
        if window_s:
            last = int(now) - int(now) % width
            starts = list(range(last - (window_s // width) * width, last + 1, width))
        live_from = int((now - cfg.live_window_s) * 1000)
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self.keys["totals"])
        pipe.hgetall(self.keys["names"])
        pipe.hgetall(self.keys["meta"])
        pipe.zcount(self.keys["workers"], live_from, "+inf")
        pipe.zrangebyscore(self.keys["workers"], live_from, "+inf", start=0, num=1, withscores=True)
        for start in starts:
            pipe.hgetall(self.bucket_key(start))
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

    def recent_events(self, limit: int, error_code: int | None = None) -> list[dict[str, Any]]:
        """Return up to *limit* newest events, newest first (filtering reads a bounded window)."""
        count = limit if error_code is None else min(self._config.max_events, max(limit, 1000))
        entries: Any = self._client.xrevrange(self.keys["events"], "+", "-", count=count)
        texts = (fields.get(b"e") or fields.get("e") for _id, fields in entries or ())
        return select_events((t for t in texts if t is not None), limit, error_code)

    def retire(self, worker_id: str) -> None:
        """Take a worker that shut down cleanly out of the live workers at once.

        Its last-seen time is moved out of the live window rather than removed, so the worker
        and its seq are still pruned after a day (a late retry stays idempotent till then).
        """
        retired_ms = int((time.time() - self._config.live_window_s) * 1000) - 1
        self._client.zadd(self.keys["workers"], {worker_id: retired_ms}, xx=True)

    def clear(self) -> None:
        """Delete every key of this namespace (and only those)."""
        client = self._client
        keys = list(self.keys.values())
        keys += [_text(k) for k in client.scan_iter(match=f"{self.prefix}:bucket:*", count=1000)]
        for key in keys:
            client.delete(key)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
