-- Apply one worker's batch to the fleet state, atomically and exactly once.
--
-- Every key shares the namespace's hash tag, so this one call touches them all on a single
-- Redis, Sentinel or Cluster. The worker's last applied seq makes a retry after a lost reply
-- harmless: a batch whose seq is not newer is acknowledged (heartbeat) and otherwise ignored.
--
-- KEYS
--   1 totals   hash    "code:status" -> all-time count ("other:other" is the overflow series)
--   2 names    hash    "code" -> error name (only codes with a series of their own)
--   3 events   stream  field "e": one masked JSON event, trimmed with MAXLEN ~ max_events
--   4 workers  zset    worker id -> last flush (ms)
--   5 seq      hash    worker id -> last applied batch seq
--   6 meta     hash    schema, created_ms, dropped, events_dropped, series_folded
--   7..        hash    the bucket hashes the counts refer to (bucket index 1 = KEYS[7])
--
-- ARGV
--   1 schema version            2 overflow field ("other:other")
--   3 worker id                 4 batch seq
--   5 now (ms)                  6 max_series (fleet-wide cap of distinct series)
--   7 max_events                8 forget workers last seen before this (ms)
--   9 dropped                  10 events dropped
--  11 series folded locally    12 number of counts, n
--   then n x 4: bucket index (0 = totals only), field, delta, bucket expiry (unix s)
--   then the number of names, m, and m x 2: code, name
--   then the events, oldest first
--
-- Returns 1 when the batch was applied, 0 when its seq was applied before.

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

local overflow = ARGV[2]
local worker = ARGV[3]
local seq = tonumber(ARGV[4])
local now_ms = ARGV[5]
redis.call('ZADD', KEYS[4], now_ms, worker)
local last = tonumber(redis.call('HGET', KEYS[5], worker) or '0')
if seq <= last then
  return 0
end
redis.call('HSET', KEYS[5], worker, seq)
redis.call('HSETNX', KEYS[6], 'created_ms', now_ms)
redis.call('HSETNX', KEYS[6], 'schema', ARGV[1])

-- Counts: a new series past max_series folds into the overflow series, fleet-wide.
local max_series = tonumber(ARGV[6])
local series = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], overflow)
local folded = tonumber(ARGV[11])
local n = tonumber(ARGV[12])
local i = 13
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

-- Names only of codes with a series of their own: bounded like the series.
local names = tonumber(ARGV[i])
i = i + 1
for _ = 1, names do
  if kept[ARGV[i]] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end

local max_events = ARGV[7]
while i <= #ARGV do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', max_events, '*', 'e', ARGV[i])
  i = i + 1
end

if tonumber(ARGV[9]) > 0 then redis.call('HINCRBY', KEYS[6], 'dropped', ARGV[9]) end
if tonumber(ARGV[10]) > 0 then redis.call('HINCRBY', KEYS[6], 'events_dropped', ARGV[10]) end
if folded > 0 then redis.call('HINCRBY', KEYS[6], 'series_folded', folded) end

-- Forget workers not seen for a long time (a bounded number per call), with their seq.
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[8], 'LIMIT', 0, 100)
for _, w in ipairs(gone) do
  redis.call('HDEL', KEYS[5], w)
  redis.call('ZREM', KEYS[4], w)
end
return 1
