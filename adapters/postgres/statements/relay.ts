/**
 * The outbox relay's statements: its lease, reading the log after its
 * cursor in commit order, moving the cursor (fenced by the lease), the
 * events held back for a future `deliverAt`, and moving the subscribers'
 * heads to where the broker's groups have acknowledged.
 *
 * A position travels as `"<tx_id>:<position>"`, the event's place in the log.
 */
import { sql, type SQL } from 'drizzle-orm';
import { EVENT_COLUMNS, patternMatch } from '../event-row';
import type { TableNames } from '../names';
import { activeSubscribers, id, json, ms, settledHorizon, VISIBLE_HORIZON } from './common';

/** A place in the log. */
export interface LogPosition {
  tx: string;
  pos: number;
}

/**
 * Creates the relay's row, its cursor at the oldest place some subscriber
 * has not settled. The subscribers registered by then need no catch-up:
 * nothing was sent before their groups existed.
 */
export function relayEnsureStatement(t: TableNames, name: string, ttlMs: number): SQL {
  return sql`
WITH act AS (${activeSubscribers(t, ttlMs)}), start AS (${id(settledHorizon(t))})
INSERT INTO ${id(t.relays)} (name, cursor_tx, cursor_pos, caught_up)
SELECT ${name}, coalesce((SELECT tx FROM start), '0'::xid8), coalesce((SELECT pos FROM start), 0), ARRAY(SELECT name FROM act)
ON CONFLICT (name) DO NOTHING`;
}

/** Takes or renews the lease; returns the cursor when this owner holds it. */
export function relayLeadStatement(t: TableNames, name: string, owner: string, leaseMs: number): SQL {
  return sql`
UPDATE ${id(t.relays)} SET owner = ${owner}, lease_expires_at = now() + ${ms(leaseMs)}, updated_at = now()
WHERE name = ${name} AND (owner = ${owner} OR owner IS NULL OR lease_expires_at < now())
RETURNING cursor_tx::text AS tx, cursor_pos AS pos`;
}

/** Gives the lease up (on stop), so another process takes over without waiting for it to run out. */
export function relayResignStatement(t: TableNames, name: string, owner: string): SQL {
  return sql`UPDATE ${id(t.relays)} SET owner = NULL, lease_expires_at = NULL WHERE name = ${name} AND owner = ${owner}`;
}

/** The next committed events after `after`, in commit order. */
export function relayReadStatement(t: TableNames, after: LogPosition, limit: number): SQL {
  return sql`
SELECT e.id AS uuid, e.tx_id::text AS tx, e.position AS pos, e.ordering_key,
  CASE WHEN e.deliver_at > now() THEN round(extract(epoch from e.deliver_at) * 1000)::float8 END AS later_ms, ${EVENT_COLUMNS}
FROM ${id(t.events)} e
WHERE (e.tx_id, e.position) > (${after.tx}::xid8, ${after.pos}::bigint) AND e.tx_id < ${VISIBLE_HORIZON}
ORDER BY e.tx_id, e.position
LIMIT ${limit}`;
}

/**
 * Moves the cursor past what was sent and keeps the events held back for
 * their `deliverAt`, in one step, only while `owner` leads (a deposed
 * leader's step changes nothing: `moved` is 0).
 */
export function relayAdvanceStatement(
  t: TableNames,
  name: string,
  owner: string,
  to: LogPosition,
  later: readonly { uuid: string; runAt: string }[],
): SQL {
  return sql`
WITH moved AS (
  UPDATE ${id(t.relays)} SET cursor_tx = ${to.tx}::xid8, cursor_pos = ${to.pos}::bigint, updated_at = now()
  WHERE name = ${name} AND owner = ${owner} AND lease_expires_at > now()
  RETURNING 1
),
held AS (
  INSERT INTO ${id(t.relayScheduled)} (relay, event_id, run_at)
  SELECT ${name}, x.uuid, x.run_at FROM jsonb_to_recordset(${json(later.map((l) => ({ uuid: l.uuid, run_at: l.runAt })))}) AS x(uuid uuid, run_at timestamptz)
  WHERE EXISTS (SELECT 1 FROM moved)
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM held)::int AS held`;
}

/** Held-back events now due, oldest first. */
export function relayDueStatement(t: TableNames, name: string, limit: number): SQL {
  return sql`
SELECT e.id AS uuid, e.tx_id::text AS tx, e.position AS pos, e.ordering_key, ${EVENT_COLUMNS}
FROM ${id(t.relayScheduled)} s JOIN ${id(t.events)} e ON e.id = s.event_id
WHERE s.relay = ${name} AND s.run_at <= now()
ORDER BY s.run_at, e.tx_id, e.position
LIMIT ${limit}`;
}

/** Forgets held-back events once sent (only while `owner` leads). */
export function relaySentStatement(t: TableNames, name: string, owner: string, uuids: readonly string[]): SQL {
  return sql`
DELETE FROM ${id(t.relayScheduled)} s
WHERE s.relay = ${name} AND s.event_id IN (SELECT x::uuid FROM jsonb_array_elements_text(${json(uuids)}) AS x)
  AND EXISTS (SELECT 1 FROM ${id(t.relays)} r WHERE r.name = ${name} AND r.owner = ${owner})`;
}

