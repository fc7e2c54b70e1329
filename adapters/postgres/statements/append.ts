/**
 * Publishing: one INSERT into the log per batch of events. Nothing is written
 * per subscriber: each reads the log through its own cursor.
 */
import { sql, type SQL } from 'drizzle-orm';
import { EVENT_COLUMNS, patternMatch, patternMatchText } from '../event-row';
import type { TableNames } from '../names';
import { activeSubscribers, activeSubscribersText, id, json, notifyCall, notifyText, UTC_NOW } from './common';
import type { TextStatement } from './text';

/** One event of an append, as sent to the database. */
export interface AppendRow {
  ord: number;
  /** Which append call of a coalesced statement the row belongs to. */
  call: number;
  id: string | null;
  event_id: string;
  event_type: string;
  event_version: string;
  actor: string | null;
  actor_type: string | null;
  organization_id: string | null;
  payload: unknown;
  metadata: unknown;
  created_at: string;
  idempotency_key: string | null;
  ordering_key: string | null;
  deliver_at: string | null;
}

/**
 * Inserts events; an idempotency key already stored yields the stored event
 * (rows of kind `'e'`). An event no active subscriber matches is processed at
 * once (unless no subscriber is active at all: then it waits for the first).
 * Sends one NOTIFY, on commit, when some subscriber has work due now and some
 * storage listens.
 */
export function appendStatement(t: TableNames, rows: AppendRow[], ttlMs: number): SQL {
  const keys = [...new Set(rows.map((r) => r.idempotency_key).filter((k): k is string => k !== null))];
  return sql`
WITH input AS (
  SELECT * FROM jsonb_to_recordset(${json(rows)}) AS x(
    ord int, call int, id uuid, event_id text, event_type text, event_version text, actor text, actor_type text,
    organization_id text, payload jsonb, metadata jsonb, created_at timestamp, idempotency_key text,
    ordering_key text, deliver_at timestamptz)
),
subs AS (${activeSubscribers(t, ttlMs)}),
${keys.length === 0 ? sql`refused AS (SELECT NULL::int AS call WHERE false),` : conflicts(t)}
flagged AS (
  SELECT i.*, EXISTS (SELECT 1 FROM subs) AND NOT EXISTS (
    SELECT 1 FROM subs s WHERE ${patternMatch('s.patterns', 'i.event_type')}) AS done
  FROM input i WHERE i.call NOT IN (SELECT call FROM refused)
),
ins AS (
  INSERT INTO ${id(t.events)} (id, event_id, event_type, event_version, actor, actor_type, organization_id, payload,
    metadata, created_at, idempotency_key, ordering_key, deliver_at, processed, processed_at)
  SELECT coalesce(i.id, gen_random_uuid()), i.event_id, i.event_type, i.event_version, i.actor, i.actor_type,
    i.organization_id, i.payload, i.metadata, i.created_at, i.idempotency_key, i.ordering_key, i.deliver_at, i.done,
    CASE WHEN i.done THEN ${id(UTC_NOW)} END
  FROM flagged i
  ORDER BY i.ord
  ${keys.length === 0 ? sql`` : sql`ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`}
  RETURNING event_id, idempotency_key, processed, deliver_at
),
notified AS (
  SELECT ${notifyCall(t)} FROM (
    SELECT 1 FROM ins WHERE NOT processed AND (deliver_at IS NULL OR deliver_at <= now()) LIMIT 1) x
)
SELECT 'i' AS kind, ins.event_id, ins.idempotency_key, ins.processed,
  (NOT ins.processed AND (ins.deliver_at IS NULL OR ins.deliver_at <= now()))::int AS due,
  (SELECT count(*) FROM notified)::int AS notified,
  NULL AS event_type, NULL AS event_version, NULL AS actor, NULL AS actor_type, NULL AS organization_id,
  NULL::jsonb AS payload, NULL::jsonb AS metadata, NULL::int AS retry_count, NULL::float8 AS ts
FROM ins
UNION ALL
SELECT 'c', NULL, NULL, NULL, call, 0, NULL, NULL, NULL, NULL, NULL, NULL::jsonb, NULL::jsonb, NULL::int, NULL::float8
FROM refused${keys.length === 0 ? sql`` : existingByKey(t, keys)}`;
}

/**
 * CTE `refused`: the calls that reuse an idempotency key for another event
 * type or organization, against a stored event or an earlier row of the same
 * statement. None of their rows is inserted (the others' are).
 */
function conflicts(t: TableNames): SQL {
  return sql`
firsts AS (
  SELECT DISTINCT ON (idempotency_key) idempotency_key, event_type, organization_id FROM input
  WHERE idempotency_key IS NOT NULL ORDER BY idempotency_key, ord
),
refused AS (
  SELECT DISTINCT i.call FROM input i
  LEFT JOIN ${id(t.events)} e ON e.idempotency_key = i.idempotency_key
  LEFT JOIN firsts f ON f.idempotency_key = i.idempotency_key
  WHERE i.idempotency_key IS NOT NULL AND (
    (e.id IS NOT NULL AND (e.event_type IS DISTINCT FROM i.event_type OR e.organization_id IS DISTINCT FROM i.organization_id))
    OR f.event_type IS DISTINCT FROM i.event_type OR f.organization_id IS DISTINCT FROM i.organization_id)
),`;
}

