/**
 * The Lua scripts: each step that must see and change several keys at once
 * runs on the server as one atomic unit. Scripts reply with plain arrays
 * whatever protocol the client speaks (RESP2 or RESP3), so their replies
 * parse the same on every client.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A script and its SHA-1, run with EVALSHA and sent whole when the server does not know it (e.g. after a restart). */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(body: string): Script {
  const source = `${HELPERS}\n${body}`;
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Runs `script` with `keys` and `args`. */
export async function run(client: Redis, s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.eval(s.source, keys.length, ...keys, ...args);
  }
}

/** Stream ids are compared as (ms, seq) numbers: both stay below 2^53. */
const HELPERS = `
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$'); return tonumber(ms), tonumber(seq) end
local function fmt(ms, seq) return string.format('%.0f-%.0f', ms, seq) end
local function less(a, b) local am, as = parse(a); local bm, bs = parse(b); return am < bm or (am == bm and as < bs) end
local function now_ms() local t = redis.call('TIME'); return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local function fields(list) local f = {}; for j = 1, #list, 2 do f[list[j]] = list[j + 1] end; return f end
local function group_info(stream, group)
  local info = redis.pcall('XINFO', 'GROUPS', stream)
  if info.err then return nil end
  for _, g in ipairs(info) do local f = fields(g); if f['name'] == group then return f end end
  return nil
end
`;

/**
 * Appends events in order. Ids are assigned here from one sequence for all
 * the prefix's streams, so an id compares across streams in publish order
 * (progress relies on it). KEYS: sequence, then every stream. ARGV, per
 * event: stream index (0-based), field count, field/value pairs.
 */
export const PUBLISH = script(`
local last = redis.call('GET', KEYS[1])
local ms, seq = 0, 0
if last then ms, seq = parse(last) else
  for i = 2, #KEYS do
    local top = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
    if top[1] then local m, s = parse(top[1][1]); if m > ms or (m == ms and s > seq) then ms, seq = m, s end end
  end
end
local now = now_ms()
if now > ms then ms, seq = now, -1 end
local i = 1
while i <= #ARGV do
  local stream = KEYS[tonumber(ARGV[i]) + 2]
  local n = tonumber(ARGV[i + 1])
  seq = seq + 1
  local args = { 'XADD', stream, fmt(ms, seq) }
  for j = 1, n * 2 do args[#args + 1] = ARGV[i + 1 + j] end
  redis.call(unpack(args))
  i = i + 2 + n * 2
end
redis.call('SET', KEYS[1], fmt(ms, seq))
return fmt(ms, seq)
`);

/**
 * Creates group ARGV[1] on every stream from id 0 (a new group sees what the
 * streams still hold) and records its patterns (ARGV[2], JSON; '' keeps what
 * is there). KEYS: every stream, then the groups hash.
 */
export const ENSURE_GROUP = script(`
for i = 1, #KEYS - 1 do
  local r = redis.pcall('XGROUP', 'CREATE', KEYS[i], ARGV[1], '0', 'MKSTREAM')
  if type(r) == 'table' and r.err and not string.find(r.err, 'BUSYGROUP') then return redis.error_reply(r.err) end
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[#KEYS], ARGV[1], ARGV[2]) end
return 1
`);

/**
 * Takes what a member may have on the unordered stream besides new entries:
 * delayed entries now due, then entries idle past the lease (their holder
 * stopped). A delayed entry sits with the parking consumer ARGV[6]; when the
 * lease scan meets one not yet due it parks it again (resetting its idle).
 * KEYS: stream, due set. ARGV: group, member, leaseMs, cursor, count, parking
 * consumer. Reply: {cursor, next due ms or '', now ms, {id, count, fields}...}.
 */
export const CLAIM_UNORDERED = script(`
local g, me, lease, count, park = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5]), ARGV[6]
local now = now_ms()
local out, got = {}, 0
local function take(id)
  local r = redis.call('XCLAIM', KEYS[1], g, me, 0, id)
  if r[1] and r[1][2] then
    local pe = redis.call('XPENDING', KEYS[1], g, id, id, 1)
    out[#out + 1] = { id, pe[1][4], r[1][2] }
    got = got + 1
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, count)) do
  redis.call('ZREM', KEYS[2], id)
  take(id)
end
local cursor = ARGV[4]
if got < count then
  local ac = redis.call('XAUTOCLAIM', KEYS[1], g, me, lease, cursor, 'COUNT', count - got, 'JUSTID')
  cursor = ac[1]
  for _, id in ipairs(ac[2]) do
    local due = redis.call('ZSCORE', KEYS[2], id)
    if due and tonumber(due) > now then redis.call('XCLAIM', KEYS[1], g, park, 0, id, 'JUSTID')
    else
      if due then redis.call('ZREM', KEYS[2], id) end
      take(id)
    end
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { cursor, nxt[2] or '', tostring(now), out }
`);