/** The active subscribers (whose heads the relay moves), each with whether the relay has caught it up. */
export function relaySubscribersStatement(t: TableNames, name: string, ttlMs: number): SQL {
  return sql`
SELECT a.name, a.head_tx::text AS head_tx, a.head_pos,
  a.name = ANY(coalesce((SELECT caught_up FROM ${id(t.relays)} WHERE name = ${name}), '{}'::text[])) AS caught_up
FROM (${activeSubscribers(t, ttlMs)}) a ORDER BY a.name`;
}

/**
 * Events of the log after `after` up to `upTo` that subscriber `subscriber`'s
 * patterns match: what the relay sent before that subscriber's group existed.
 */
export function relayCatchUpReadStatement(
  t: TableNames,
  subscriber: string,
  after: LogPosition,
  upTo: LogPosition,
  limit: number,
): SQL {
  return sql`
SELECT e.id AS uuid, e.tx_id::text AS tx, e.position AS pos, e.ordering_key, ${EVENT_COLUMNS}
FROM ${id(t.events)} e, ${id(t.subscribers)} s
WHERE s.name = ${subscriber} AND ${patternMatch('s.patterns', 'e.event_type')}
  AND (e.tx_id, e.position) > (${after.tx}::xid8, ${after.pos}::bigint)
  AND (e.tx_id, e.position) <= (${upTo.tx}::xid8, ${upTo.pos}::bigint)
  AND NOT EXISTS (SELECT 1 FROM ${id(t.relayScheduled)} rs WHERE rs.event_id = e.id)
ORDER BY e.tx_id, e.position
LIMIT ${limit}`;
}

/** Records that the relay caught subscriber `subscriber` up (only while `owner` leads). */
export function relayCaughtUpStatement(t: TableNames, name: string, owner: string, subscriber: string): SQL {
  return sql`
UPDATE ${id(t.relays)} SET caught_up = array_append(array_remove(caught_up, ${subscriber}), ${subscriber})
WHERE name = ${name} AND owner = ${owner}
RETURNING 1`;
}

/**
 * Moves each subscriber's head forward to just before the oldest event its
 * group has not acknowledged (`pending`), or to `sent` (everything the relay
 * had sent when it asked the broker) when nothing is pending; never
 * backwards. Events held back for their `deliverAt` count as unprocessed
 * on their own (see `processedExpr`), so heads pass them.
 */
export function relayHeadsStatement(
  t: TableNames,
  sent: LogPosition,
  heads: readonly { subscriber: string; pending: LogPosition | null }[],
): SQL {
  const rows = heads.map((h) => ({ subscriber: h.subscriber, tx: h.pending?.tx ?? null, pos: h.pending?.pos ?? null }));
  return sql`
WITH input AS (SELECT * FROM jsonb_to_recordset(${json(rows)}) AS x(subscriber text, tx text, pos bigint)),
goal AS (
  SELECT i.subscriber, b.tx_id AS tx, b.position AS pos
  FROM input i
  CROSS JOIN LATERAL (
    SELECT ${sent.tx}::xid8 AS tx_id, ${sent.pos}::bigint AS position WHERE i.tx IS NULL
    UNION ALL
    (SELECT e.tx_id, e.position FROM ${id(t.events)} e
     WHERE i.tx IS NOT NULL AND (e.tx_id, e.position) < (i.tx::xid8, i.pos)
     ORDER BY e.tx_id DESC, e.position DESC LIMIT 1)
  ) b
)
UPDATE ${id(t.subscribers)} s SET head_tx = goal.tx, head_pos = goal.pos
FROM goal WHERE s.name = goal.subscriber AND (s.head_tx, s.head_pos) < (goal.tx, goal.pos)
RETURNING s.name`;
}

/** After the broker lost what it held: the cursor goes back to the oldest head, to send it all again. */
export function relayRewindStatement(t: TableNames, name: string, owner: string, ttlMs: number): SQL {
  return sql`
WITH act AS (${activeSubscribers(t, ttlMs)}), start AS (${id(settledHorizon(t))})
UPDATE ${id(t.relays)} r SET cursor_tx = s.tx, cursor_pos = s.pos, updated_at = now()
FROM start s WHERE r.name = ${name} AND r.owner = ${owner} AND (s.tx, s.pos) < (r.cursor_tx, r.cursor_pos)
RETURNING r.cursor_tx::text AS tx, r.cursor_pos AS pos`;
}

/** Committed events the relay has not sent (counted up to `cap`), and held-back ones due now. */
export function relayBacklogStatement(t: TableNames, name: string, cap: number): SQL {
  return sql`
SELECT (SELECT count(*) FROM (
  SELECT 1 FROM ${id(t.events)} e, ${id(t.relays)} r
  WHERE r.name = ${name} AND (e.tx_id, e.position) > (r.cursor_tx, r.cursor_pos) LIMIT ${cap}) x)::int
  + (SELECT count(*) FROM ${id(t.relayScheduled)} s WHERE s.relay = ${name} AND s.run_at <= now())::int AS unsent`;
}
