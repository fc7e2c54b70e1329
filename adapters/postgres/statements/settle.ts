/**
 * Settling what a claim handed out: complete, retry later, dead-letter,
 * release, extend. Two kinds of lease, two shapes of statement:
 *
 * - a delivery row (off the happy path), fenced by its `lease_token`;
 * - an event of a range (the happy path), fenced by the range's token:
 *   settling it adds its position to the range's `done`, and the last one
 *   deletes the range. A failed or released event of a range moves into the
 *   deliveries (or the dead letters) in the same statement.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { TableNames } from '../names';
import { CFG_USED, id, json, ms, settings } from './common';

/** A lease on a delivery row. */
export interface RowLease {
  id: string;
  token: string;
}

/** A lease on one event of a range. */
export interface RangeLease {
  range: string;
  token: string;
  tx: string;
  pos: string;
}

/** A uuid[] parameter: `= ANY(...)` on it gives the planner a primary-key index condition whatever its row estimates. */
const uuidArray = (ids: string[]): SQL => sql`${`{${ids.join(',')}}`}::uuid[]`;
/**
 * A bigint[] parameter of range ids, for the same reason: the ranges table is
 * small but churns (a range is inserted and deleted per claim), its statistics
 * often say it is empty, and a join on the recordset then reads it whole.
 */
const bigintArray = (ids: string[]): SQL => sql`${`{${ids.join(',')}}`}::bigint[]`;

/** Deletes completed delivery rows (current lease only); returns the ids completed. */
export function completeRowsStatement(t: TableNames, leases: RowLease[], asyncCommit: boolean): SQL {
  return sql`
WITH ${settings(asyncCommit)},
l AS (SELECT * FROM jsonb_to_recordset(${json(leases)}) AS x(id uuid, token uuid))
DELETE FROM ${id(t.deliveries)} d USING l
WHERE d.id = ANY(${uuidArray(leases.map((x) => x.id))}) AND d.id = l.id AND d.lease_token = l.token
  AND ${id(CFG_USED)} >= 0
RETURNING d.id`;
}

/**
 * Marks events of ranges settled (current lease only). A range whose members
 * are all settled is deleted instead of updated. Returns `(range_id,
 * position)` for each event newly settled.
 */
export function completeRangesStatement(
  t: TableNames,
  ranges: { id: string; token: string; add: string[] }[],
  asyncCommit: boolean,
): SQL {
  const ids = bigintArray(ranges.map((r) => r.id));
  return sql`
WITH ${settings(asyncCommit)},
l AS (SELECT * FROM jsonb_to_recordset(${json(ranges)}) AS x(id bigint, token uuid, add bigint[])),
st AS (
  SELECT r.id, r.token,
    ARRAY(SELECT DISTINCT p FROM unnest(l.add) p WHERE p = ANY(r.members) AND NOT p = ANY(r.done)) AS fresh,
    NOT EXISTS (SELECT 1 FROM unnest(r.members) m WHERE NOT m = ANY(r.done) AND NOT m = ANY(l.add)) AS finishing
  FROM ${id(t.ranges)} r JOIN l ON l.id = r.id AND l.token = r.token
  WHERE r.id = ANY(${ids})
  -- Locked (in id order, so that two statements locking the same ranges cannot deadlock), so two
  -- completions of one range at once see each other's marks, and the last one deletes it.
  ORDER BY r.id
  FOR UPDATE OF r
),
upd AS (
  UPDATE ${id(t.ranges)} r SET done = r.done || ARRAY(SELECT p FROM unnest(st.fresh) p WHERE NOT p = ANY(r.done))
  FROM st WHERE r.id = ANY(${ids}) AND r.id = st.id AND r.token = st.token AND NOT st.finishing
    AND ${id(CFG_USED)} >= 0
  RETURNING r.id
),
del AS (
  DELETE FROM ${id(t.ranges)} r USING st
  WHERE r.id = ANY(${ids}) AND r.id = st.id AND r.token = st.token AND st.finishing AND ${id(CFG_USED)} >= 0
  RETURNING r.id
)
SELECT st.id::text AS range_id, p::text AS position FROM st CROSS JOIN LATERAL unnest(st.fresh) p
WHERE st.id IN (SELECT id FROM upd UNION ALL SELECT id FROM del)`;
}

