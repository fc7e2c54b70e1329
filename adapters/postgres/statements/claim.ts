/**
 * Claiming: one statement hands an owner what is due for its subscribers,
 * from two places.
 *
 * 1. Off-path deliveries (rows: retries now due, a `deliverAt` reached, keys
 *    unblocked, replays, redrives, spilled ranges), claimed row by row with
 *    `FOR UPDATE SKIP LOCKED`, as a queue would.
 * 2. The log: for each subscriber, the events after its head that are below
 *    the visible horizon, up to its limit. The head moves past them and they
 *    become one range, leased to the owner; no row per event is written.
 *    An event that cannot run now goes to the deliveries instead: a future
 *    `deliverAt`, or an ordering key that already waits or runs (in a row, in
 *    a range, or earlier in this same batch).
 *
 * Heads move optimistically: the update only applies if the head is still
 * where this statement read it. A claimer that lost the race for a
 * subscriber gets nothing for it (kind `'x'`) and claims again; so two owners
 * never get the same range, and nothing waits on a lock held across a round
 * trip.
 *
 * The statement also tidies the claimed subscribers' ranges: one whose lease
 * ran out goes back to the deliveries (its unsettled events, with the
 * attempts spent), one fully settled is deleted.
 */
import { sql, type SQL } from 'drizzle-orm';
import { EVENT_COLUMNS, patternMatchText } from '../event-row';
import type { TableNames } from '../names';
import { CFG_USED, id, intArray, ms, settings, textArray, VISIBLE_HORIZON } from './common';

/** The columns after `subscriber` of a result row that carries no delivery. */
const NO_DELIVERY = `NULL, NULL, NULL, NULL::xid8, NULL::bigint, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL::jsonb, NULL::jsonb, NULL::int, NULL::float8`;

const NO_DELIVERY_AFTER_ATTEMPTS = `NULL, NULL::xid8, NULL::bigint, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL::jsonb, NULL::jsonb, NULL::int, NULL::float8`;

/** Ranges whose lease ran out that one claim spills at most (it reports more due, so the next claim goes on). */
const EXPIRED_PER_CLAIM = 64;

/** One subscriber's share of a claim. */
export interface ClaimShare {
  name: string;
  lim: number;
}

/**
 * A range (alias `alias`) that a claim tidies: its lease ran out, so its
 * unsettled events are due again (a settled range is already gone: the
 * statement that settles its last event deletes it). Bounded on the ranges'
 * (subscriber, lease_expires_at) index.
 */
export function leaseRanOut(alias: string): string {
  return `${alias}.lease_expires_at < now()`;
}

/** A row delivery whose ordering key waits behind another delivery of the same key (alias `d`). */
export function keyBlocked(t: TableNames): string {
  return `(d.ordering_key IS NOT NULL AND (EXISTS (SELECT 1 FROM ${t.deliveries} o
    WHERE o.subscriber = d.subscriber AND o.ordering_key = d.ordering_key AND (o.pos_tx, o.pos) < (d.pos_tx, d.pos))
  OR ${keyInRanges(t, 'd.subscriber', 'd.ordering_key')}))`;
}

/** An ordering key that a range of the subscriber still holds unsettled. */
function keyInRanges(t: TableNames, subscriber: string, key: string): string {
  return `EXISTS (SELECT 1 FROM ${t.ranges} r, unnest(r.keyed, r.keys) AS k(p, key)
    WHERE r.subscriber = ${subscriber} AND k.key = ${key} AND NOT k.p = ANY(r.done))`;
}

/**
 * The claim statement. `shares` already respect the claim's total limit.
 * `window` bounds how many events of the log one subscriber's scan reads
 * (a subscriber with narrow patterns skips the rest in later claims).
 */