/**
 * Acknowledges, delays or extends one unordered delivery, only while the
 * member still holds it: the entry is pending with this member and its
 * delivery count is the one it was handed out with (a takeover, even by the
 * same member, raises the count). KEYS: stream, due set. ARGV: mode
 * ('ack' | 'retry' | 'extend'), group, member, id, count, leaseMs, delayMs,
 * parking consumer. Reply: 1 done, 0 not held.
 */
export const SETTLE_UNORDERED = script(`
local mode, g, me, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local p = redis.call('XPENDING', KEYS[1], g, id, id, 1)[1]
if not p or p[2] ~= me or tonumber(p[4]) ~= tonumber(ARGV[5]) then return 0 end
if mode == 'ack' then
  redis.call('XACK', KEYS[1], g, id)
  redis.call('ZREM', KEYS[2], id)
elseif mode == 'extend' then
  if tonumber(p[3]) >= tonumber(ARGV[6]) then return 0 end
  redis.call('XCLAIM', KEYS[1], g, me, 0, id, 'JUSTID')
else
  redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[7]), id)
  redis.call('XCLAIM', KEYS[1], g, ARGV[8], 0, id, 'JUSTID')
end
return 1
`);

/**
 * One page of a key partition's pending entries for its new owner, in id
 * order, while the caller still holds the partition's lease. With ARGV[4] =
 * '-' (the first page) it first claims every pending entry of the group on
 * the partition, keeping their delivery counts (JUSTID). Entries deleted
 * meanwhile are acknowledged. KEYS: lease, stream, keyed due set. ARGV:
 * lease token, group, member, start ('-' or '(id'), count. Reply: {page
 * size, {id, count, not-before or '', fields}...}, or {-1, {}} when the lease
 * is no longer the caller's.
 */
export const TAKE_OVER_PARTITION = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return { -1, {} } end
local g, me, start, count = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if start == '-' then
  local cursor = '0-0'
  repeat
    local r = redis.call('XAUTOCLAIM', KEYS[2], g, me, 0, cursor, 'COUNT', 500, 'JUSTID')
    cursor = r[1]
  until cursor == '0-0'
