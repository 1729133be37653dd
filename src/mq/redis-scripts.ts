/**
 * The Lua scripts of the Redis store. Each Store call is one script, so each call is atomic: Redis
 * runs a script with nothing in between, and the append-only file logs its writes as one unit.
 * Time is Redis's (`TIME`), never a client's clock, so producers and consumers on several hosts
 * agree on when a lease, a delay or a ttl runs out.
 *
 * Every script takes the same 13 keys (redis-keys.ts) and starts with the same arguments: the
 * per-type key prefix, the wake-up channel, maxAttempts (which a claim stamps on what it claims:
 * a message's last delivery is decided by the bound of the consumer that claimed it). A message is
 * named by its member: its sequence number zero-padded to 15 digits, so that members sort like
 * numbers and a sorted set scored by -priority yields "higher priority first, then oldest first" by
 * itself. A script's writes are gathered per key and issued as a few variadic commands (see
 * flush()): Redis's cost is per command far more than per element.
 *
 * Timed transitions (a delay or lease running out, a ttl passing) are applied by the next script
 * that looks ("the sweep"), at most SWEEP_MAX of each kind per call, so no script runs long.
 *
 * Wake-ups: a claim that finds nothing sets `wait:messages`; a script that makes a message
 * claimable deletes the flag and, if it was set, publishes 'm' on the queue's channel. The same
 * with `wait:room` and 'r' for producers waiting on a full queue. Arming and looking are one
 * script, and so are adding and disarming, so a wake-up is never lost between them.
 */

