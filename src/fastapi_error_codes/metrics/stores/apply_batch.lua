-- Apply one worker's batch to the state of its shard, atomically and exactly once.
--
-- Every key of a shard shares the shard's hash tag, so this one call touches them all on a
-- single Redis, Sentinel or Cluster node. The worker's last applied seq makes a retry after a
-- lost reply harmless: a batch whose seq is not newer is acknowledged (heartbeat) and otherwise
-- ignored. Redis's clock (TIME) is the fleet's clock: heartbeats, created_ms, first-seen times
-- and the forgetting of old workers never use a worker's clock, which may be off by minutes.
--
-- The script is written for Redis's CPU: every redis.call costs a fixed overhead, so a series
-- costs two calls (HINCRBY of its total, HINCRBY of its bucket; the total's reply tells a new
-- series from a known one), a bucket hash one EXPIREAT per batch, a name one HSET only while
-- its worker has not seen it confirmed, and events one XADD per entry of up to 100 of them,
-- compressed by the worker (a script's arguments cost Redis CPU by the byte).
--
-- KEYS
--   1 totals   hash    "code:status" -> all-time count ("other:other" is the overflow series)
--   2 names    hash    "code" -> error name (only codes with a series of their own)
--   3 events   stream  entries with field "z": up to 100 masked JSON events, oldest first, one
--                      per line, zlib-compressed (older releases wrote field "e": one event,
--                      plain, per entry)
--   4 workers  zset    worker id -> last flush (ms, Redis's clock)
--   5 seq      hash    worker id -> last applied batch seq
--   6 meta     hash    schema, created_ms, dropped, events_dropped, series_folded,
--                      flush_failures, sentry_skipped, auth_refused (requests refused by
--                      authentication), refused (stale retries this script refused),
--                      request_series, route_error_series, route_folded, events_added (events
--                      ever added to the stream), events_trimmed (the last trim's cut)
--   7 buffered hash    worker id -> errors it still held after its last flush
--   8 requests hash    "method<TAB>class<TAB>route" -> all-time count of responses
--   9 route_errors hash "code<TAB>status<TAB>method<TAB>name<TAB>route" -> all-time count
--  10 exemplars hash   error-by-route field -> its newest request's ids (compact JSON)
--  11 since    hash    "<family>|<field>" -> when the series was first counted here (us): the
--                      fleet-wide series caps of sharded reads keep the oldest series
--  12 marks    zset    stream entry id -> events added up to and including it (events_added):
--                      the stream is trimmed to the newest max_events events, not entries
--  13..        hash    the bucket hashes the counts refer to (bucket index 1 = KEYS[13])
--
-- ARGV
--   1 schema version            2 overflow field ("other:other")
--   3 worker id                 4 batch seq
--   5 forget window (ms): workers not seen for this long are forgotten, with their seq
--   6 max_series (cap of distinct error series)
--   7 max_events                8 dropped
--   9 events dropped           10 series folded locally
--  11 flush failures           12 Sentry captures skipped
--  13 requests refused by authentication (the library's own endpoints: 401/403)
--  14 buffered                 15 batch age (ms since its first attempt, worker's monotonic)
--  16 unsure: 1 when an earlier attempt may have been applied without the worker knowing
--  17 max_route_series (cap of request series, and of error-by-route series)
--  18 route series folded locally
--  19 number of counts, n
--   then n x 5: family (0 errors, 1 requests, 2 errors by route), bucket index (0 = totals
--   only), field, the field it folds into past the family's cap, delta (> 0)
--   then the number of bucket keys, b, and b expiries (unix s) of KEYS[13..]
--   then the number of names, m, and m x 2: code, name
--   then the number of exemplars, x, and x x 2: error-by-route field, exemplar
--   then the number of stream entries, s, and s x 2: events in it, the entry (compressed)
--
-- Returns {status, now_ms, names kept, codes...}: status 1 when the batch was applied, 0 when
-- its seq was applied before, -1 when it was refused: it may have been applied already and its
-- seq forgotten since (a retry older than the forget window), so applying it could count it
-- twice. With status 1 the codes are first the <names kept> codes whose names this batch
-- stored (the worker need not send them again), then the codes that got a new series here
-- while no name is stored for them (the worker sends their names again).

-- Where the variable parts of ARGV start.
local n = tonumber(ARGV[19])
local buckets_at = 20 + n * 5
local names_at = buckets_at + 1 + tonumber(ARGV[buckets_at])
local names = tonumber(ARGV[names_at])
local exemplars_at = names_at + 1 + names * 2
local exemplars = tonumber(ARGV[exemplars_at])
local entries_at = exemplars_at + 1 + exemplars * 2
local entries = tonumber(ARGV[entries_at])

-- Refuse a batch before writing anything if a key it writes holds the wrong type: Redis does
-- not roll back a script that fails half-way, and a half-applied batch would be marked
-- applied. The seq hash and the workers zset are checked by the reads below, which come first;
-- names only when this batch stores some, and the since hash not at all: both are advisory,
-- their other reads and writes are pcalls that cannot fail the script.
local function wrong(key, found, expected)
  return redis.error_reply('WRONGTYPE fastapi_error_codes: key ' .. key .. ' holds a '
    .. found .. ', expected a ' .. expected .. '; delete or rename it')
end
local check = {6, 7}
local families = {}
for k = 0, n - 1 do families[ARGV[20 + k * 5]] = true end
if families['0'] then check[#check + 1] = 1 end
if names > 0 then check[#check + 1] = 2 end
if families['1'] then check[#check + 1] = 8 end
if families['2'] then check[#check + 1] = 9 end
if exemplars > 0 then check[#check + 1] = 10 end
if entries > 0 then check[#check + 1] = 3; check[#check + 1] = 12 end
for k = 13, #KEYS do check[#check + 1] = k end
local want = {'hash', 'hash', 'stream', 'zset', 'hash', 'hash', 'hash', 'hash', 'hash', 'hash',
  'hash', 'zset'}
for _, k in ipairs(check) do
  local t = redis.call('TYPE', KEYS[k])['ok']
  local w = want[k] or 'hash'
  if t ~= 'none' and t ~= w then return wrong(KEYS[k], t, w) end
end

local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local now_us = clock[1] .. string.format('%06d', tonumber(clock[2]))
local overflow = ARGV[2]
local worker = ARGV[3]
local seq = tonumber(ARGV[4])
local forget_ms = tonumber(ARGV[5])
local meta = KEYS[6]

-- Workers not seen for the forget window (a bounded number per call) are forgotten, with their
-- seq; not the worker of this batch, whose heartbeat this is.
local gone = redis.pcall('ZRANGEBYSCORE', KEYS[4], '-inf', now_ms - forget_ms, 'LIMIT', 0, 100)
if gone['err'] then return wrong(KEYS[4], redis.call('TYPE', KEYS[4])['ok'], 'zset') end
local last = redis.pcall('HGET', KEYS[5], worker)
if type(last) == 'table' and last['err'] then
  return wrong(KEYS[5], redis.call('TYPE', KEYS[5])['ok'], 'hash')
end
redis.call('ZADD', KEYS[4], now_ms, worker)
redis.call('HSET', KEYS[7], worker, ARGV[14])
for _, w in ipairs(gone) do
  if w ~= worker then
    redis.call('HDEL', KEYS[5], w)
    redis.call('HDEL', KEYS[7], w)
    redis.call('ZREM', KEYS[4], w)
  end
end

if last then
  if seq <= tonumber(last) then
    return {0, now_ms}
  end
elseif ARGV[16] == '1' and tonumber(ARGV[15]) >= forget_ms then
  -- The seq of an applied batch is kept while its worker is seen within the forget window;
  -- a retry older than that window finds no seq whether it was applied or not.
  redis.call('HINCRBY', meta, 'refused', 1)
  return {-1, now_ms}
end
redis.call('HSET', KEYS[5], worker, seq)
-- The shard's birth, once (and again after its meta hash was deleted).
if redis.call('HSETNX', meta, 'created_ms', now_ms) == 1 then
  redis.call('HSETNX', meta, 'schema', ARGV[1])
end

-- Counts. HINCRBY first: a reply equal to the delta means the series is new. A new series past
-- its family's cap is taken back (it held just the delta) and folded: an error series into the
-- overflow series, a route series into route "other" (its status class or status kept). The
-- number of series of a family is read only when a new one comes.
local totals = {KEYS[1], KEYS[8], KEYS[9]}
local caps = {tonumber(ARGV[6]), tonumber(ARGV[17]), tonumber(ARGV[17])}
local series = {}
local function series_before(fam)
  if fam == 1 then
    -- the new field is in HLEN already
    return redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], overflow) - 1
  end
  local field = fam == 2 and 'request_series' or 'route_error_series'
  return tonumber(redis.call('HGET', meta, field) or '0')
end
local route_count_changed = {}
local folded = tonumber(ARGV[10])
local route_folded = tonumber(ARGV[18])
local i = 20
local new_codes = {}
local kept = {}
local kept_route = {}
-- the codes and route series this batch keeps matter only when it carries names, exemplars
local want_kept, want_kept_route = names > 0, exemplars > 0
for _ = 1, n do
  local fam = tonumber(ARGV[i]) + 1
  local b = tonumber(ARGV[i + 1])
  local f = ARGV[i + 2]
  local fold = ARGV[i + 3]
  local d = tonumber(ARGV[i + 4])
  local t = totals[fam]
  if redis.call('HINCRBY', t, f, d) == d and f ~= fold then
    if series[fam] == nil then series[fam] = series_before(fam) end
    if series[fam] >= caps[fam] then
      redis.call('HDEL', t, f)
      f = fold
      redis.call('HINCRBY', t, f, d)
      if fam == 1 then folded = folded + d else route_folded = route_folded + d end
    else
      series[fam] = series[fam] + 1
      if fam > 1 then route_count_changed[fam] = true end
      redis.pcall('HSET', KEYS[11], (fam - 1) .. '|' .. f, now_us)
      if fam == 1 then new_codes[string.match(f, '^[^:]*')] = true end
    end
  end
  if f ~= fold then
    if fam == 1 and want_kept then kept[string.match(f, '^[^:]*')] = true end
    if fam == 3 and want_kept_route then kept_route[f] = true end
  end
  if b > 0 then
    redis.call('HINCRBY', KEYS[12 + b], f, d)
  end
  i = i + 5
end
if route_count_changed[2] then redis.call('HSET', meta, 'request_series', series[2]) end
if route_count_changed[3] then redis.call('HSET', meta, 'route_error_series', series[3]) end

-- One expiry per bucket hash.
for k = 13, #KEYS do
  redis.call('EXPIREAT', KEYS[k], ARGV[buckets_at + k - 12])
end

-- Names only of codes with a series of their own: bounded like the series. The reply tells
-- the worker which names are stored, so it stops sending them.
local reply = {1, now_ms, 0}
i = names_at + 1
for _ = 1, names do
  local code = ARGV[i]
  if kept[code] then
    redis.call('HSET', KEYS[2], code, ARGV[i + 1])
    reply[#reply + 1] = code
    new_codes[code] = nil
  end
  i = i + 2
end
reply[3] = #reply - 3
-- A new series of a code whose name this batch did not carry: is a name stored (a clear, or
-- a reset store, deletes names the worker thinks are stored)?
for code in pairs(new_codes) do
  if redis.pcall('HEXISTS', KEYS[2], code) == 0 then reply[#reply + 1] = code end
end

-- Exemplars only of error-by-route series of their own: bounded like them.
i = exemplars_at + 1
for _ = 1, exemplars do
  if kept_route[ARGV[i]] then
    redis.call('HSET', KEYS[10], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end

-- Events: one stream entry per up to 100 of them. The stream is cut to its newest max_events
-- events (whole entries, so a few more may stay) once the cut has moved by max_events / 16.
i = entries_at + 1
if entries > 0 then
  local known = redis.call('HMGET', meta, 'events_added', 'events_trimmed')
  local cum = tonumber(known[1] or '0')
  local trimmed = tonumber(known[2] or '0')
  for _ = 1, entries do
    local id = redis.call('XADD', KEYS[3], '*', 'z', ARGV[i + 1])
    cum = cum + tonumber(ARGV[i])
    redis.call('ZADD', KEYS[12], cum, id)
    i = i + 2
  end
  local max_events = tonumber(ARGV[7])
  local cut = cum - max_events
  if cut <= 0 or cut - trimmed < math.max(1, math.floor(max_events / 16)) then
    redis.call('HSET', meta, 'events_added', cum)
  else
    -- the oldest entry that holds one of the newest max_events events stays, and all after it
    local keep = redis.call('ZRANGEBYSCORE', KEYS[12], '(' .. cut, '+inf', 'LIMIT', 0, 1)
    -- pcall: nothing after the first write may fail the script (MINID needs Redis 6.2; the
    -- store refuses older servers at first use)
    if keep[1] then redis.pcall('XTRIM', KEYS[3], 'MINID', keep[1]) end
    redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', cut)
    redis.call('HSET', meta, 'events_added', cum, 'events_trimmed', cut)
  end
end

local function add(field, value)
  if tonumber(value) > 0 then redis.call('HINCRBY', meta, field, value) end
end
add('dropped', ARGV[8])
add('events_dropped', ARGV[9])
add('series_folded', folded)
add('flush_failures', ARGV[11])
add('sentry_skipped', ARGV[12])
add('auth_refused', ARGV[13])
add('route_folded', route_folded)
return reply