end
local pe = redis.call('XPENDING', KEYS[2], g, start, '+', count, me)
local out = {}
for _, p in ipairs(pe) do
  local e = redis.call('XRANGE', KEYS[2], p[1], p[1])
  if e[1] and e[1][2] then out[#out + 1] = { p[1], p[4], redis.call('ZSCORE', KEYS[3], p[1]) or '', e[1][2] }
  else
    redis.call('XACK', KEYS[2], g, p[1])
    redis.call('ZREM', KEYS[3], p[1])
  end
end
return { #pe, out }
`);

/**
 * Reads new entries without blocking: of the unordered stream, and of each
 * key partition whose lease is still the caller's (checked in the same
 * atomic step, so a member that lost a partition never reads from it). A
 * partition's entries are read ahead into the owner's window, not handed
 * out: their delivery counter is set to 0 at once. Each stream's answer
 * carries its newest id, from which a blocking XREAD waits for more. KEYS:
 * unordered stream, then (lease, stream) per partition. ARGV: group,
 * member, unordered count (0: none), partition count, a lease token per
 * partition. Reply per stream: {newest id, entries}, or {'lost', {}} for a
 * partition whose lease is gone.
 */
export const READ_NEW = script(`
local g, me, cu, cp = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local function newest(stream) local t = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1); return t[1] and t[1][1] or '0-0' end
local function read(stream, count)
  local r = redis.call('XREADGROUP', 'GROUP', g, me, 'COUNT', count, 'STREAMS', stream, '>')
  if not r then return {} end
  return r[1][2]
end
local out = {}
if cu > 0 then out[1] = { newest(KEYS[1]), read(KEYS[1], cu) } else out[1] = { newest(KEYS[1]), {} } end
for i = 2, #KEYS, 2 do
  if redis.call('GET', KEYS[i]) ~= ARGV[4 + i / 2] then out[#out + 1] = { 'lost', {} }
  else
    local es = read(KEYS[i + 1], cp)
    if #es > 0 then
      local args = { 'XCLAIM', KEYS[i + 1], g, me, 0 }
      for _, e in ipairs(es) do args[#args + 1] = e[1] end
      args[#args + 1] = 'RETRYCOUNT'
      args[#args + 1] = 0
      args[#args + 1] = 'JUSTID'
      redis.call(unpack(args))
    end
    out[#out + 1] = { newest(KEYS[i + 1]), es }
  end
end
return out
`);

/**
 * Records hand-outs of keyed entries while the caller still holds the
 * partition's lease: each entry's delivery counter becomes its hand-out
 * count (so a new owner counts on from it), and a retry delay it waited for
 * is cleared. KEYS: lease, stream, keyed due set. ARGV: lease token, group,
 * member, then (id, count) pairs. Reply: 1 done, 0 lease lost.
 */
export const HAND_OUT = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[i], 'RETRYCOUNT', ARGV[i + 1], 'JUSTID')
  redis.call('ZREM', KEYS[3], ARGV[i])
end
return 1
`);

/** KEYS: lease. ARGV: token, ttl ms. Renews the lease while it is still the caller's. Reply: 1 renewed, 0 lost. */
export const RENEW_LEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1 end
return 0
`);

/** KEYS: lease. ARGV: token. Deletes the lease while it is still the caller's. */
export const RELEASE_LEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * A member's heartbeat in its group's member set, dropping members whose
 * heartbeat ran out (server time, so hosts' clocks do not matter). KEYS:
 * members. ARGV: member, ttl ms, '1' to leave instead. Reply: live members.
 */
export const HEARTBEAT = script(`
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
return redis.call('ZCARD', KEYS[1])
`);

/**
 * Deletes a stream's entries no group still needs: below the oldest pending
 * entry of every group, and (for a group with none pending) up to its
 * last-delivered id. A stream with no group is left alone. KEYS: stream.
 * Reply: entries deleted.
 */
export const TRIM = script(`
local info = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if info.err or #info == 0 then return 0 end
local low = nil
for _, gi in ipairs(info) do
  local f = fields(gi)
  local cand
  if tonumber(f['pending']) > 0 then cand = redis.call('XPENDING', KEYS[1], f['name'])[2]
  else local ms, seq = parse(f['last-delivered-id']); cand = fmt(ms, seq + 1) end
  if low == nil or less(cand, low) then low = cand end
end
return redis.call('XTRIM', KEYS[1], 'MINID', low)
`);

/**
 * Where group ARGV[1] stands on one stream: its oldest pending entry that
 * carries a position, and its first not yet delivered entry of a matching
 * type (not addressed to another group) that carries one. Scans at most ARGV[2] entries each way; when the
 * undelivered scan runs out first it answers the last positioned entry it
 * passed (all before it are of other types, so that is still safe). KEYS:
 * stream. ARGV: group, scan limit, patterns (none: every type). Reply:
 * {pending id, position, undelivered id, position} ('' when none), or {}
 * when the group does not exist on the stream.
 */
export const PROGRESS = script(`
local g, limit = ARGV[1], tonumber(ARGV[2])
local info = group_info(KEYS[1], g)
if not info then return {} end
local function matches(t)
  if #ARGV < 3 then return true end
  for i = 3, #ARGV do
    local p = ARGV[i]
    if p == '*' or p == t then return true end
    if string.sub(p, -2) == '.*' and string.sub(t, 1, #p - 1) == string.sub(p, 1, #p - 1) then return true end
  end
  return false
end
local pending, scanned, start = nil, 0, '-'
while not pending and scanned < limit do
  local pe = redis.call('XPENDING', KEYS[1], g, start, '+', 100)
  if #pe == 0 then break end
  for _, p in ipairs(pe) do
    local e = redis.call('XRANGE', KEYS[1], p[1], p[1])
    if e[1] and e[1][2] then
      local f = fields(e[1][2])
      if f['p'] then pending = { p[1], f['p'] }; break end
    end
  end
  scanned = scanned + #pe
  start = '(' .. pe[#pe][1]
end
local undelivered, passed = nil, nil
scanned, start = 0, '(' .. info['last-delivered-id']
while not undelivered and scanned < limit do
  local es = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 100)
  if #es == 0 then break end
  for _, e in ipairs(es) do
    local f = fields(e[2])
    if f['p'] then
      if matches(f['t']) and (not f['s'] or f['s'] == g) then undelivered = { e[1], f['p'] }; break end
      passed = { e[1], f['p'] }
    end
  end
  scanned = scanned + #es
  start = '(' .. es[#es][1]
end
if not undelivered and scanned >= limit then undelivered = passed end
return { pending and pending[1] or '', pending and pending[2] or '', undelivered and undelivered[1] or '', undelivered and undelivered[2] or '' }
`);