const PRELUDE = `
local META, MSG, BODY, READY, DELAYED, INFLIGHT, DEAD, EXPIRING, PCOUNT, TCOUNT, DEDUPE, WAITM, WAITR =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local TPREFIX, CHANNEL, MAX_ATTEMPTS = ARGV[1], ARGV[2], tonumber(ARGV[3])
local SWEEP_MAX = 1000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- record fields; DUE is the lease's end while in flight; MAXATT is the maxAttempts of the consumer
-- that claimed it last (absent until the first claim, and in records of older versions)
local ID, TYPE, PRIO, ENQ, EXPIRES, ATTEMPTS, LEASE, STATE, SIZE, DUE, MAXATT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
local S_READY, S_INFLIGHT, S_DEAD, S_DELAYED = 0, 1, 2, 3

-- Writes are gathered and issued as a few variadic commands by flush(): one command per key
-- rather than several per message. Records are read through the same cache, so a script sees its
-- own writes; sorted sets are read only right after a flush.
local cache, dirty, bodies, zops, counts = {}, {}, {}, {}, {}

-- Calls cmd on key with args, at most 'step' * 500 arguments per call (Lua's unpack is bounded).
local function chunked(cmd, key, args, step)
  local size = step * 500
  for i = 1, #args, size do
    redis.call(cmd, key, unpack(args, i, math.min(i + size - 1, #args)))
  end
end

local function load_many(members)
  local need = {}
  for _, m in ipairs(members) do
    if cache[m] == nil then need[#need + 1] = m end
  end
  for i = 1, #need, 500 do
    local last = math.min(i + 499, #need)
    local raws = redis.call('HMGET', MSG, unpack(need, i, last))
    for j = i, last do
      local raw = raws[j - i + 1]
      cache[need[j]] = raw and cmsgpack.unpack(raw) or false
    end
  end
end

local function load(m)
  if cache[m] == nil then load_many({ m }) end
  return cache[m] or nil
end

local function save(m, r)
  cache[m] = r
  dirty[m] = true
end

local function forget(m)
  cache[m] = false
  dirty[m] = true
  bodies[m] = false
end

local function zadd(key, score, m)
  local ops = zops[key]
  if not ops then ops = {}; zops[key] = ops end
  ops[m] = score
end

local function zrem(key, m)
  local ops = zops[key]
  if not ops then ops = {}; zops[key] = ops end
  ops[m] = false
end

local function count(hash, field, by)
  local fields = counts[hash]
  if not fields then fields = {}; counts[hash] = fields end
  fields[field] = (fields[field] or 0) + by
end

local function flush()
  for key, ops in pairs(zops) do
    local add, rem = {}, {}
    for m, score in pairs(ops) do
      if score then
        add[#add + 1] = score
        add[#add + 1] = m
      else
        rem[#rem + 1] = m
      end
    end
    if #rem > 0 then chunked('ZREM', key, rem, 1) end
    if #add > 0 then chunked('ZADD', key, add, 2) end
  end
  zops = {}
  local set, del = {}, {}
  for m in pairs(dirty) do
    local r = cache[m]
    if r then
      set[#set + 1] = m
      set[#set + 1] = cmsgpack.pack(r)
    else
      del[#del + 1] = m
    end
  end
  dirty = {}
  if #set > 0 then chunked('HSET', MSG, set, 2) end
  if #del > 0 then chunked('HDEL', MSG, del, 1) end
  set, del = {}, {}
  for m, body in pairs(bodies) do
    if body then
      set[#set + 1] = m
      set[#set + 1] = body
    else
      del[#del + 1] = m
    end
  end
  bodies = {}
  if #set > 0 then chunked('HSET', BODY, set, 2) end
  if #del > 0 then chunked('HDEL', BODY, del, 1) end
  for hash, fields in pairs(counts) do
    for field, by in pairs(fields) do
      if by ~= 0 and redis.call('HINCRBY', hash, field, by) <= 0 then redis.call('HDEL', hash, field) end
    end
  end
  counts = {}
end

-- A ttl cuts off only a message never delivered (a prefetched one given back counts as such): one
-- already delivered comes back when its lease ends or it is nacked, whatever its ttl.
local function expire_if_undelivered(m, r)
  if r[EXPIRES] > 0 and r[ATTEMPTS] == 0 then zadd(EXPIRING, r[EXPIRES], m) end
end

local function to_ready(m, r)
  r[STATE] = S_READY
  r[DUE] = 0
  zadd(READY, -r[PRIO], m)
  zadd(TPREFIX .. r[TYPE], -r[PRIO], m)
  count(PCOUNT, string.format('%d', r[PRIO]), 1)
  count(TCOUNT, r[TYPE], 1)
  expire_if_undelivered(m, r)
  save(m, r)
end

local function out_of_ready(m, r)
  zrem(READY, m)
  zrem(TPREFIX .. r[TYPE], m)
  count(PCOUNT, string.format('%d', r[PRIO]), -1)
  count(TCOUNT, r[TYPE], -1)
end

local function to_delayed(m, r, due)
  r[STATE] = S_DELAYED
  r[DUE] = 0
  zadd(DELAYED, due, m)
  expire_if_undelivered(m, r)
  save(m, r)
end

local function to_dead(m, r)
  r[STATE] = S_DEAD
  r[LEASE] = 0
  r[EXPIRES] = 0
  r[DUE] = 0
  zadd(DEAD, now, m)
  save(m, r)
end

local function free(n, bytes)
  if n > 0 then
    count(META, 'live', -n)
    count(META, 'bytes', -bytes)
  end
end

-- Whether a delivery that ends now was the message's last allowed one.
local function last_attempt(r)
  return r[ATTEMPTS] >= (r[MAXATT] or MAX_ATTEMPTS)
end

local function wake(flag, what)
  if redis.call('DEL', flag) == 1 then redis.call('PUBLISH', CHANNEL, what) end
end

-- Applies the timed transitions due by now; returns how many live messages it removed.
local function sweep()
  local freed, bytes = 0, 0
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, SWEEP_MAX)
  load_many(due)
  for _, m in ipairs(due) do
    zrem(DELAYED, m)
    local r = load(m)
    if r then to_ready(m, r) end
  end
  flush()
  local expired = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', now, 'LIMIT', 0, SWEEP_MAX)
  load_many(expired)
  for _, m in ipairs(expired) do
    zrem(INFLIGHT, m)
    local r = load(m)
    if r then
      r[LEASE] = 0
      if last_attempt(r) then
        to_dead(m, r)
        freed = freed + 1
        bytes = bytes + r[SIZE]
      else
        to_ready(m, r)
      end
    end
  end
  flush()
  local stale = redis.call('ZRANGEBYSCORE', EXPIRING, '-inf', now, 'LIMIT', 0, SWEEP_MAX)
  load_many(stale)
  for _, m in ipairs(stale) do
    zrem(EXPIRING, m)
    local r = load(m)
    if r and (r[STATE] == S_READY or r[STATE] == S_DELAYED) then
      if r[STATE] == S_READY then out_of_ready(m, r) else zrem(DELAYED, m) end
      forget(m)
      freed = freed + 1
      bytes = bytes + r[SIZE]
    end
  end
  free(freed, bytes)
  flush()
  return freed
end

-- Settles the deliveries in ops, a flat list of 4 values each: kind, member, lease, ms. A result
-- is 0 for a lost lease, else 1, or for an extend the lease's new end.
local function apply_settles(ops)
  local results, freed, bytes, requeued = {}, 0, 0, false
  local nops = #ops / 4
  local members = {}
  for k = 0, nops - 1 do members[k + 1] = ops[k * 4 + 2] end
  load_many(members)
  for k = 0, nops - 1 do
    local i = 1 + k * 4
    local kind, m, lease, ms = ops[i], ops[i + 1], ops[i + 2], ops[i + 3]
    local ok, result = false, 1
    local r = load(m)
    if r and r[STATE] == S_INFLIGHT and r[LEASE] == lease then
      local live = r[DUE] > now
      if kind == 'a' and live then
        zrem(INFLIGHT, m)
        forget(m)
        freed = freed + 1
        bytes = bytes + r[SIZE]
        ok = true
      elseif kind == 'n' and live then
        zrem(INFLIGHT, m)
        r[LEASE] = 0
        if last_attempt(r) then
          to_dead(m, r)
          freed = freed + 1
          bytes = bytes + r[SIZE]
        elseif ms > 0 then
          to_delayed(m, r, now + ms)
          requeued = true
        else
          to_ready(m, r)
          requeued = true
        end
        ok = true
      elseif kind == 'e' and live then
        -- Waiting consumers were told when this lease ends (a claim's next due) and wait until
        -- then: one that now ends sooner is announced, as a nack is.
        if now + ms < r[DUE] then requeued = true end
        r[DUE] = now + ms
        zadd(INFLIGHT, r[DUE], m)
        save(m, r)
        ok = true
        result = r[DUE]
      elseif kind == 'r' then
        zrem(INFLIGHT, m)
        r[LEASE] = 0
        r[ATTEMPTS] = r[ATTEMPTS] - 1
        to_ready(m, r)
        requeued = true
        ok = true
      end
    end
    results[k + 1] = ok and result or 0
  end
  free(freed, bytes)
  flush()
  return results, freed, requeued
end

-- Messages for the client: their metadata msgpack-packed, 6 values each (member, id, type,
-- priority, attempts, enqueued), and their bodies as a list of their own (cmsgpack would pack a
-- body as a UTF-8 string, which a binary body is not).
local function listed(members)
  load_many(members)
  local out, out_bodies = {}, {}
  local found = {}
  for _, m in ipairs(members) do
    if cache[m] then found[#found + 1] = m end
  end
  for i = 1, #found, 500 do
    local last = math.min(i + 499, #found)
    local raws = redis.call('HMGET', BODY, unpack(found, i, last))
    for j = i, last do
      local m = found[j]
      local r = cache[m]
      local n = #out
      out[n + 1] = m
      out[n + 2] = r[ID]
      out[n + 3] = r[TYPE]
      out[n + 4] = r[PRIO]
      out[n + 5] = r[ATTEMPTS]
      out[n + 6] = r[ENQ]
      out_bodies[#out_bodies + 1] = raws[j - i + 1] or ''
    end
  end
  return { cmsgpack.pack(out), out_bodies }
end
`;