/** Extends the leases of delivery rows still held; returns their ids. */
export function extendRowsStatement(t: TableNames, leases: RowLease[], leaseMs: number, asyncCommit: boolean): SQL {
  return sql`
WITH ${settings(asyncCommit)}
UPDATE ${id(t.deliveries)} d SET lease_expires_at = now() + ${ms(leaseMs)}
FROM jsonb_to_recordset(${json(leases)}) AS l(id uuid, token uuid)
WHERE d.id = ANY(${uuidArray(leases.map((x) => x.id))}) AND d.id = l.id AND d.lease_token = l.token
  AND ${id(CFG_USED)} >= 0
RETURNING d.id`;
}

/** Extends the leases of ranges still held; returns their ids. */
export function extendRangesStatement(
  t: TableNames,
  ranges: { id: string; token: string }[],
  leaseMs: number,
  asyncCommit: boolean,
): SQL {
  const ids = bigintArray(ranges.map((r) => r.id));
  return sql`
WITH ${settings(asyncCommit)},
l AS (SELECT * FROM jsonb_to_recordset(${json(ranges)}) AS x(id bigint, token uuid)),
held AS (
  SELECT r.id FROM ${id(t.ranges)} r JOIN l ON l.id = r.id AND l.token = r.token
  WHERE r.id = ANY(${ids})
  ORDER BY r.id FOR UPDATE OF r
)
UPDATE ${id(t.ranges)} r SET lease_expires_at = now() + ${ms(leaseMs)}
FROM held WHERE r.id = ANY(${ids}) AND r.id = held.id AND ${id(CFG_USED)} >= 0
RETURNING r.id::text AS id`;
}

/** What becomes of a delivery that did not succeed. */
export type Outcome =
  | { kind: 'retry'; retryAt: Date; error: unknown; lastError: string }
  | { kind: 'dead'; error: unknown; lastError: string }
  | { kind: 'release' };

/**
 * Records a failure or a release of a delivery row. A retry keeps the row with
 * its next time; a dead letter moves it; a release gives the attempt back.
 * Returns one row `n` (1 when the lease was current).
 */
export function settleRowStatement(t: TableNames, lease: RowLease, outcome: Outcome, asyncCommit: boolean): SQL {
  const held = sql`id = ${lease.id}::uuid AND lease_token = ${lease.token}::uuid`;
  if (outcome.kind === 'release') {
    return sql`
WITH ${settings(asyncCommit)}
UPDATE ${id(t.deliveries)} SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
  attempts = greatest(attempts - 1, 0)
WHERE ${held} AND ${id(CFG_USED)} >= 0
RETURNING 1 AS n`;
  }
  const counted = eventFailed(t, 'SELECT event_id FROM gone', outcome.lastError);
  if (outcome.kind === 'retry') {
    return sql`
WITH gone AS (
  UPDATE ${id(t.deliveries)} SET run_at = ${outcome.retryAt.toISOString()}::timestamptz, lease_owner = NULL,
    lease_token = NULL, lease_expires_at = NULL, last_error = ${json(outcome.error)}
  WHERE ${held}
  RETURNING event_id
),
${counted}
SELECT 1 AS n FROM gone`;
  }
  return sql`
WITH gone AS (
  DELETE FROM ${id(t.deliveries)} WHERE ${held}
  RETURNING id, event_id, subscriber, ordering_key, attempts
),
dl AS (
  INSERT INTO ${id(t.deadLetters)} (id, event_id, subscriber, ordering_key, attempts, error, failed_at)
  SELECT id, event_id, subscriber, ordering_key, attempts, ${json(outcome.error)}, now() FROM gone
  ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, failed_at = excluded.failed_at
  RETURNING id
),
${counted}
SELECT 1 AS n FROM gone WHERE (SELECT count(*) FROM dl) >= 0`;
}

/**
 * Records a failure or a release of an event of a range: the event is
 * settled in its range and moves to a delivery row (retry at its time, or
 * released due now with the attempt given back) or to the dead letters.
 * Returns one row `n` when the lease was current.
 */