/** The union branch of {@link appendStatement} that returns events already stored under the batch's idempotency keys. */
function existingByKey(t: TableNames, keys: string[]): SQL {
  return sql`
UNION ALL
SELECT 'e', e.event_id, e.idempotency_key, e.processed, 0, 0, e.event_type, e.event_version, e.actor, e.actor_type,
  e.organization_id, e.payload, e.metadata, e.retry_count, round(extract(epoch from e.created_at) * 1000)::float8
FROM ${id(t.events)} e
WHERE e.idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(${json(keys)})))`;
}

/** Stored events with these idempotency keys. */
export function eventsByIdempotencyKey(t: TableNames, keys: string[]): SQL {
  return sql`SELECT e.idempotency_key, e.processed, ${EVENT_COLUMNS} FROM ${id(t.events)} e
WHERE e.idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(${json(keys)})))`;
}

/**
 * The columns an append without idempotency keys writes, in the order
 * {@link appendOneStatement} takes them as parameters `$1`... (then the
 * channel), with their types.
 */
const COLUMNS = [
  ['id', 'uuid'],
  ['event_id', 'text'],
  ['event_type', 'text'],
  ['event_version', 'text'],
  ['actor', 'text'],
  ['actor_type', 'text'],
  ['organization_id', 'text'],
  ['payload', 'jsonb'],
  ['metadata', 'jsonb'],
  ['created_at', 'timestamp'],
  ['ordering_key', 'text'],
  ['deliver_at', 'timestamptz'],
] as const;

/**
 * The append of one event without idempotency key, the common publish: the
 * same effects as {@link appendStatement} (an event no active subscriber
 * matches is processed at once; one NOTIFY, on commit, when the event is due
 * for some subscriber and some storage listens) in a statement of fixed text
 * with plain parameters, so it is prepared once per connection and planned
 * generically. Returns one row: `processed`, `due` (0 or 1).
 */
export function appendOneStatement(t: TableNames, ttlMs: number): TextStatement<[row: AppendRow]> {
  // Parameters typed text, whatever the column: every driver then sends the strings as they are
  // (postgres.js and PGlite would serialize a value of a jsonb or timestamp parameter themselves).
  const values = COLUMNS.map(([, type], i) => (type === 'text' ? `$${i + 1}::text` : `$${i + 1}::text::${type}`));
  values[0] = `coalesce(${values[0]}, gen_random_uuid())`;
  // `done`: no active subscriber matches (false when none is active at all: the event waits for the first ones).
  // One scan of the subscribers, where appendStatement's CTE is read twice.
  const text = `WITH ins AS (
  INSERT INTO ${t.events} (${COLUMNS.map(([c]) => c).join(', ')}, processed, processed_at)
  SELECT ${values.join(', ')}, d.done, CASE WHEN d.done THEN ${UTC_NOW} END
  FROM (SELECT coalesce(bool_and(NOT ${patternMatchText('s.patterns', '$3::text')}), false) AS done
    FROM (${activeSubscribersText(t, ttlMs)}) s) d
  RETURNING processed, NOT processed AND (deliver_at IS NULL OR deliver_at <= now()) AS due
)
SELECT processed, due::int AS due, CASE WHEN due THEN ${notifyText(t, `$${COLUMNS.length + 1}::text`)} END AS notified FROM ins`;
  return {
    text,
    params: (row) => {
      const params: unknown[] = COLUMNS.map(([c, type]) => (type === 'jsonb' ? JSON.stringify(row[c]) : row[c]));
      if (t.channel) params.push(t.channel);
      return params;
    },
  };
}

/**
 * The append of several events, none with an idempotency key (what the
 * coalesced publishes and `publishMany` send): {@link appendStatement}
 * without the key handling, and with fewer columns returned. Parameters:
 * the rows as JSON, the channel. Returns one row per event: `event_id`,
 * `processed`, `due` (0 or 1).
 */
export function appendManyStatement(t: TableNames, ttlMs: number): TextStatement<[rows: AppendRow[]]> {
  const text = `WITH subs AS (${activeSubscribersText(t, ttlMs)}),
ins AS (
  INSERT INTO ${t.events} (${COLUMNS.map(([c]) => c).join(', ')}, processed, processed_at)
  SELECT coalesce(i.id, gen_random_uuid()), ${COLUMNS.slice(1)
    .map(([c]) => `i.${c}`)
    .join(', ')}, f.done, CASE WHEN f.done THEN ${UTC_NOW} END
  FROM jsonb_to_recordset($1::jsonb) AS i(ord int, ${COLUMNS.map(([c, type]) => `${c} ${type}`).join(', ')})
  CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM subs) AND NOT EXISTS (
    SELECT 1 FROM subs s WHERE ${patternMatchText('s.patterns', 'i.event_type')}) AS done) f
  ORDER BY i.ord
  RETURNING event_id, processed, NOT processed AND (deliver_at IS NULL OR deliver_at <= now()) AS due
),
notified AS (
  SELECT ${notifyText(t, '$2::text')} FROM (SELECT 1 FROM ins WHERE due LIMIT 1) x
)
SELECT event_id, processed, due::int AS due, (SELECT count(*) FROM notified)::int AS notified FROM ins`;
  return {
    text,
    params: (rows) => {
      // The rows' other fields (`call`, `idempotency_key`) are not read.
      const params: unknown[] = [JSON.stringify(rows)];
      if (t.channel) params.push(t.channel);
      return params;
    },
  };
}
