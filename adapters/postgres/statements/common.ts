/**
 * Pieces shared by the statements: parameter helpers, the active subscribers,
 * the settled horizon, and `processed` derived from the cursors.
 *
 * The delivery model these statements keep: the `events` table is the log,
 * ordered by (tx_id, position) and read only below the oldest running
 * transaction; each subscriber has a head (everything up to it was handed out
 * or settled for it); what a claim hands out is a range leased to its owner;
 * rows in the deliveries table exist only off the happy path.
 */
import { sql, type SQL } from 'drizzle-orm';
import { patternMatchText } from '../event-row';
import type { TableNames } from '../names';

export const UTC_NOW = `(now() AT TIME ZONE 'UTC')`;
export const ms = (n: number): SQL => sql`(${n}::float8 * interval '1 millisecond')`;
export const json = (value: unknown): SQL => sql`${JSON.stringify(value)}::jsonb`;
export const id = (s: string): SQL => sql.raw(s);
/** A text[] parameter. */
export const textArray = (values: readonly string[]): SQL =>
  sql`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;
/** An int[] parameter. */
export const intArray = (values: readonly number[]): SQL => sql`${`{${values.map((v) => Math.floor(v)).join(',')}}`}::int[]`;

/** The oldest transaction still running: events of it and later ones are not read yet. */
export const VISIBLE_HORIZON = sql.raw(`pg_snapshot_xmin(pg_current_snapshot())`);

/**
 * A CTE that sets statement-local settings: `synchronous_commit` off for lease
 * bookkeeping (losing its last moments in a database crash means a delivery
 * runs again, never a loss), and JIT off (these statements touch few rows;
 * row estimates from array and LATERAL limits push the cost past
 * `jit_above_cost`, and compiling once cost 200 ms a claim).
 */
export function settings(asyncCommit: boolean): SQL {
  return sql.raw(
    `cfg AS (SELECT set_config('synchronous_commit', '${asyncCommit ? 'off' : 'on'}', true) AS a,
  set_config('jit', 'off', true) AS b)`,
  );
}
/** References `cfg` so that its settings are applied before the statement's writes. */
export const CFG_USED = `(SELECT count(*) FROM cfg)`;

/**
 * Whether some storage listens for work notices now, as SQL text. A NOTIFY
 * nobody hears still costs: PostgreSQL serializes the commits of notifying
 * transactions, so concurrent publishers would lose their shared commits.
 */
export function someoneListensText(t: TableNames): string {
  return `EXISTS (SELECT 1 FROM ${t.listeners} WHERE expires_at > now())`;
}

/**
 * `pg_notify` on the storage's channel while someone listens, as SQL text
 * (`channel` is the channel as SQL: a parameter or a literal); `NULL` when
 * notifications are off (empty channel).
 */
export function notifyText(t: TableNames, channel: string): string {
  return t.channel ? `CASE WHEN ${someoneListensText(t)} THEN pg_notify(${channel}, '') END` : 'NULL';
}

/** {@link notifyText} with the storage's channel, as drizzle SQL. */
export function notifyCall(t: TableNames): SQL {
  return sql.raw(notifyText(t, `'${t.channel}'`));
}

/**
 * Subscribers that count: seen within the time to live, as SQL text (the
 * time to live, fixed per storage, is part of the text, so statements of
 * fixed text can use it too).
 */
export function activeSubscribersText(t: TableNames, ttlMs: number): string {
  return `SELECT name, patterns, head_tx, head_pos FROM ${t.subscribers}
  WHERE last_seen_at > now() - (${Number(ttlMs)}::float8 * interval '1 millisecond')`;
}

/** {@link activeSubscribersText} as drizzle SQL. */
export function activeSubscribers(t: TableNames, ttlMs: number): SQL {
  return id(activeSubscribersText(t, ttlMs));
}

/**
 * One row `(tx, pos)`: the oldest place in the log some active subscriber has
 * not settled (its head, or the start of one of its ranges); the stored
 * horizon when no subscriber is active. Everything at or before it is settled
 * by every active subscriber. Needs CTE `act` (the active subscribers).
 */
export function settledHorizon(t: TableNames): string {
  return `SELECT tx, pos FROM (
    SELECT head_tx AS tx, head_pos AS pos FROM act
    UNION ALL SELECT r.lo_tx, r.lo_pos FROM ${t.ranges} r WHERE r.subscriber IN (SELECT name FROM act)
    UNION ALL SELECT horizon_tx, horizon_pos FROM ${t.state} WHERE NOT EXISTS (SELECT 1 FROM act)
  ) h ORDER BY tx, pos LIMIT 1`;
}

/**
 * Whether event `e` is processed, derived rather than stored: no delivery of
 * it waits off the happy path (nor, with a broker, in the relay for its
 * `deliverAt`), and every active subscriber whose patterns
 * match has passed it with its head and settled it in its ranges. With no
 * active subscriber, events after the stored horizon wait for the first ones.
 * Needs CTE `act`.
 */
export function processedExpr(t: TableNames): SQL {
  return sql.raw(`(NOT EXISTS (SELECT 1 FROM ${t.deliveries} d WHERE d.event_id = e.id)
  AND NOT EXISTS (SELECT 1 FROM ${t.relayScheduled} rs WHERE rs.event_id = e.id) AND ${passedText(t)})`);
}

/**
 * The part of {@link processedExpr} that reads the cursors: every active
 * subscriber whose patterns match event `e` has passed it and settled it (or,
 * with none active, the stored horizon has). Needs CTE `act`. The unsettled
 * events of the ranges are an uncorrelated subquery, which PostgreSQL reads
 * once per statement into a hash (they are the events in flight), rather
 * than searching every range's arrays for each event.
 */
export function passedText(t: TableNames): string {
  return `CASE
  WHEN EXISTS (SELECT 1 FROM act) THEN NOT EXISTS (
    SELECT 1 FROM act s WHERE ${patternMatchText('s.patterns', 'e.event_type')}
      AND ((e.tx_id, e.position) > (s.head_tx, s.head_pos) OR (s.name, e.position) IN (
        SELECT r.subscriber, m.pos FROM ${t.ranges} r CROSS JOIN LATERAL unnest(r.members) AS m(pos) WHERE NOT m.pos = ANY(r.done))))
  ELSE e.processed OR (e.tx_id, e.position) <= (SELECT horizon_tx, horizon_pos FROM ${t.state})
END`;
}