export function settleRangeEventStatement(
  t: TableNames,
  lease: RangeLease,
  outcome: Outcome,
  asyncCommit: boolean,
): SQL {
  const pos = sql`${lease.pos}::bigint`;
  const target =
    outcome.kind === 'dead'
      ? sql`
moved AS (
  INSERT INTO ${id(t.deadLetters)} (id, event_id, subscriber, ordering_key, attempts, error, failed_at)
  SELECT md5(ev.id::text || ':' || r.subscriber)::uuid, ev.id, r.subscriber, ev.ordering_key, r.attempts,
    ${json(outcome.error)}, now()
  FROM ev, r
  ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, failed_at = excluded.failed_at
  RETURNING id
)`
      : sql`
moved AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, pos_tx, pos, run_at, attempts, last_error)
  SELECT md5(ev.id::text || ':' || r.subscriber)::uuid, ev.id, r.subscriber, ev.ordering_key, ev.tx_id, ev.position,
    ${outcome.kind === 'retry' ? sql`${outcome.retryAt.toISOString()}::timestamptz` : sql`now()`},
    ${outcome.kind === 'retry' ? sql`r.attempts` : sql`r.attempts - 1`},
    ${outcome.kind === 'retry' ? json(outcome.error) : sql`NULL::jsonb`}
  FROM ev, r
  ON CONFLICT (id) DO UPDATE SET run_at = excluded.run_at, attempts = excluded.attempts,
    last_error = coalesce(excluded.last_error, ${id(t.deliveries)}.last_error), lease_owner = NULL, lease_token = NULL,
    lease_expires_at = NULL
  RETURNING id
)`;
  const counted =
    outcome.kind === 'release' ? sql`counted AS (SELECT 1)` : eventFailed(t, 'SELECT id FROM ev', outcome.lastError);
  return sql`
WITH ${settings(asyncCommit && outcome.kind === 'release')},
r AS (
  SELECT id, subscriber, attempts,
    NOT EXISTS (SELECT 1 FROM unnest(members) m WHERE m <> ${pos} AND NOT m = ANY(done)) AS finishing
  FROM ${id(t.ranges)}
  WHERE id = ${lease.range}::bigint AND token = ${lease.token}::uuid AND ${pos} = ANY(members) AND NOT ${pos} = ANY(done)
  FOR UPDATE
),
ev AS (
  SELECT e.id, e.ordering_key, e.tx_id, e.position FROM ${id(t.events)} e
  WHERE e.tx_id = ${lease.tx}::xid8 AND e.position = ${pos} AND EXISTS (SELECT 1 FROM r)
),
marked AS (
  UPDATE ${id(t.ranges)} x SET done = x.done || ${pos} FROM r WHERE x.id = r.id AND NOT r.finishing
    AND ${id(CFG_USED)} >= 0
  RETURNING x.id
),
dropped AS (DELETE FROM ${id(t.ranges)} x USING r WHERE x.id = r.id AND r.finishing RETURNING x.id),
${target},
${counted}
SELECT 1 AS n FROM (SELECT id FROM marked UNION ALL SELECT id FROM dropped) x
WHERE (SELECT count(*) FROM moved) >= 0 AND (SELECT count(*) FROM counted) >= 0`;
}

/** A CTE `counted` that adds a failed attempt to the events (ids from `source`) and records the last error. */
function eventFailed(t: TableNames, source: string, lastError: string): SQL {
  return sql`counted AS (
  UPDATE ${id(t.events)} e SET retry_count = e.retry_count + 1, last_error = ${lastError}
  WHERE e.id IN (${id(source)}) RETURNING e.id
)`;
}

/**
 * Records the dead letter of a delivery a transport carried (the event is
 * found by its `eventId`; the id is the delivery id, as for the storage's own).
 */
export function recordDeadLetterStatement(
  t: TableNames,
  record: { subscriber: string; event: { eventId: string }; orderingKey?: string; attempts: number; error: unknown },
): SQL {
  return sql`
INSERT INTO ${id(t.deadLetters)} (id, event_id, subscriber, ordering_key, attempts, error, failed_at)
SELECT md5(e.id::text || ':' || ${record.subscriber})::uuid, e.id, ${record.subscriber}, ${record.orderingKey ?? null},
  ${record.attempts}, ${json(record.error)}, now()
FROM ${id(t.events)} e WHERE e.event_id = ${record.event.eventId}
ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, failed_at = excluded.failed_at`;
}
