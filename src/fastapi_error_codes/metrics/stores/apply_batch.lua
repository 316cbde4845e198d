-- Apply one worker's batch to the fleet state, atomically and exactly once.
--
-- Every key shares the namespace's hash tag, so this one call touches them all on a single
-- Redis, Sentinel or Cluster. The worker's last applied seq makes a retry after a lost reply
-- harmless: a batch whose seq is not newer is acknowledged (heartbeat) and otherwise ignored.
-- Redis's clock (TIME) is the fleet's clock: heartbeats, created_ms and the forgetting of old
-- workers never use a worker's clock, which may be off by minutes or days.
--
-- KEYS
--   1 totals   hash    "code:status" -> all-time count ("other:other" is the overflow series)
--   2 names    hash    "code" -> error name (only codes with a series of their own)
--   3 events   stream  field "e": one masked JSON event, trimmed with MAXLEN ~ max_events
--   4 workers  zset    worker id -> last flush (ms, Redis's clock)
--   5 seq      hash    worker id -> last applied batch seq
--   6 meta     hash    schema, created_ms, dropped, events_dropped, series_folded,
--                      flush_failures, sentry_skipped, auth_refused (requests refused by
--                      authentication), refused (stale retries this script refused)
--   7 buffered hash    worker id -> errors it still held after its last flush
--   8 requests hash    "method<TAB>class<TAB>route" -> all-time count of responses
--   9 route_errors hash "code<TAB>status<TAB>method<TAB>name<TAB>route" -> all-time count
--  10 exemplars hash   error-by-route field -> its newest request's ids (compact JSON)
--  11..        hash    the bucket hashes the counts refer to (bucket index 1 = KEYS[11])
--
-- ARGV
--   1 schema version            2 overflow field ("other:other")
--   3 worker id                 4 batch seq
--   5 forget window (ms): workers not seen for this long are forgotten, with their seq
--   6 max_series (fleet-wide cap of distinct error series)
--   7 max_events                8 dropped
--   9 events dropped           10 series folded locally
--  11 flush failures           12 Sentry captures skipped
--  13 requests refused by authentication (the library's own endpoints: 401/403)
--  14 buffered                 15 batch age (ms since its first attempt, worker's monotonic)
--  16 unsure: 1 when an earlier attempt may have been applied without the worker knowing
--  17 max_route_series (fleet-wide cap of request series, and of error-by-route series)
--  18 route series folded locally
--  19 number of counts, n
--   then n x 6: family (0 errors, 1 requests, 2 errors by route), bucket index (0 = totals
--   only), field, the field it folds into past the family's cap, delta, bucket expiry (unix s)
--   then the number of names, m, and m x 2: code, name
--   then the number of exemplars, x, and x x 2: error-by-route field, exemplar
--   then the events, oldest first
--
-- Returns {status, now_ms}: status 1 when the batch was applied, 0 when its seq was applied
-- before, -1 when it was refused: it may have been applied already and its seq forgotten
-- since (a retry older than the forget window), so applying it could count it twice.

-- Refuse a batch before writing anything if a key holds the wrong type: Redis does not roll
-- back a script that fails half-way, and a half-applied batch would be marked applied.
local want = {'hash', 'hash', 'stream', 'zset', 'hash', 'hash', 'hash', 'hash', 'hash', 'hash'}
for k = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[k])['ok']
  local w = want[k] or 'hash'
  if t ~= 'none' and t ~= w then
    return redis.error_reply('WRONGTYPE fastapi_error_codes: key ' .. KEYS[k] .. ' holds a '
      .. t .. ', expected a ' .. w .. '; delete or rename it')
  end
end

local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local overflow = ARGV[2]
local worker = ARGV[3]
local seq = tonumber(ARGV[4])
local forget_ms = tonumber(ARGV[5])
redis.call('ZADD', KEYS[4], now_ms, worker)
redis.call('HSET', KEYS[7], worker, ARGV[14])

-- Forget workers not seen for the forget window (a bounded number per call), with their seq.
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms - forget_ms, 'LIMIT', 0, 100)
for _, w in ipairs(gone) do
  redis.call('HDEL', KEYS[5], w)
  redis.call('HDEL', KEYS[7], w)
  redis.call('ZREM', KEYS[4], w)
end

local last = redis.call('HGET', KEYS[5], worker)
if last then
  if seq <= tonumber(last) then
    return {0, now_ms}
  end
elseif ARGV[16] == '1' and tonumber(ARGV[15]) >= forget_ms then
  -- The seq of an applied batch is kept while its worker is seen within the forget window;
  -- a retry older than that window finds no seq whether it was applied or not.
  redis.call('HINCRBY', KEYS[6], 'refused', 1)
  return {-1, now_ms}
end
redis.call('HSET', KEYS[5], worker, seq)
redis.call('HSETNX', KEYS[6], 'created_ms', now_ms)
redis.call('HSETNX', KEYS[6], 'schema', ARGV[1])

-- Counts: a new series past its family's cap folds, fleet-wide: an error series into the
-- overflow series, a route series into route "other" (its status class or status kept).
local totals = {KEYS[1], KEYS[8], KEYS[9]}
local caps = {tonumber(ARGV[6]), tonumber(ARGV[17]), tonumber(ARGV[17])}
local series = {
  redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], overflow),
  tonumber(redis.call('HGET', KEYS[6], 'request_series') or '0'),
  tonumber(redis.call('HGET', KEYS[6], 'route_error_series') or '0'),
}
local before2, before3 = series[2], series[3]
local folded = tonumber(ARGV[10])
local route_folded = tonumber(ARGV[18])
local n = tonumber(ARGV[19])
local i = 20
local kept = {}
local kept_route = {}
for _ = 1, n do
  local fam = tonumber(ARGV[i]) + 1
  local b = tonumber(ARGV[i + 1])
  local f = ARGV[i + 2]
  local fold = ARGV[i + 3]
  local d = tonumber(ARGV[i + 4])
  local t = totals[fam]
  if f ~= fold and redis.call('HEXISTS', t, f) == 0 then
    if series[fam] >= caps[fam] then
      f = fold
      if fam == 1 then folded = folded + d else route_folded = route_folded + d end
    else
      series[fam] = series[fam] + 1
    end
  end
  if f ~= fold then
    if fam == 1 then kept[string.match(f, '^[^:]*')] = true end
    if fam == 3 then kept_route[f] = true end
  end
  redis.call('HINCRBY', t, f, d)
  if b > 0 then
    local k = KEYS[10 + b]
    redis.call('HINCRBY', k, f, d)
    redis.call('EXPIREAT', k, ARGV[i + 5])
  end
  i = i + 6
end
if series[2] ~= before2 then redis.call('HSET', KEYS[6], 'request_series', series[2]) end
if series[3] ~= before3 then redis.call('HSET', KEYS[6], 'route_error_series', series[3]) end

-- Names only of codes with a series of their own: bounded like the series.
local names = tonumber(ARGV[i])
i = i + 1
for _ = 1, names do
  if kept[ARGV[i]] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end

-- Exemplars only of error-by-route series of their own: bounded like them.
local exemplars = tonumber(ARGV[i])
i = i + 1
for _ = 1, exemplars do
  if kept_route[ARGV[i]] then
    redis.call('HSET', KEYS[10], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end

local max_events = ARGV[7]
while i <= #ARGV do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', max_events, '*', 'e', ARGV[i])
  i = i + 1
end

local function add(field, value)
  if tonumber(value) > 0 then redis.call('HINCRBY', KEYS[6], field, value) end
end
add('dropped', ARGV[8])
add('events_dropped', ARGV[9])
add('series_folded', folded)
add('flush_failures', ARGV[11])
add('sentry_skipped', ARGV[12])
add('auth_refused', ARGV[13])
add('route_folded', route_folded)
return {1, now_ms}