/** Opens a queue: stamps a new one with the schema version; returns the version found. */
const OPEN = `
redis.call('HSETNX', META, 'v', ARGV[4])
return redis.call('HGET', META, 'v')
`;

/**
 * ARGV[4..7]: dedupe window ms, maxMessages (-1: none), maxBytes (-1: none), armRoom (1/0);
 * ARGV[8]: the messages, msgpack-packed flat, 6 values each: id, dedupe (1/0), type, priority,
 * delayMs, ttlMs; ARGV[9]: the sizes of the runs stored whole or not at all (msgpack);
 * ARGV[10…]: the bodies (apart: cmsgpack does not read msgpack's binary type).
 * Returns { one outcome per message: 0 sent, 1 duplicate, 2 full; when a full queue armed the
 * room wake-up, the ms until room may free up by itself: the earliest undelivered message's ttl
 * or the earliest lease running out (-1: neither can happen, or not asked) }.
 */
const SEND = `
local window, max_messages, max_bytes, arm_room = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
local msgs = cmsgpack.unpack(ARGV[8])
local groups = cmsgpack.unpack(ARGV[9])
local n = #msgs / 6
local swept = 0
local live, bytes = 0, 0
if max_messages >= 0 or max_bytes >= 0 then
  swept = sweep()
  live = tonumber(redis.call('HGET', META, 'live') or 0)
  bytes = tonumber(redis.call('HGET', META, 'bytes') or 0)
end
for k = 0, n - 1 do
  if msgs[2 + k * 6] == 1 then
    redis.call('ZREMRANGEBYSCORE', DEDUPE, '-inf', now)
    break
  end
end
local seq = redis.call('HINCRBY', META, 'seq', n) - n
local outcomes, sent, sent_bytes, full = {}, 0, 0, false
local first = 0
for _, size in ipairs(groups) do
  local last = first + size - 1
  -- A run is judged whole before any of it is written: which messages are new (not duplicates,
  -- also of an earlier one in the run), and whether all of those fit.
  local fresh = {}
  if not full then
    local seen, count, run_bytes = {}, 0, 0
    for k = first, last do
      local i = 1 + k * 6
      local id, duplicate = msgs[i], false
      if msgs[i + 1] == 1 then
        local until_ = redis.call('ZSCORE', DEDUPE, id)
        duplicate = (until_ and tonumber(until_) > now) or seen[id] == true
        if window > 0 then seen[id] = true end
      end
      fresh[k] = not duplicate
      if not duplicate then
        count = count + 1
        run_bytes = run_bytes + #ARGV[10 + k]
      end
    end
    full = (max_messages >= 0 and live + sent + count > max_messages)
      or (max_bytes >= 0 and bytes + sent_bytes + run_bytes > max_bytes)
  end
  for k = first, last do
    local i = 1 + k * 6
    if full then
      outcomes[k + 1] = 2
    elseif not fresh[k] then
      outcomes[k + 1] = 1
    else
      local id, body = msgs[i], ARGV[10 + k]
      local size = #body
      if msgs[i + 1] == 1 then redis.call('ZADD', DEDUPE, now + window, id) end
      seq = seq + 1
      local m = string.format('%015d', seq)
      local delay, ttl = msgs[i + 4], msgs[i + 5]
      local r = { id, msgs[i + 2], msgs[i + 3], now, ttl > 0 and now + ttl or 0, 0, 0, S_READY, size, 0 }
      if delay > 0 then to_delayed(m, r, now + delay) else to_ready(m, r) end
      bodies[m] = body
      sent = sent + 1
      sent_bytes = sent_bytes + size
      outcomes[k + 1] = 0
    end
  end
  first = last + 1
end
if sent > 0 then
  count(META, 'live', sent)
  count(META, 'bytes', sent_bytes)
end
flush()
if sent > 0 then wake(WAITM, 'm') end
if full and arm_room then redis.call('SET', WAITR, '1') end
if swept > 0 then wake(WAITR, 'r') end
-- A ttl running out, or a lease at a message's last attempt (it goes to the dead letters), frees
-- room that nobody announces: the waiting producer sets its own alarm. Any lease end is taken (a
-- requeued message frees nothing, and the producer's next send just finds the queue full again):
-- the records hold the attempts, and reading them here would cost a lookup per message in flight.
local room_in = -1
if full and arm_room then
  local room_at = nil
  for _, key in ipairs({ EXPIRING, INFLIGHT }) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] and (room_at == nil or tonumber(first[2]) < room_at) then room_at = tonumber(first[2]) end
  end
  if room_at then room_in = math.max(room_at - now, 0) end
end
return { outcomes, room_in }
`;

