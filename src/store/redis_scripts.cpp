#include "store/redis_scripts.hpp"

#include <fmt/format.h>

#include "errand/store/task_transitions.hpp"

namespace errand::store::redis {

namespace {

// What every script shares. Keys: P..':t:'..id task hash; ':ids' and
// ':q:'..Q..':ids' every task id, lexically (ids sort by creation); per
// queue ':ready' (pending, by priority then run_at then id) and ':due'
// (scheduled and retrying, by run_at); ':leases' (active, by lease expiry) and
// ':finished' (final, by finished_at) across queues; ':n:'..Q counts per
// state; ':queues' the queues that have tasks; ':paused'; ':unique' key → id
// of an unfinished task; ':g:'..G a group ('remaining', 'size', the
// completion task in 'c1'..'c13' — c1 its id — and 'f' once finished) and
// ':g:'..G..':m' its members; ':awaiting' completion id → group, while the
// group waits; ':groups_done' finished groups by finished_at, for the purge;
// ':schedules' name → last tick fired.
constexpr const char* kPrelude = R"lua(
local P = KEYS[1]
local NOW = tonumber(ARGV[1])
local NOW_S = ARGV[1]
local function key(...) return P .. ':' .. table.concat({...}, ':') end
local function tkey(id) return P .. ':t:' .. id end
local function int(x) return string.format('%d', x) end
local FINAL = {succeeded = true, dead = true, cancelled = true}
local ZERO_DEFAULT = {pr = true, a = true, to = true, pg = true}
local ALL_FIELDS = {'y', 'q', 'p', 'pr', 's', 'a', 'ma', 'r', 'to', 'u', 'tp', 'ts', 'ri', 'g', 'pg',
  'pm', 'res', 'err', 'c', 'up', 'st', 'f', 'lo', 'le', 'cr', 'nd'}

local function fail_with(code, message) error({err = 'ERRAND ' .. code .. ' ' .. message}) end

local function load(id)
  local flat = redis.call('HGETALL', tkey(id))
  if #flat == 0 then return nil end
  local r = {id = id}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end

-- A record as the reply carries it: id, then field/value pairs.
local function flat(r)
  local out = {r.id}
  for _, f in ipairs(ALL_FIELDS) do
    local v = r[f]
    if v and v ~= '' then out[#out + 1] = f; out[#out + 1] = v end
  end
  return out
end

local function save(r, fields)
  local set, del = {}, {}
  for _, f in ipairs(fields) do
    local v = r[f]
    if v == nil or v == false or v == '' or (ZERO_DEFAULT[f] and v == '0') then
      del[#del + 1] = f
    else
      set[#set + 1] = f; set[#set + 1] = v
    end
  end
  if #set > 0 then redis.call('HSET', tkey(r.id), unpack(set)) end
  if #del > 0 then redis.call('HDEL', tkey(r.id), unpack(del)) end
end

-- Priority first (clamped to the runtime's [-1000, 1000]), then run_at: an
-- exact integer below 2^53; equal scores fall back to the id.
local function score(pr, at)
  pr = tonumber(pr or '0')
  if pr > 1000 then pr = 1000 elseif pr < -1000 then pr = -1000 end
  at = tonumber(at)
  if at < 0 then at = 0 elseif at > 4398046511103 then at = 4398046511103 end
  return string.format('%.0f', (1000 - pr) * 4398046511104 + at)
end
local function ready_score(r) return score(r.pr, r.r) end

-- ZADD of many score/member pairs, in slices Lua's unpack takes.
local function zadd_many(k, m)
  for i = 1, #m, 1000 do redis.call('ZADD', k, unpack(m, i, math.min(i + 999, #m))) end
end

-- Moves one count of queue q's state s by d (tasks), keeping ':queues' the
-- set of queues with any count.
local function count(q, s, d)
  local nk = key('n', q)
  local v = redis.call('HINCRBY', nk, s, d)
  if d > 0 then
    if v == d then redis.call('SADD', key('queues'), q) end
  elseif v <= 0 then
    redis.call('HDEL', nk, s)
    if redis.call('EXISTS', nk) == 0 then redis.call('SREM', key('queues'), q) end
  end
end

local function index(r)
  local s = r.s
  if s == 'pending' then
    redis.call('ZADD', key('q', r.q, 'ready'), ready_score(r), r.id)
  elseif s == 'scheduled' or s == 'retrying' then
    redis.call('ZADD', key('q', r.q, 'due'), r.r, r.id)
  elseif s == 'active' then
    redis.call('ZADD', key('leases'), r.le, r.id)
  else
    redis.call('ZADD', key('finished'), r.f, r.id)
  end
  if r.u and r.u ~= '' and not FINAL[s] then redis.call('HSET', key('unique'), r.u, r.id) end
  count(r.q, s, 1)
end

local function unindex(r)
  local s = r.s
  if s == 'pending' then
    redis.call('ZREM', key('q', r.q, 'ready'), r.id)
  elseif s == 'scheduled' or s == 'retrying' then
    redis.call('ZREM', key('q', r.q, 'due'), r.id)
  elseif s == 'active' then
    redis.call('ZREM', key('leases'), r.id)
  else
    redis.call('ZREM', key('finished'), r.id)
  end
  if r.u and r.u ~= '' and not FINAL[s] then redis.call('HDEL', key('unique'), r.u) end
  count(r.q, s, -1)
end

local function waiting(q)
  local n = redis.call('HMGET', key('n', q), 'scheduled', 'pending', 'retrying')
  return tonumber(n[1] or '0') + tonumber(n[2] or '0') + tonumber(n[3] or '0')
end

-- A NewTask from ARGV, starting at ARGV[i]: TASK_ARGS values (kTaskArgs in
-- redis_scripts.hpp; push_task in redis_store.cpp writes them).
local TASK_ARGS = 14
local function new_task(i)
  return {id = ARGV[i], y = ARGV[i + 1], q = ARGV[i + 2], p = ARGV[i + 3], pr = ARGV[i + 4],
    r = ARGV[i + 5], ma = ARGV[i + 6], to = ARGV[i + 7], u = ARGV[i + 8], tp = ARGV[i + 9],
    ri = ARGV[i + 10], g = ARGV[i + 11], ts = ARGV[i + 12], max_waiting = tonumber(ARGV[i + 13])}
end

-- What inserts defer to one write per key (flush() writes it): index
-- entries and counts; and each queue's stored waiting count, read once.
local function new_acc() return {qids = {}, ready = {}, due = {}, counts = {}, base = {}} end

-- Tasks waiting in q: the stored counts plus what `acc` holds unflushed.
local function waiting_now(q, acc)
  local w = acc.base[q]
  if w == nil then w = waiting(q); acc.base[q] = w end
  local c = acc.counts[q]
  if c then w = w + (c.pending or 0) + (c.scheduled or 0) end
  return w
end

-- Refuses the batch before anything is written: duplicate ids, and queues
-- whose max_waiting the stored (not deduplicated) tasks would cross.
local function check_new(batch, acc)
  acc = acc or new_acc()
  local ids, keys, added = {}, {}, {}
  for _, t in ipairs(batch) do
    if ids[t.id] or redis.call('EXISTS', tkey(t.id)) == 1 then
      fail_with('invalid', 'duplicate task id ' .. t.id)
    end
    ids[t.id] = true
  end
  for i, t in ipairs(batch) do
    local dedup = false
    if t.u ~= '' then
      dedup = keys[t.u] or redis.call('HEXISTS', key('unique'), t.u) == 1
      keys[t.u] = true
    end
    if not dedup then
      local before = added[t.q] or 0
      added[t.q] = before + 1
      if t.max_waiting > 0 then
        local w = waiting_now(t.q, acc) + before
        if w >= t.max_waiting then fail_with('queue_full', int(i) .. ' ' .. int(w)) end
      end
    end
  end
end

local function push(m, k, a, b)
  local l = m[k]
  if l == nil then l = {}; m[k] = l end
  l[#l + 1] = a; l[#l + 1] = b
end
local function flush(acc)
  for q, m in pairs(acc.qids) do zadd_many(key('q', q, 'ids'), m) end
  for q, m in pairs(acc.ready) do zadd_many(key('q', q, 'ready'), m) end
  for q, m in pairs(acc.due) do zadd_many(key('q', q, 'due'), m) end
  for q, c in pairs(acc.counts) do
    for st, n in pairs(c) do count(q, st, n) end
  end
end

-- Appends field `name` to an HSET list unless v is empty or `zero`.
local function opt(f, name, v, zero)
  if v ~= '' and v ~= zero then f[#f + 1] = name; f[#f + 1] = v end
end

-- Returns id, state, created (1/0). The task's index entries and counts go
-- to `acc` (flush() writes them); its hash and unique key are written at once
-- so that a later task of the batch sees them.
local function insert(t, acc)
  if t.u ~= '' then
    local existing = redis.call('HGET', key('unique'), t.u)
    if existing then return existing, redis.call('HGET', tkey(existing), 's'), 0 end
  end
  local st, at = 'pending', NOW_S
  if tonumber(t.r) > NOW then st = 'scheduled'; at = t.r end
  local f = {'y', t.y, 'q', t.q, 's', st, 'r', at, 'ma', t.ma, 'c', NOW_S, 'up', NOW_S}
  opt(f, 'p', t.p); opt(f, 'pr', t.pr, '0'); opt(f, 'to', t.to, '0'); opt(f, 'u', t.u)
  opt(f, 'tp', t.tp); opt(f, 'ts', t.ts); opt(f, 'ri', t.ri); opt(f, 'g', t.g)
  redis.call('HSET', tkey(t.id), unpack(f))
  if t.u ~= '' then redis.call('HSET', key('unique'), t.u, t.id) end
  push(acc.qids, t.q, 0, t.id)
  if st == 'pending' then push(acc.ready, t.q, score(t.pr, at), t.id) else push(acc.due, t.q, at, t.id) end
  local c = acc.counts[t.q]
  if c == nil then c = {}; acc.counts[t.q] = c end
  c[st] = (c[st] or 0) + 1
  return t.id, st, 1
end

-- Inserts one task now.
local function insert_one(t)
  local acc = new_acc()
  local id, st, created = insert(t, acc)
  flush(acc)
  return id, st, created
end

local function delete(r)
  unindex(r)
  redis.call('DEL', tkey(r.id))
  redis.call('ZREM', key('q', r.q, 'ids'), r.id)
end

local function json_string(s) return cjson.encode(s) end
local function json_or_string(s)
  if pcall(cjson.decode, s) then return s end
  return cjson.encode(s)
end

-- The last member of a group became final: enqueue its completion task.
local function member_final(gid)
  local gk = key('g', gid)
  local remaining = tonumber(redis.call('HGET', gk, 'remaining') or '0')
  if remaining <= 0 then return end
  if remaining > 1 then
    redis.call('HSET', gk, 'remaining', int(remaining - 1))
    return
  end
  local c = redis.call('HMGET', gk, 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10',
    'c11', 'c12', 'c13')
  if c[1] then
    local ids = redis.call('LRANGE', gk .. ':m', 0, -1)
    table.sort(ids)
    local parts = {}
    for _, id in ipairs(ids) do
      local m = load(id)  -- a deleted or purged member is left out
      if m then
        parts[#parts + 1] = '{"id":' .. json_string(id) .. ',"type":' .. json_string(m.y) ..
          ',"state":' .. json_string(m.s) .. ',"result":' ..
          (m.res and json_or_string(m.res) or 'null') .. ',"error":' ..
          (m.err and json_string(m.err) or 'null') .. ',"traceparent":' ..
          json_string(m.tp or '') .. '}'
      end
    end
    local payload = '{"group":' .. json_string(gid) .. ',"payload":' .. json_or_string(c[4]) ..
      ',"members":[' .. table.concat(parts, ',') .. ']}'
    insert_one({id = c[1], y = c[2], q = c[3], p = payload, pr = c[5], r = c[6], ma = c[7],
      to = c[8], u = c[9], tp = c[10], ri = c[11], g = '', ts = c[13] or '', max_waiting = 0})
    redis.call('HDEL', key('awaiting'), c[1])
  end
  -- Finished: kept (with its members' ids) for GET /v1/groups until the purge.
  redis.call('HSET', gk, 'remaining', '0', 'f', NOW_S)
  redis.call('ZADD', key('groups_done'), NOW_S, gid)
end

-- Moves r to state `to` with `changes` (field → value; false deletes it),
-- keeping every index right. `to` must be a row of the transition table.
local function transition(r, to, changes)
  local before = r.s
  if to ~= before and not ALLOWED[before .. '>' .. to] then
    error('errand: ' .. before .. ' -> ' .. to .. ' is not a task transition')
  end
  unindex(r)
  local fields = {'s', 'up'}
  for f, v in pairs(changes) do r[f] = v; fields[#fields + 1] = f end
  r.s = to
  r.up = NOW_S
  if FINAL[to] then
    r.f = NOW_S; r.lo = false; r.le = false
    fields[#fields + 1] = 'f'; fields[#fields + 1] = 'lo'; fields[#fields + 1] = 'le'
  end
  index(r)
  save(r, fields)
  if not FINAL[before] and FINAL[to] and r.g and r.g ~= '' then member_final(r.g) end
end

-- Appends the attempt of r ending now to its history ('hist': a JSON array,
-- the latest MAX_PAST), before r's fields change. Not among ALL_FIELDS:
-- only a task's own read (HGETALL) carries it.
local MAX_PAST, MAX_PAST_ERROR = 20, 1024
local function log_attempt(r, outcome, err)
  local h = {}
  if r.hist and r.hist ~= '' then
    local ok, v = pcall(cjson.decode, r.hist)
    if ok and type(v) == 'table' then h = v end
  end
  while #h >= MAX_PAST do table.remove(h, 1) end
  h[#h + 1] = {n = tonumber(r.a or '0'), node = r.nd or '', s = tonumber(r.st or '0'),
    e = tonumber(NOW_S), o = outcome, err = string.sub(err, 1, MAX_PAST_ERROR)}
  redis.call('HSET', tkey(r.id), 'hist', cjson.encode(h))
end

-- The task if it is active under `owner`, else nil.
local function owned(id, owner)
  local r = load(id)
  if r == nil or r.s ~= 'active' or r.lo ~= owner then return nil end
  return r
end
)lua";

// ARGV: now, batch count, then per batch its task count and kTaskArgs per
// task. Batches are independent (each its own request): a batch refused
// (duplicate id, queue full) does not refuse the others. Reply: per batch
// id, state, created per task, or the error that refused it.
constexpr const char* kEnqueue = R"lua(
local out, at, acc = {}, 3, new_acc()
for b = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[at])
  at = at + 1
  local batch = {}
  for i = 1, n do batch[i] = new_task(at); at = at + TASK_ARGS end
  local ok, e = pcall(check_new, batch, acc)
  if not ok then
    out[b] = type(e) == 'table' and e or {err = tostring(e)}
  else
    local r = {}
    for _, t in ipairs(batch) do
      local id, st, created = insert(t, acc)
      r[#r + 1] = id; r[#r + 1] = st; r[#r + 1] = created
    end
    out[b] = r
  end
end
flush(acc)
return out
)lua";

constexpr const char* kEnqueueGroup = R"lua(
local gid = ARGV[2]
local gk = key('g', gid)
if redis.call('EXISTS', gk) == 1 then fail_with('invalid', 'duplicate group id ' .. gid) end
local n = tonumber(ARGV[17])
local batch = {}
-- ARGV[4..16]: the completion task (TASK_ARGS - 1 values: no max_waiting).
for i = 1, n do batch[i] = new_task(18 + (i - 1) * TASK_ARGS) end
local acc = new_acc()
check_new(batch, acc)
local out = {}
for _, t in ipairs(batch) do
  local id, s, created = insert(t, acc)
  out[#out + 1] = id; out[#out + 1] = s; out[#out + 1] = created
  redis.call('RPUSH', gk .. ':m', id)
end
flush(acc)
local group = {'remaining', int(n == 0 and 1 or n), 'size', int(n)}
if ARGV[3] == '1' then
  for i = 1, TASK_ARGS - 1 do group[#group + 1] = 'c' .. int(i); group[#group + 1] = ARGV[3 + i] end
  redis.call('HSET', key('awaiting'), ARGV[4], gid)
end
redis.call('HSET', gk, unpack(group))
if n == 0 then member_final(gid) end
return out
)lua";

// ARGV: now, queue, max, owner, lease expiry, node. Reply: the claimed records.
constexpr const char* kClaim = R"lua(
local q = ARGV[2]
local due = redis.call('ZRANGEBYSCORE', key('q', q, 'due'), '-inf', NOW_S, 'LIMIT', 0, SWEEP)
for _, id in ipairs(due) do transition(load(id), 'pending', {}) end
if redis.call('SISMEMBER', key('paused'), q) == 1 then return {} end
local max = tonumber(ARGV[3])
if max <= 0 then return {} end
-- pending -> active for the first `max` ready tasks, in bulk: the ready set
-- loses its head, the leases gain them, the counts move once.
local rk = key('q', q, 'ready')
local ids = redis.call('ZRANGE', rk, 0, max - 1)
if #ids == 0 then return {} end
redis.call('ZREMRANGEBYRANK', rk, 0, #ids - 1)
local out, leased = {}, {}
for i, id in ipairs(ids) do
  local tk = tkey(id)
  redis.call('HINCRBY', tk, 'a', 1)
  redis.call('HSET', tk, 's', 'active', 'st', NOW_S, 'lo', ARGV[4], 'le', ARGV[5], 'nd', ARGV[6],
    'up', NOW_S)
  local rec = redis.call('HGETALL', tk)
  table.insert(rec, 1, id)
  out[i] = rec
  leased[#leased + 1] = ARGV[5]; leased[#leased + 1] = id
  if #leased >= 1000 then redis.call('ZADD', key('leases'), unpack(leased)); leased = {} end
end
if #leased > 0 then redis.call('ZADD', key('leases'), unpack(leased)) end
count(q, 'active', #ids)
count(q, 'pending', -#ids)
return out
)lua";

// ARGV: now, owner, lease expiry, ids... Reply: {cancel requested ids, lost ids}.
constexpr const char* kExtendLeases = R"lua(
local cancel, lost = {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local r = owned(id, ARGV[2])
  if r == nil then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', key('leases'), ARGV[3], id)
    redis.call('HSET', tkey(id), 'le', ARGV[3], 'up', NOW_S)
    if r.cr == '1' then cancel[#cancel + 1] = id end
  end
end
return {cancel, lost}
)lua";

// ARGV: now, count, then id, owner, result per task. Reply: per task 1, or 0
// when it is not active under owner. The hot path of every task, so it
// reads five fields instead of the record and writes only what changes:
// active -> succeeded, as transition() would (the table allows it always).
constexpr const char* kComplete = R"lua(
local out, done, moved = {}, {}, {}
for i = 1, tonumber(ARGV[2]) do
  local at = i * 3
  local id, owner, res = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local tk = tkey(id)
  local m = redis.call('HMGET', tk, 's', 'lo', 'q', 'u', 'g')
  if m[1] ~= 'active' or m[2] ~= owner then
    out[i] = 0
  else
    if res == '' then
      redis.call('HSET', tk, 's', 'succeeded', 'up', NOW_S, 'f', NOW_S, 'pg', '100')
      redis.call('HDEL', tk, 'lo', 'le', 'res')
    else
      redis.call('HSET', tk, 's', 'succeeded', 'up', NOW_S, 'f', NOW_S, 'pg', '100', 'res', res)
      redis.call('HDEL', tk, 'lo', 'le')
    end
    if m[4] then redis.call('HDEL', key('unique'), m[4]) end
    done[#done + 1] = id
    moved[m[3]] = (moved[m[3]] or 0) + 1
    if m[5] then member_final(m[5]) end
    out[i] = 1
  end
end
if #done > 0 then
  redis.call('ZREM', key('leases'), unpack(done))
  local scored = {}
  for _, id in ipairs(done) do scored[#scored + 1] = NOW_S; scored[#scored + 1] = id end
  redis.call('ZADD', key('finished'), unpack(scored))
  for q, n in pairs(moved) do
    count(q, 'succeeded', n)
    count(q, 'active', -n)
  end
end
return out
)lua";

// ARGV: now, id, owner, error, retry_at ('' for none).
constexpr const char* kFail = R"lua(
local r = owned(ARGV[2], ARGV[3])
if r == nil then return 0 end
local changes = {err = ARGV[4], lo = false, le = false}
local to
if ARGV[5] ~= '' and r.cr ~= '1' then
  to = 'retrying'; changes.r = ARGV[5]
elseif r.cr == '1' then
  to = 'cancelled'
else
  to = 'dead'
end
log_attempt(r, to, ARGV[4])
transition(r, to, changes)
return 1
)lua";

// ARGV: now, id, owner, run_at.
constexpr const char* kRelease = R"lua(
local r = owned(ARGV[2], ARGV[3])
if r == nil then return 0 end
local changes = {a = int(tonumber(r.a or '0') - 1), lo = false, le = false}
local to
if r.cr == '1' then
  to = 'cancelled'
else
  local at = tonumber(ARGV[4])
  if at > NOW then to = 'scheduled'; changes.r = ARGV[4] else to = 'pending'; changes.r = NOW_S end
end
transition(r, to, changes)
return 1
)lua";

// ARGV: now, id, owner.
constexpr const char* kFinishCancelled = R"lua(
local r = owned(ARGV[2], ARGV[3])
if r == nil then return 0 end
log_attempt(r, 'cancelled', '')
transition(r, 'cancelled', {})
return 1
)lua";

// ARGV: now, id, owner, percent (0..100), message.
constexpr const char* kSetProgress = R"lua(
local r = owned(ARGV[2], ARGV[3])
if r == nil then return 0 end
r.pg = ARGV[4]; r.pm = ARGV[5]; r.up = NOW_S
save(r, {'pg', 'pm', 'up'})
return 1
)lua";

// ARGV: now, id. Reply: cancelled | requested | final | not_found.
constexpr const char* kCancel = R"lua(
local r = load(ARGV[2])
if r == nil then return 'not_found' end
if FINAL[r.s] then return 'final' end
if r.s == 'active' then
  redis.call('HSET', tkey(r.id), 'cr', '1', 'up', NOW_S)
  return 'requested'
end
transition(r, 'cancelled', {})
return 'cancelled'
)lua";

// ARGV: now, id.
constexpr const char* kRetry = R"lua(
local r = load(ARGV[2])
if r == nil or (r.s ~= 'dead' and r.s ~= 'cancelled') then return 0 end
if r.u and r.u ~= '' and redis.call('HEXISTS', key('unique'), r.u) == 1 then return 0 end
if r.g and r.g ~= '' and redis.call('EXISTS', key('g', r.g)) == 1 and
    not redis.call('HGET', key('g', r.g), 'f') then
  redis.call('HINCRBY', key('g', r.g), 'remaining', 1)  -- the group waits for it again
end
transition(r, 'pending', {a = '0', r = NOW_S, cr = false, f = false})
return 1
)lua";

// ARGV: now, id.
constexpr const char* kRemove = R"lua(
local r = load(ARGV[2])
if r == nil or not FINAL[r.s] then return 0 end
delete(r)
return 1
)lua";

// ARGV: now, queue (''), state (''), type (''), cursor (''), wanted, scan budget.
// Reply: {last id scanned ('' when the index is exhausted), records...}.
// Each queue has an id index; without a queue, the next ids of every
// queue's index are merged (a per-deployment index would cost every task
// another sorted-set entry, ~115 B, for a view the queues already give).
constexpr const char* kList = R"lua(
local q, s, y = ARGV[2], ARGV[3], ARGV[4]
local from = ARGV[5] ~= '' and ('(' .. ARGV[5]) or '+'
local wanted, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local queues = {q}
if q == '' then queues = redis.call('SMEMBERS', key('queues')) end
local out = {''}
local found, scanned = 0, 0
while true do
  local ids = {}
  for _, name in ipairs(queues) do
    for _, id in ipairs(redis.call('ZREVRANGEBYLEX', key('q', name, 'ids'), from, '-', 'LIMIT', 0,
        200)) do
      ids[#ids + 1] = id
    end
  end
  if #ids == 0 then out[1] = ''; return out end
  -- The newest 200 of the merged ids are the index's next 200.
  table.sort(ids, function(a, b) return a > b end)
  for i = 1, math.min(#ids, 200) do
    local id = ids[i]
    scanned = scanned + 1
    local m = redis.call('HMGET', tkey(id), 's', 'y')
    if m[1] and (s == '' or m[1] == s) and (y == '' or m[2] == y) then
      out[#out + 1] = flat(load(id))
      found = found + 1
    end
    out[1] = id
    if found >= wanted or scanned >= budget then return out end
  end
  from = '(' .. ids[math.min(#ids, 200)]
end
)lua";

// ARGV: now. Reply: per queue {name, paused (0/1), state, count, ...}.
constexpr const char* kQueues = R"lua(
local names = {}
for _, q in ipairs(redis.call('SMEMBERS', key('queues'))) do names[q] = true end
for _, q in ipairs(redis.call('SMEMBERS', key('paused'))) do names[q] = true end
local out = {}
for q in pairs(names) do
  local row = {q, redis.call('SISMEMBER', key('paused'), q)}
  for _, v in ipairs(redis.call('HGETALL', key('n', q))) do row[#row + 1] = v end
  out[#out + 1] = row
end
return out
)lua";

// ARGV: now. Reply: how many leases were reclaimed (at most SWEEP).
constexpr const char* kReclaimExpired = R"lua(
local ids = redis.call('ZRANGEBYSCORE', key('leases'), '-inf', '(' .. NOW_S, 'LIMIT', 0, SWEEP)
for _, id in ipairs(ids) do
  local r = load(id)
  local to
  if r.cr == '1' then
    to = 'cancelled'
  elseif tonumber(r.a or '0') >= tonumber(r.ma) then
    to = 'dead'
  else
    to = 'pending'
  end
  local err = 'lease expired: the worker holding the task stopped heartbeating'
  log_attempt(r, 'lost', err)
  transition(r, to, {err = err, lo = false, le = false})
end
return #ids
)lua";

// ARGV: now, cutoff, max. Reply: how many were deleted.
constexpr const char* kPurgeFinal = R"lua(
local ids = redis.call('ZRANGEBYSCORE', key('finished'), '-inf', '(' .. ARGV[2], 'LIMIT', 0,
  tonumber(ARGV[3]))
for _, id in ipairs(ids) do delete(load(id)) end
local groups = redis.call('ZRANGEBYSCORE', key('groups_done'), '-inf', '(' .. ARGV[2], 'LIMIT',
  0, tonumber(ARGV[3]))
for _, gid in ipairs(groups) do
  redis.call('DEL', key('g', gid), key('g', gid) .. ':m')
  redis.call('ZREM', key('groups_done'), gid)
end
return #ids
)lua";

// ARGV: now, group id. Reply: nil, or {size, remaining, completion id,
// finished_at, state, count, state, count, ...} (the stored members by state).
constexpr const char* kGroup = R"lua(
local gk = key('g', ARGV[2])
local g = redis.call('HMGET', gk, 'size', 'remaining', 'c1', 'f')
if not g[2] then return nil end
local counts = {}
for _, id in ipairs(redis.call('LRANGE', gk .. ':m', 0, -1)) do
  local s = redis.call('HGET', tkey(id), 's')
  if s then counts[s] = (counts[s] or 0) + 1 end
end
local out = {g[1] or '0', g[2], g[3] or '', g[4] or ''}
for s, n in pairs(counts) do out[#out + 1] = s; out[#out + 1] = tostring(n) end
return out
)lua";

// ARGV: now, schedule, tick, then one task. Reply: 1 fired, 0 already fired.
constexpr const char* kFireSchedule = R"lua(
local last = redis.call('HGET', key('schedules'), ARGV[2])
if last and tonumber(last) >= tonumber(ARGV[3]) then return 0 end
local t = new_task(4)
t.max_waiting = 0  -- a tick is never refused: it would be lost
check_new({t})
insert_one(t)
redis.call('HSET', key('schedules'), ARGV[2], ARGV[3])
return 1
)lua";

// ARGV: now, silence cutoff. Reply: the live nodes' JSON, by id. The registry
// is ':nodes' (id → JSON) and ':nodes:seen' (id by last_seen).
constexpr const char* kNodes = R"lua(
local stale = redis.call('ZRANGEBYSCORE', key('nodes', 'seen'), '-inf', '(' .. ARGV[2])
for _, id in ipairs(stale) do
  redis.call('HDEL', key('nodes'), id)
  redis.call('ZREM', key('nodes', 'seen'), id)
end
local ids = redis.call('ZRANGE', key('nodes', 'seen'), 0, -1)
table.sort(ids)
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = redis.call('HGET', key('nodes'), id) end
return out
)lua";

std::string transition_table() {
  std::string out = "local ALLOWED = {";
  for (const auto& t : kTransitions) {
    if (!t.from) continue;  // enqueue: insert() makes those
    out += fmt::format("['{}>{}'] = true, ", to_string(*t.from), to_string(t.to));
  }
  out += "}\n";
  return out;
}

std::string script(const char* body) {
  static const std::string prelude =
      fmt::format("local SWEEP = {}\n{}{}", kSweepBatch, transition_table(), kPrelude);
  return prelude + body;
}

}  // namespace

const Scripts& scripts() {
  static const Scripts all{
      .enqueue = script(kEnqueue),
      .enqueue_group = script(kEnqueueGroup),
      .claim = script(kClaim),
      .extend_leases = script(kExtendLeases),
      .complete = script(kComplete),
      .fail = script(kFail),
      .release = script(kRelease),
      .finish_cancelled = script(kFinishCancelled),
      .set_progress = script(kSetProgress),
      .cancel = script(kCancel),
      .retry = script(kRetry),
      .remove = script(kRemove),
      .list = script(kList),
      .queues = script(kQueues),
      .reclaim_expired = script(kReclaimExpired),
      .purge_final = script(kPurgeFinal),
      .group = script(kGroup),
      .fire_schedule = script(kFireSchedule),
      .nodes = script(kNodes),
  };
  return all;
}

}  // namespace errand::store::redis