export function claimStatement(
  t: TableNames,
  owner: string,
  shares: ClaimShare[],
  leaseMs: number,
  asyncCommit: boolean,
  window: number,
): SQL {
  const rowBranches = shares.map(
    // Each branch is a sub-select (FOR UPDATE is not allowed directly in a UNION) with its own
    // LIMIT parameter, so the planner sees the real limit and scans the due index for a few rows.
    (s) => sql`SELECT * FROM (SELECT d.id, d.subscriber FROM ${id(t.deliveries)} d
    WHERE d.subscriber = ${s.name} AND d.run_at <= now()
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now()) AND NOT ${id(keyBlocked(t))}
    ORDER BY d.run_at, d.pos_tx, d.pos
    LIMIT ${s.lim}::int
    FOR UPDATE SKIP LOCKED) b`,
  );
  return sql`
WITH ${settings(asyncCommit)},
req AS (SELECT * FROM unnest(${textArray(shares.map((s) => s.name))}, ${intArray(shares.map((s) => s.lim))}) AS x(name, lim)),
rcand AS (${sql.join(rowBranches, sql` UNION ALL `)}),
rclaimed AS (
  UPDATE ${id(t.deliveries)} d SET lease_owner = ${owner}, lease_token = gen_random_uuid(),
    lease_expires_at = now() + ${ms(leaseMs)}, attempts = d.attempts + 1
  FROM rcand WHERE d.id = rcand.id AND ${id(CFG_USED)} >= 0
  RETURNING d.id, d.event_id, d.subscriber, d.lease_token, d.attempts, d.lease_expires_at, d.pos_tx, d.pos
),
hz AS (SELECT ${VISIBLE_HORIZON} AS xmin),
subs AS (
  SELECT s.name, s.patterns, s.head_tx, s.head_pos,
    r.lim - (SELECT count(*) FROM rclaimed c WHERE c.subscriber = s.name)::int AS lim
  FROM ${id(t.subscribers)} s JOIN req r ON r.name = s.name
  ORDER BY s.name
  FOR UPDATE OF s
),
scan AS (
  SELECT s.name, s.lim, s.head_tx, s.head_pos, e.id, e.tx_id, e.position, e.ordering_key, e.deliver_at,
    ${id(patternMatchText('s.patterns', 'e.event_type'))} AS matches
  FROM subs s CROSS JOIN LATERAL (
    SELECT e.id, e.tx_id, e.position, e.ordering_key, e.deliver_at, e.event_type FROM ${id(t.events)} e
    WHERE (e.tx_id, e.position) > (s.head_tx, s.head_pos) AND e.tx_id < (SELECT xmin FROM hz)
    ORDER BY e.tx_id, e.position
    LIMIT ${window}::int
  ) e
  WHERE s.lim > 0
),
cls AS (
  SELECT m.*, (coalesce(m.deliver_at > now(), false) OR (m.ordering_key IS NOT NULL AND (
      row_number() OVER (PARTITION BY m.name, m.ordering_key ORDER BY m.tx_id, m.position) > 1
      OR EXISTS (SELECT 1 FROM ${id(t.deliveries)} o WHERE o.subscriber = m.name AND o.ordering_key = m.ordering_key)
      OR ${id(keyInRanges(t, 'm.name', 'm.ordering_key'))}))) AS to_row
  FROM scan m WHERE m.matches
),
ranked AS (
  SELECT c.*, count(*) FILTER (WHERE NOT c.to_row)
    OVER (PARTITION BY c.name ORDER BY c.tx_id, c.position ROWS UNBOUNDED PRECEDING) AS take_rank
  FROM cls c
),
chosen AS (
  SELECT r.* FROM ranked r WHERE (NOT r.to_row AND r.take_rank <= r.lim) OR (r.to_row AND r.take_rank < r.lim)
),
reached AS (SELECT name, tx_id, position FROM ranked WHERE NOT to_row AND take_rank = lim),
scanned AS (
  SELECT DISTINCT ON (name) name, head_tx, head_pos, tx_id, position FROM scan ORDER BY name, tx_id DESC, position DESC
),
cut AS (
  SELECT sc.name, sc.head_tx AS old_tx, sc.head_pos AS old_pos,
    coalesce(rc.tx_id, sc.tx_id) AS tx, coalesce(rc.position, sc.position) AS pos
  FROM scanned sc LEFT JOIN reached rc ON rc.name = sc.name
),
moved AS (
  UPDATE ${id(t.subscribers)} s SET head_tx = c.tx, head_pos = c.pos
  FROM cut c WHERE s.name = c.name AND s.head_tx = c.old_tx AND s.head_pos = c.old_pos AND ${id(CFG_USED)} >= 0
  RETURNING s.name
),
taken AS (SELECT c.* FROM chosen c WHERE NOT c.to_row AND c.name IN (SELECT name FROM moved)),
routed AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, pos_tx, pos, run_at)
  SELECT md5(c.id::text || ':' || c.name)::uuid, c.id, c.name, c.ordering_key, c.tx_id, c.position,
    coalesce(c.deliver_at, now())
  FROM chosen c WHERE c.to_row AND c.name IN (SELECT name FROM moved)
  ORDER BY c.tx_id, c.position
  ON CONFLICT (id) DO NOTHING
  RETURNING id
),
leased AS (
  INSERT INTO ${id(t.ranges)} (subscriber, owner, token, lease_expires_at, attempts, lo_tx, lo_pos, hi_tx, hi_pos,
    members, keyed, keys)
  SELECT c.name, ${owner}, gen_random_uuid(), now() + ${ms(leaseMs)}, 1, c.old_tx, c.old_pos, c.tx, c.pos,
    ARRAY(SELECT x.position FROM taken x WHERE x.name = c.name ORDER BY x.tx_id, x.position),
    ARRAY(SELECT x.position FROM taken x WHERE x.name = c.name AND x.ordering_key IS NOT NULL ORDER BY x.tx_id, x.position),
    ARRAY(SELECT x.ordering_key FROM taken x WHERE x.name = c.name AND x.ordering_key IS NOT NULL ORDER BY x.tx_id, x.position)
  FROM cut c WHERE c.name IN (SELECT name FROM moved) AND EXISTS (SELECT 1 FROM taken x WHERE x.name = c.name)
  RETURNING id, subscriber, token, lease_expires_at
),
-- Ranges whose lease ran out (a fully settled one is deleted by the statement that settles its
-- last event). Read per subscriber through the lease index in its order, so that the scan stops at
-- now() and marks the entries of deleted ranges dead as it passes them: most ranges live for a
-- moment, and a scan of the subscriber's entries would read every one deleted since the last vacuum,
-- in every claim. One held by a completion right now is left to the next claim.
expired AS (
  DELETE FROM ${id(t.ranges)} r
  WHERE r.id = ANY(ARRAY(SELECT x.id FROM req CROSS JOIN LATERAL (
    SELECT x.id FROM ${id(t.ranges)} x WHERE x.subscriber = req.name AND ${id(leaseRanOut('x'))}
    ORDER BY x.lease_expires_at
    LIMIT ${id(String(EXPIRED_PER_CLAIM))}
    FOR UPDATE SKIP LOCKED) x))
  RETURNING r.subscriber, r.attempts, r.lo_tx, r.lo_pos, r.hi_tx, r.hi_pos, r.members, r.done
),
spilled AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, pos_tx, pos, run_at, attempts)
  SELECT md5(e.id::text || ':' || x.subscriber)::uuid, e.id, x.subscriber, e.ordering_key, e.tx_id, e.position, now(),
    x.attempts
  FROM expired x CROSS JOIN LATERAL (
    SELECT e.id, e.ordering_key, e.tx_id, e.position FROM ${id(t.events)} e
    WHERE (e.tx_id, e.position) > (x.lo_tx, x.lo_pos) AND (e.tx_id, e.position) <= (x.hi_tx, x.hi_pos)
      AND e.position = ANY(x.members) AND NOT e.position = ANY(x.done)
  ) e
  ORDER BY e.tx_id, e.position
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
SELECT 'r' AS kind, rc.id::text AS delivery_id, rc.subscriber, rc.lease_token::text AS token, rc.attempts,
  round(extract(epoch from rc.lease_expires_at) * 1000)::float8 AS lease_expires_ms, rc.pos_tx AS sort_tx,
  rc.pos AS sort_pos, ${EVENT_COLUMNS}
FROM rclaimed rc JOIN ${id(t.events)} e ON e.id = rc.event_id
UNION ALL
SELECT 'l', md5(e.id::text || ':' || x.name)::uuid::text, x.name,
  'L.' || l.id || '.' || l.token || '.' || x.tx_id::text || '.' || x.position, 1,
  round(extract(epoch from l.lease_expires_at) * 1000)::float8, x.tx_id, x.position, ${EVENT_COLUMNS}
FROM taken x JOIN leased l ON l.subscriber = x.name JOIN ${id(t.events)} e ON e.id = x.id
UNION ALL
-- A subscriber whose head another claimer moved first: claim it again.
SELECT 'x', NULL, c.name, ${id(NO_DELIVERY)} FROM cut c WHERE c.name NOT IN (SELECT name FROM moved)
UNION ALL
-- More may be due at once: rows were just added (attempts counts the spilled ones, due now).
SELECT 'h', NULL, NULL, NULL, (SELECT count(*) FROM spilled)::int, ${id(NO_DELIVERY_AFTER_ATTEMPTS)}
WHERE EXISTS (SELECT 1 FROM routed) OR EXISTS (SELECT 1 FROM spilled)
UNION ALL
-- Committed events wait behind an older transaction (the horizon): readable once it ends.
SELECT 'g', NULL, NULL, NULL, NULL, ${id(NO_DELIVERY_AFTER_ATTEMPTS)}
WHERE (SELECT max(e.tx_id) FROM ${id(t.events)} e) >= (SELECT xmin FROM hz)
ORDER BY sort_tx, sort_pos`;
}