/**
 * ARGV[4..8]: max, leaseMs, arm (1/0), the settles msgpack-packed (see apply_settles), the lease
 * token; then the types to claim (none: any type). Returns { settle results, leaseUntil, next due
 * (-1: none), lease token (0: nothing claimed), metadata, bodies } (see listed()).
 *
 * The lease token is the client's random number, not a counter of the queue's: a queue removed
 * and made again starts its sequence over, and a delivery from before (a handle still open) whose
 * token a counter had handed out again would settle a message of the new queue.
 */
const CLAIM = `
local max, lease_ms, arm = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local settled, freed, requeued = apply_settles(cmsgpack.unpack(ARGV[7]))
freed = freed + sweep()
local types_at = 9
local ntypes = #ARGV - types_at + 1
local members
if ntypes == 0 then
  members = redis.call('ZRANGE', READY, 0, max - 1)
elseif ntypes == 1 then
  members = redis.call('ZRANGE', TPREFIX .. ARGV[types_at], 0, max - 1)
else
  local candidates = {}
  for t = types_at, #ARGV do
    local z = redis.call('ZRANGE', TPREFIX .. ARGV[t], 0, max - 1, 'WITHSCORES')
    for j = 1, #z, 2 do candidates[#candidates + 1] = { tonumber(z[j + 1]), z[j] } end
  end
  table.sort(candidates, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  members = {}
  for j = 1, math.min(max, #candidates) do members[j] = candidates[j][2] end
end
local lease_until = now + lease_ms
local lease = 0
local claimed = {}
if #members > 0 then
  lease = tonumber(ARGV[8])
  load_many(members)
  for _, m in ipairs(members) do
    local r = load(m)
    if r then
      out_of_ready(m, r)
      if r[EXPIRES] > 0 then zrem(EXPIRING, m) end
      r[STATE] = S_INFLIGHT
      r[ATTEMPTS] = r[ATTEMPTS] + 1
      r[MAXATT] = MAX_ATTEMPTS
      r[LEASE] = lease
      r[DUE] = lease_until
      zadd(INFLIGHT, lease_until, m)
      save(m, r)
      claimed[#claimed + 1] = m
    end
  end
  flush()
end
if requeued then wake(WAITM, 'm') end
if freed > 0 then wake(WAITR, 'r') end
local next_due = -1
if #claimed == 0 then
  if arm then redis.call('SET', WAITM, '1') end
  for _, key in ipairs({ INFLIGHT, DELAYED }) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then
      local due = tonumber(first[2])
      if next_due < 0 or due < next_due then next_due = due end
    end
  end
end
local list = listed(claimed)
return { settled, lease_until, next_due, lease, list[1], list[2] }
`;