/**
 * The claim for the common case, a small statement whose text does not
 * depend on the shares (so a driver's prepared statement is reused, plan
 * and all): for each subscriber with nothing off the path (no delivery row
 * due, no range to tidy), the events after its head that match its
 * patterns, up to its limit, until the first one that needs a row (an
 * ordering key, a `deliverAt` to come). Like {@link claimStatement}, the
 * head moves only if it is still where this statement read it (kind `'x'`
 * otherwise), and the events become one range leased to the owner.
 *
 * A subscriber it cannot serve comes back as kind `'f'` (nothing done for
 * it): something is off the path, or its first matching event needs a row.
 * The caller then claims for it with {@link claimStatement}.
 *
 * The scan reads up to `window` events of the log per subscriber, but stops
 * as soon as it found the subscriber's limit of matching ones; each event's
 * columns come from that one read.
 */
export function leanClaimStatement(
  t: TableNames,
  owner: string,
  shares: ClaimShare[],
  leaseMs: number,
  asyncCommit: boolean,
  window: number,
): SQL {
  const after = `(e.tx_id, e.position) > (s.head_tx, s.head_pos) AND e.tx_id < (SELECT xmin FROM hz)`;
  return sql`
WITH ${settings(asyncCommit)},
req AS (SELECT * FROM unnest(${textArray(shares.map((s) => s.name))}, ${intArray(shares.map((s) => s.lim))}) AS x(name, lim)),
hz AS (SELECT ${VISIBLE_HORIZON} AS xmin),
subs AS (
  SELECT s.name, s.patterns, s.head_tx, s.head_pos, q.lim,
    EXISTS (SELECT 1 FROM ${id(t.deliveries)} d WHERE d.subscriber = s.name AND d.run_at <= now()
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now()))
    OR EXISTS (SELECT 1 FROM ${id(t.ranges)} r WHERE r.subscriber = s.name AND ${id(leaseRanOut('r'))}) AS busy
  FROM ${id(t.subscribers)} s JOIN req q ON q.name = s.name
  ORDER BY s.name
  FOR UPDATE OF s
),
pick AS (
  SELECT s.name, e.*, row_number() OVER (PARTITION BY s.name ORDER BY e.tx_id, e.position) AS n,
    (e.ordering_key IS NOT NULL OR coalesce(e.deliver_at > now(), false)) AS special
  FROM subs s CROSS JOIN LATERAL (
    SELECT w.* FROM (
      SELECT e.id, e.tx_id, e.position, e.ordering_key, e.deliver_at, ${EVENT_COLUMNS}
      FROM ${id(t.events)} e WHERE ${id(after)}
      ORDER BY e.tx_id, e.position
      LIMIT ${window}::int
    ) w WHERE ${id(patternMatchText('s.patterns', 'w.event_type'))}
    LIMIT s.lim
  ) e
  WHERE NOT s.busy AND s.lim > 0
),
stop AS (SELECT DISTINCT ON (name) name, n FROM pick WHERE special ORDER BY name, n),
taken AS (SELECT p.* FROM pick p WHERE NOT EXISTS (SELECT 1 FROM stop WHERE stop.name = p.name AND stop.n <= p.n)),
last AS (SELECT DISTINCT ON (name) name, n, tx_id, position FROM taken ORDER BY name, n DESC),
cut AS (
  SELECT s.name, s.head_tx AS old_tx, s.head_pos AS old_pos, h.tx, h.pos
  FROM subs s CROSS JOIN LATERAL (
    -- The last event taken when the limit or a stop was reached, else the last one the scan read.
    SELECT l.tx_id AS tx, l.position AS pos FROM last l
    WHERE l.name = s.name AND (l.n >= s.lim OR EXISTS (SELECT 1 FROM stop WHERE stop.name = s.name))
    UNION ALL
    SELECT * FROM (
      SELECT w.tx_id, w.position FROM (
        SELECT e.tx_id, e.position FROM ${id(t.events)} e WHERE ${id(after)}
        ORDER BY e.tx_id, e.position LIMIT ${window}::int
      ) w ORDER BY w.tx_id DESC, w.position DESC LIMIT 1
    ) w
    LIMIT 1
  ) h
  WHERE NOT s.busy AND s.lim > 0 AND NOT EXISTS (SELECT 1 FROM stop WHERE stop.name = s.name AND stop.n = 1)
),
moved AS (
  UPDATE ${id(t.subscribers)} s SET head_tx = c.tx, head_pos = c.pos
  FROM cut c WHERE s.name = c.name AND s.head_tx = c.old_tx AND s.head_pos = c.old_pos AND ${id(CFG_USED)} >= 0
  RETURNING s.name
),
leased AS (
  INSERT INTO ${id(t.ranges)} (subscriber, owner, token, lease_expires_at, attempts, lo_tx, lo_pos, hi_tx, hi_pos, members)
  SELECT c.name, ${owner}, gen_random_uuid(), now() + ${ms(leaseMs)}, 1, c.old_tx, c.old_pos, c.tx, c.pos,
    ARRAY(SELECT x.position FROM taken x WHERE x.name = c.name ORDER BY x.n)
  FROM cut c WHERE c.name IN (SELECT name FROM moved) AND EXISTS (SELECT 1 FROM taken x WHERE x.name = c.name)
  RETURNING id, subscriber, token, lease_expires_at
)
SELECT 'l' AS kind, md5(e.id::text || ':' || e.name)::uuid::text AS delivery_id, e.name AS subscriber,
  'L.' || l.id || '.' || l.token || '.' || e.tx_id::text || '.' || e.position AS token, 1 AS attempts,
  round(extract(epoch from l.lease_expires_at) * 1000)::float8 AS lease_expires_ms, e.tx_id AS sort_tx,
  e.position AS sort_pos, e.event_id, e.event_type, e.event_version, e.actor, e.actor_type, e.organization_id,
  e.payload, e.metadata, e.retry_count, e.ts
FROM taken e JOIN leased l ON l.subscriber = e.name
UNION ALL
SELECT 'x', NULL, c.name, ${id(NO_DELIVERY)} FROM cut c WHERE c.name NOT IN (SELECT name FROM moved)
UNION ALL
-- Not served here: claim with the full statement.
SELECT 'f', NULL, s.name, ${id(NO_DELIVERY)} FROM subs s
WHERE s.lim > 0 AND (s.busy OR EXISTS (SELECT 1 FROM stop WHERE stop.name = s.name AND stop.n = 1))
UNION ALL
SELECT 'g', NULL, NULL, NULL, NULL, ${id(NO_DELIVERY_AFTER_ATTEMPTS)}
WHERE (SELECT max(e.tx_id) FROM ${id(t.events)} e) >= (SELECT xmin FROM hz)
ORDER BY sort_tx, sort_pos`;
}