/** ARGV[4]: the settles, msgpack-packed (see apply_settles). Returns one result per settle (see there). */
const SETTLE = `
local results, freed, requeued = apply_settles(cmsgpack.unpack(ARGV[4]))
if requeued then wake(WAITM, 'm') end
if freed > 0 then wake(WAITR, 'r') end
return results
`;

/** Returns { ready, delayed, inflight, dead, priority counts (flat), type counts (flat) }. */
const STATS = `
if sweep() > 0 then wake(WAITR, 'r') end
return {
  redis.call('ZCARD', READY), redis.call('ZCARD', DELAYED), redis.call('ZCARD', INFLIGHT), redis.call('ZCARD', DEAD),
  redis.call('HGETALL', PCOUNT), redis.call('HGETALL', TCOUNT),
}
`;

/** ARGV[4]: limit. Ready messages in delivery order, as listed() returns them. */
const PEEK = `
if sweep() > 0 then wake(WAITR, 'r') end
return listed(redis.call('ZRANGE', READY, 0, tonumber(ARGV[4]) - 1))
`;

/** ARGV[4]: limit. Dead letters, oldest first, as listed() returns them. */
const DEAD_LETTERS = `
if sweep() > 0 then wake(WAITR, 'r') end
return listed(redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[4]) - 1))
`;

/** Moves every dead letter back to ready, attempts reset; returns how many. */
const REPLAY = `
if sweep() > 0 then wake(WAITR, 'r') end
local n, bytes = 0, 0
local dead = redis.call('ZRANGE', DEAD, 0, -1)
load_many(dead)
for _, m in ipairs(dead) do
  local r = load(m)
  if r then
    r[ATTEMPTS] = 0
    to_ready(m, r)
    n = n + 1
    bytes = bytes + r[SIZE]
  end
end
redis.call('DEL', DEAD)
if n > 0 then
  count(META, 'live', n)
  count(META, 'bytes', bytes)
end
flush()
if n > 0 then wake(WAITM, 'm') end
return n
`;

/**
 * Deletes every message; returns how many. The sequence counter stays (and lease tokens are
 * random), so a receipt from before the purge never matches a message sent after it; the dedupe
 * window stays too.
 */
const PURGE = `
local n = redis.call('HLEN', MSG)
for _, t in ipairs(redis.call('HKEYS', TCOUNT)) do redis.call('DEL', TPREFIX .. t) end
redis.call('DEL', MSG, BODY, READY, DELAYED, INFLIGHT, DEAD, EXPIRING, PCOUNT, TCOUNT)
redis.call('HSET', META, 'live', 0, 'bytes', 0)
if n > 0 then wake(WAITR, 'r') end
return n
`;

/** Deletes the queue and every key of it; returns 1 if it existed. */
const REMOVE = `
local existed = redis.call('EXISTS', META)
for _, t in ipairs(redis.call('HKEYS', TCOUNT)) do redis.call('DEL', TPREFIX .. t) end
redis.call('DEL', unpack(KEYS))
return existed
`;

/** The scripts by the command names they are defined under on a connection. */
export const SCRIPTS = {
  ipckitMqOpen: OPEN,
  ipckitMqSend: SEND,
  ipckitMqClaim: CLAIM,
  ipckitMqSettle: SETTLE,
  ipckitMqStats: STATS,
  ipckitMqPeek: PEEK,
  ipckitMqDead: DEAD_LETTERS,
  ipckitMqReplay: REPLAY,
  ipckitMqPurge: PURGE,
  ipckitMqRemove: REMOVE,
} as const;

/** The number of keys every script takes. */
export const SCRIPT_KEYS = 13;

/** The schema version stamped on a queue's meta hash: bump it, with a migration, when the layout changes. */
export const REDIS_SCHEMA_VERSION = '1';

/** A script's full source: the shared functions, then its body. */
export function scriptSource(body: string): string {
  return PRELUDE + body;
}
