/**
 * The SQL of every storage operation, one statement each (CTEs chain the
 * steps), so every operation is atomic and costs one round trip.
 *
 * Invariant kept by every statement that adds or removes delivery rows:
 * `events.pending_deliveries` is the number of the event's rows in the
 * deliveries table, and `processed` turns true when it reaches 0. The counter
 * is updated with the event row locked, so two workers finishing the last two
 * deliveries of one event cannot both miss that it is done (a `NOT EXISTS`
 * check could: each would still see the other's row in its snapshot).
 */
import { sql, type SQL } from 'drizzle-orm';
import { EVENT_COLUMNS, patternMatch } from './event-row';
import type { TableNames } from './names';

const UTC_NOW = `(now() AT TIME ZONE 'UTC')`;
const ms = (n: number): SQL => sql`(${n}::float8 * interval '1 millisecond')`;
const json = (value: unknown): SQL => sql`${JSON.stringify(value)}::jsonb`;
const id = (s: string): SQL => sql.raw(s);
/** A uuid[] parameter: `= ANY(...)` on it gives the planner a primary-key index condition whatever its row estimates. */
const uuidArray = (ids: string[]): SQL => sql`${`{${ids.join(',')}}`}::uuid[]`;

/**
 * A CTE that turns off `synchronous_commit` for the statement's own
 * (implicit) transaction: its commit does not wait for the WAL flush. Used
 * for lease bookkeeping only, where losing the last few hundred milliseconds
 * in a database crash means a delivery runs again (at least once), never
 * that anything is lost. Publishing, failures and dead letters stay synchronous.
 */
const ASYNC_COMMIT = `async_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS v)`;
const asyncCommitUsed = `(SELECT count(*) FROM async_commit)`;
const commitMode = (asyncCommit: boolean): SQL =>
  sql.raw(asyncCommit ? ASYNC_COMMIT : `async_commit AS (SELECT 1 AS v)`);

/** `pg_notify` on the storage's channel, or nothing when notifications are off (empty channel). */
function notifyCall(t: TableNames): SQL {
  return t.channel ? sql`pg_notify(${t.channel}, '')` : sql`NULL`;
}

/** One event of an append, as sent to the database. */
export interface AppendRow {
  ord: number;
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

/** Subscribers that count: seen within the time to live. */
function activeSubscribers(t: TableNames, ttlMs: number): SQL {
  return sql`SELECT name, patterns FROM ${id(t.subscribers)} WHERE last_seen_at > now() - ${ms(ttlMs)}`;
}

/** Who claims the new deliveries of an append (see `AppendOptions.claim`). */
export interface AppendClaim {
  owner: string;
  subscribers: { name: string; lim: number }[];
  limit: number;
  leaseMs: number;
}

/**
 * Inserts events and one delivery per matching subscriber; an idempotency key
 * already stored yields the stored event (rows of kind `'e'`). With `claim`,
 * new deliveries due now (without an ordering key, within the limits) are
 * inserted already leased to the claimer (rows of kind `'c'`), which saves
 * the claim round trip. Sends one NOTIFY when due deliveries were left for
 * others. The text of the statement is the same with or without a claim, so
 * one prepared statement serves both.
 */
export function appendStatement(t: TableNames, rows: AppendRow[], ttlMs: number, claim: AppendClaim | null): SQL {
  const keys = [...new Set(rows.map((r) => r.idempotency_key).filter((k): k is string => k !== null))];
  return sql`
WITH input AS (
  SELECT * FROM jsonb_to_recordset(${json(rows)}) AS x(
    ord int, id uuid, event_id text, event_type text, event_version text, actor text, actor_type text,
    organization_id text, payload jsonb, metadata jsonb, created_at timestamp, idempotency_key text,
    ordering_key text, deliver_at timestamptz)
),
req AS (SELECT * FROM jsonb_to_recordset(${json(claim?.subscribers ?? [])}) AS x(name text, lim int)),
subs AS (${activeSubscribers(t, ttlMs)}),
matched AS (
  SELECT i.ord, s.name FROM input i JOIN subs s ON ${patternMatch('s.patterns', 'i.event_type')}
),
fanout AS (SELECT ord, count(*)::int AS n FROM matched GROUP BY ord),
ins AS (
  INSERT INTO ${id(t.events)} (id, event_id, event_type, event_version, actor, actor_type, organization_id, payload,
    metadata, created_at, idempotency_key, ordering_key, deliver_at, pending_deliveries, processed, processed_at)
  SELECT coalesce(i.id, gen_random_uuid()), i.event_id, i.event_type, i.event_version, i.actor, i.actor_type,
    i.organization_id, i.payload, i.metadata, i.created_at, i.idempotency_key, i.ordering_key, i.deliver_at, i.n,
    i.n = 0 AND EXISTS (SELECT 1 FROM subs),
    CASE WHEN i.n = 0 AND EXISTS (SELECT 1 FROM subs) THEN ${id(UTC_NOW)} END
  FROM (SELECT x.*, coalesce(f.n, 0) AS n FROM input x LEFT JOIN fanout f ON f.ord = x.ord) i
  ORDER BY i.ord
  ${keys.length === 0 ? sql`` : sql`ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`}
  RETURNING id, event_id, idempotency_key, ordering_key, deliver_at, pending_deliveries, processed
),
candidates AS (
  SELECT md5(ins.id::text || ':' || m.name)::uuid AS id, ins.id AS event_id, m.name, ins.ordering_key,
    coalesce(ins.deliver_at, now()) AS run_at, i.ord, coalesce(r.lim, 0) AS lim,
    r.name IS NOT NULL AND ins.ordering_key IS NULL AND (ins.deliver_at IS NULL OR ins.deliver_at <= now()) AS eligible
  FROM ins JOIN input i ON i.event_id = ins.event_id JOIN matched m ON m.ord = i.ord LEFT JOIN req r ON r.name = m.name
),
ranked AS (
  SELECT c.*, count(*) FILTER (WHERE c.eligible) OVER (PARTITION BY c.name ORDER BY c.ord ROWS UNBOUNDED PRECEDING) AS sub_rank
  FROM candidates c
),
chosen AS (
  SELECT r.*, r.eligible AND r.sub_rank <= r.lim AND count(*) FILTER (WHERE r.eligible AND r.sub_rank <= r.lim)
    OVER (ORDER BY r.ord, r.name ROWS UNBOUNDED PRECEDING) <= ${claim?.limit ?? 0}::int AS take
  FROM ranked r
),
dels AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, run_at, attempts, lease_owner, lease_token,
    lease_expires_at)
  SELECT c.id, c.event_id, c.name, c.ordering_key, c.run_at, CASE WHEN c.take THEN 1 ELSE 0 END,
    CASE WHEN c.take THEN ${claim?.owner ?? ''}::text END, CASE WHEN c.take THEN gen_random_uuid() END,
    CASE WHEN c.take THEN now() + ${ms(claim?.leaseMs ?? 0)} END
  FROM chosen c
  ORDER BY c.ord, c.name
  RETURNING id, event_id, subscriber, run_at, lease_token, lease_expires_at
),
due AS (
  SELECT event_id, count(*) FILTER (WHERE run_at <= now() AND lease_token IS NULL)::int AS n FROM dels GROUP BY event_id
),
notified AS (
  SELECT ${notifyCall(t)} FROM (SELECT 1 FROM dels WHERE run_at <= now() AND lease_token IS NULL LIMIT 1) x
)
SELECT 'i' AS kind, ins.event_id, ins.idempotency_key, ins.processed, coalesce(due.n, 0) AS due,
  (SELECT count(*) FROM notified)::int AS notified,
  NULL AS event_type, NULL AS event_version, NULL AS actor, NULL AS actor_type, NULL AS organization_id,
  NULL::jsonb AS payload, NULL::jsonb AS metadata, NULL::int AS retry_count, NULL::float8 AS ts,
  NULL::text AS delivery_id, NULL::text AS subscriber, NULL::text AS lease_token, NULL::float8 AS lease_expires_ms
FROM ins LEFT JOIN due ON due.event_id = ins.id
UNION ALL
SELECT 'c', ins.event_id, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  d.id::text, d.subscriber, d.lease_token::text, round(extract(epoch from d.lease_expires_at) * 1000)::float8
FROM dels d JOIN ins ON ins.id = d.event_id
WHERE d.lease_token IS NOT NULL${keys.length === 0 ? sql`` : existingByKey(t, keys)}`;
}

/** The union branch of {@link appendStatement} that returns events already stored under the batch's idempotency keys. */
function existingByKey(t: TableNames, keys: string[]): SQL {
  return sql`
UNION ALL
SELECT 'e', e.event_id, e.idempotency_key, e.processed, 0, 0, e.event_type, e.event_version, e.actor, e.actor_type,
  e.organization_id, e.payload, e.metadata, e.retry_count, round(extract(epoch from e.created_at) * 1000)::float8,
  NULL, NULL, NULL, NULL
FROM ${id(t.events)} e
WHERE e.idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(${json(keys)})))`;
}

/** Stored events with these idempotency keys. */
export function eventsByIdempotencyKey(t: TableNames, keys: string[]): SQL {
  return sql`SELECT e.idempotency_key, ${EVENT_COLUMNS} FROM ${id(t.events)} e
WHERE e.idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(${json(keys)})))`;
}

/**
 * Adds the deliveries in CTE `dels` (which must return `event_id`) to their
 * events' counters and reopens the events.
 */
function reopenEvents(t: TableNames): string {
  return `counts AS (SELECT event_id, count(*)::int AS n FROM dels GROUP BY event_id),
locked AS (SELECT e.id FROM ${t.events} e WHERE e.id IN (SELECT event_id FROM counts) ORDER BY e.id FOR UPDATE),
reopened AS (
  UPDATE ${t.events} e SET pending_deliveries = e.pending_deliveries + c.n, processed = false, processed_at = NULL
  FROM counts c WHERE e.id = c.event_id AND e.id IN (SELECT id FROM locked) RETURNING e.id
)`;
}

/**
 * Subtracts the rows of CTE `gone` (which must return `event_id`) from their
 * events' counters; an event left with none is processed. `extra` adds SET
 * clauses (retry count and last error of a dead letter).
 */
function settleEvents(t: TableNames, extra = ''): string {
  return `counts AS (SELECT event_id, count(*)::int AS n FROM gone GROUP BY event_id),
locked AS (SELECT e.id FROM ${t.events} e WHERE e.id IN (SELECT event_id FROM counts) ORDER BY e.id FOR UPDATE),
settled AS (
  UPDATE ${t.events} e SET pending_deliveries = greatest(e.pending_deliveries - c.n, 0),
    processed = e.pending_deliveries - c.n <= 0,
    processed_at = CASE WHEN e.pending_deliveries - c.n <= 0 THEN ${UTC_NOW} ELSE e.processed_at END${extra}
  FROM counts c WHERE e.id = c.event_id AND e.id IN (SELECT id FROM locked) RETURNING e.id
)`;
}

/**
 * Upserts subscribers (a heartbeat for known names). A name that is new, or
 * had stopped counting, receives the matching unprocessed events; events
 * parked while no subscriber counted are handed to the matching subscribers,
 * or processed if none matches.
 */
export function registerStatement(t: TableNames, subs: { name: string; patterns: string[] }[], ttlMs: number): SQL {
  return sql`
WITH input AS (SELECT * FROM jsonb_to_recordset(${json(subs)}) AS x(name text, patterns text[])),
known AS (
  SELECT name FROM ${id(t.subscribers)}
  WHERE name IN (SELECT name FROM input) AND last_seen_at > now() - ${ms(ttlMs)}
),
up AS (
  INSERT INTO ${id(t.subscribers)} (name, patterns, last_seen_at)
  SELECT name, patterns, now() FROM input
  ON CONFLICT (name) DO UPDATE SET patterns = excluded.patterns, last_seen_at = now()
  RETURNING name, patterns
),
fresh AS (SELECT name, patterns FROM up WHERE name NOT IN (SELECT name FROM known)),
active AS (
  SELECT name, patterns FROM (${activeSubscribers(t, ttlMs)}) a WHERE name NOT IN (SELECT name FROM up)
  UNION ALL SELECT name, patterns FROM up
),
targets AS (
  SELECT e.id, e.ordering_key, e.deliver_at, e.created_at, s.name FROM ${id(t.events)} e
  JOIN fresh s ON ${patternMatch('s.patterns', 'e.event_type')} WHERE NOT e.processed
  UNION
  SELECT e.id, e.ordering_key, e.deliver_at, e.created_at, s.name FROM ${id(t.events)} e
  JOIN active s ON ${patternMatch('s.patterns', 'e.event_type')} WHERE NOT e.processed AND e.pending_deliveries = 0
),
dels AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, run_at)
  SELECT md5(id::text || ':' || name)::uuid, id, name, ordering_key, coalesce(deliver_at, now())
  FROM targets ORDER BY created_at, id, name
  ON CONFLICT (id) DO NOTHING
  RETURNING event_id
),
${id(reopenEvents(t))},
parked AS (
  UPDATE ${id(t.events)} e SET processed = true, processed_at = ${id(UTC_NOW)}
  WHERE NOT e.processed AND e.pending_deliveries = 0 AND e.id NOT IN (SELECT event_id FROM counts)
  RETURNING e.id
)
SELECT (SELECT count(*) FROM dels)::int AS created, (SELECT count(*) FROM reopened)::int AS reopened,
  (SELECT count(*) FROM parked)::int AS parked,
  (SELECT count(*) FROM (SELECT ${notifyCall(t)} FROM (SELECT 1 FROM dels LIMIT 1) x) n)::int AS notified`;
}

/** Forgets a subscriber and drops its unfinished deliveries. */
export function retireStatement(t: TableNames, name: string): SQL {
  return sql`
WITH sub AS (DELETE FROM ${id(t.subscribers)} WHERE name = ${name} RETURNING name),
gone AS (DELETE FROM ${id(t.deliveries)} WHERE subscriber = ${name} RETURNING event_id),
${id(settleEvents(t))}
SELECT (SELECT count(*) FROM gone)::int AS dropped, (SELECT count(*) FROM settled)::int AS settled,
  (SELECT count(*) FROM sub)::int AS retired`;
}

/**
 * Claims due, unleased (or lease-expired) deliveries, oldest first, within each
 * subscriber's limit, skipping rows other claimers hold and deliveries that
 * wait behind an earlier one of their ordering key.
 *
 * One branch per subscriber, each with its own `LIMIT` parameter: the planner
 * then sees the real limits and plans an ordered index scan of a few rows
 * (with a limit taken from a column it assumes thousands of rows, and the
 * cost crosses `jit_above_cost`: JIT compilation alone took 200 ms a claim).
 */
export function claimStatement(
  t: TableNames,
  owner: string,
  subscribers: { name: string; lim: number }[],
  limit: number,
  leaseMs: number,
  asyncCommit: boolean,
): SQL {
  const branches = subscribers.map(
    // Each branch is a sub-select: FOR UPDATE is not allowed directly in a UNION.
    (s) => sql`SELECT * FROM (SELECT d.id, d.run_at, d.seq FROM ${id(t.deliveries)} d
    WHERE d.subscriber = ${s.name} AND d.run_at <= now()
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
      AND (d.ordering_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM ${id(t.deliveries)} o
        WHERE o.subscriber = d.subscriber AND o.ordering_key = d.ordering_key AND o.seq < d.seq))
    ORDER BY d.run_at, d.seq
    LIMIT ${s.lim}::int
    FOR UPDATE SKIP LOCKED) b`,
  );
  return sql`
WITH ${commitMode(asyncCommit)},
cand AS (
  SELECT c.id, c.run_at, c.seq FROM (${sql.join(branches, sql` UNION ALL `)}) c
  ORDER BY c.run_at, c.seq
  LIMIT ${limit}::int
),
claimed AS (
  UPDATE ${id(t.deliveries)} d SET lease_owner = ${owner}, lease_token = gen_random_uuid(),
    lease_expires_at = now() + ${ms(leaseMs)}, attempts = d.attempts + 1
  FROM cand WHERE d.id = cand.id
  RETURNING d.id, d.event_id, d.subscriber, d.lease_token, d.attempts, d.lease_expires_at, d.run_at, d.seq
)
SELECT cl.id, cl.subscriber, cl.lease_token, cl.attempts,
  round(extract(epoch from cl.lease_expires_at) * 1000)::float8 AS lease_expires_ms, ${EVENT_COLUMNS},
  ${id(asyncCommitUsed)} AS async_commit
FROM claimed cl JOIN ${id(t.events)} e ON e.id = cl.event_id
ORDER BY cl.run_at, cl.seq`;
}

/** Extends the leases still held; returns their ids. */
export function extendStatement(
  t: TableNames,
  leases: { id: string; token: string }[],
  leaseMs: number,
  asyncCommit: boolean,
): SQL {
  return sql`
WITH ${commitMode(asyncCommit)}
UPDATE ${id(t.deliveries)} d SET lease_expires_at = now() + ${ms(leaseMs)}
FROM jsonb_to_recordset(${json(leases)}) AS l(id uuid, token uuid), async_commit
WHERE d.id = ANY(${uuidArray(leases.map((x) => x.id))}) AND d.id = l.id AND d.lease_token = l.token
RETURNING d.id`;
}

/** Deletes completed deliveries (current lease only) and settles their events; returns the ids completed. */
export function completeStatement(t: TableNames, leases: { id: string; token: string }[], asyncCommit: boolean): SQL {
  return sql`
WITH ${commitMode(asyncCommit)},
l AS (SELECT * FROM jsonb_to_recordset(${json(leases)}) AS x(id uuid, token uuid)),
gone AS (
  DELETE FROM ${id(t.deliveries)} d USING l
  WHERE d.id = ANY(${uuidArray(leases.map((x) => x.id))}) AND d.id = l.id AND d.lease_token = l.token
  RETURNING d.id, d.event_id
),
${id(settleEvents(t))}
SELECT gone.id, (SELECT count(*) FROM settled)::int AS settled, ${id(asyncCommitUsed)} AS async_commit FROM gone`;
}

/** Schedules the next attempt of a failed delivery. */
export function retryStatement(
  t: TableNames,
  lease: { id: string; token: string },
  retryAt: Date,
  error: unknown,
  lastError: string,
): SQL {
  return sql`
WITH upd AS (
  UPDATE ${id(t.deliveries)} SET run_at = ${retryAt.toISOString()}::timestamptz, lease_owner = NULL,
    lease_token = NULL, lease_expires_at = NULL, last_error = ${json(error)}
  WHERE id = ${lease.id}::uuid AND lease_token = ${lease.token}::uuid
  RETURNING event_id
),
ev AS (
  UPDATE ${id(t.events)} e SET retry_count = e.retry_count + 1, last_error = ${lastError}
  FROM upd WHERE e.id = upd.event_id RETURNING e.id
)
SELECT (SELECT count(*) FROM upd)::int AS n, (SELECT count(*) FROM ev)::int AS ev`;
}

/** Moves a failed delivery to the dead letters and settles its event. */
export function deadLetterStatement(
  t: TableNames,
  lease: { id: string; token: string },
  error: unknown,
  lastError: string,
): SQL {
  const extra = `, retry_count = e.retry_count + 1, last_error = (SELECT message FROM msg)`;
  return sql`
WITH msg AS (SELECT ${lastError}::text AS message),
gone AS (
  DELETE FROM ${id(t.deliveries)} WHERE id = ${lease.id}::uuid AND lease_token = ${lease.token}::uuid
  RETURNING id, event_id, subscriber, ordering_key, attempts
),
dl AS (
  INSERT INTO ${id(t.deadLetters)} (id, event_id, subscriber, ordering_key, attempts, error, failed_at)
  SELECT id, event_id, subscriber, ordering_key, attempts, ${json(error)}, now() FROM gone
  ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, failed_at = excluded.failed_at
  RETURNING id
),
${id(settleEvents(t, extra))}
SELECT (SELECT count(*) FROM gone)::int AS n, (SELECT count(*) FROM dl)::int AS dl, (SELECT count(*) FROM settled)::int AS s`;
}

/** Gives a claimed delivery back unrun, without spending its attempt. */
export function releaseStatement(t: TableNames, lease: { id: string; token: string }, asyncCommit: boolean): SQL {
  return sql`
WITH ${commitMode(asyncCommit)}
UPDATE ${id(t.deliveries)} SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
  attempts = greatest(attempts - 1, 0)
FROM async_commit
WHERE id = ${lease.id}::uuid AND lease_token = ${lease.token}::uuid
RETURNING id`;
}

/** A delivery that waits behind an earlier one of its ordering key (alias `d`). */
function blocked(t: TableNames): string {
  return `(d.ordering_key IS NOT NULL AND EXISTS (SELECT 1 FROM ${t.deliveries} o
    WHERE o.subscriber = d.subscriber AND o.ordering_key = d.ordering_key AND o.seq < d.seq))`;
}

/**
 * Earliest time one of these subscribers' deliveries becomes claimable: the
 * first unleased one's due time, or the end of a running lease (leases sit
 * near the front of each subscriber's index, so only its first rows are read).
 */
export function nextDueStatement(t: TableNames, names: string[]): SQL {
  return sql`
SELECT round(extract(epoch from min(x.at)) * 1000)::float8 AS at
FROM jsonb_array_elements_text(${json(names)}) AS s(name)
CROSS JOIN LATERAL (
  SELECT (SELECT d.run_at FROM ${id(t.deliveries)} d
    WHERE d.subscriber = s.name AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
      AND NOT ${id(blocked(t))}
    ORDER BY d.run_at, d.seq LIMIT 1) AS at
  UNION ALL
  SELECT min(f.lease_expires_at) FROM (
    SELECT d.lease_expires_at FROM ${id(t.deliveries)} d WHERE d.subscriber = s.name
    ORDER BY d.run_at, d.seq LIMIT 1000) f
  WHERE f.lease_expires_at >= now()
) x`;
}

/** Counts unfinished deliveries; one blocked behind its ordering key counts as the one it waits for. */
export function backlogStatement(t: TableNames, names: string[]): SQL {
  return sql`
WITH d AS (
  SELECT d.subscriber, d.ordering_key, d.run_at, d.attempts, d.seq,
    (d.lease_expires_at IS NOT NULL AND d.lease_expires_at >= now()) AS leased
  FROM ${id(t.deliveries)} d WHERE d.subscriber IN (SELECT jsonb_array_elements_text(${json(names)}))
),
h AS (
  SELECT CASE WHEN ordering_key IS NULL THEN leased ELSE first_value(leased) OVER w END AS leased,
    CASE WHEN ordering_key IS NULL THEN run_at ELSE first_value(run_at) OVER w END AS run_at,
    CASE WHEN ordering_key IS NULL THEN attempts ELSE first_value(attempts) OVER w END AS attempts
  FROM d WINDOW w AS (PARTITION BY subscriber, ordering_key ORDER BY seq)
)
SELECT
  count(*) FILTER (WHERE leased)::float8 AS leased,
  count(*) FILTER (WHERE NOT leased AND run_at <= now())::float8 AS due,
  count(*) FILTER (WHERE NOT leased AND run_at > now() AND attempts > 0)::float8 AS retrying,
  count(*) FILTER (WHERE NOT leased AND run_at > now() AND attempts = 0)::float8 AS scheduled
FROM h`;
}

/** Filters shared by timeline and replay, on alias `e`. */
export interface EventFilter {
  actor?: string;
  organizationId?: string;
  eventTypes?: readonly string[];
  from?: Date;
  to?: Date;
}

function eventWhere(f: EventFilter): SQL {
  const parts: SQL[] = [sql`true`];
  if (f.actor !== undefined) parts.push(sql`e.actor = ${f.actor}`);
  if (f.organizationId !== undefined) parts.push(sql`e.organization_id = ${f.organizationId}`);
  if (f.eventTypes && f.eventTypes.length > 0) {
    parts.push(sql`e.event_type IN (SELECT jsonb_array_elements_text(${json(f.eventTypes)}))`);
  }
  if (f.from) parts.push(sql`e.created_at >= (${f.from.toISOString()}::timestamptz AT TIME ZONE 'UTC')`);
  if (f.to) parts.push(sql`e.created_at < (${f.to.toISOString()}::timestamptz AT TIME ZONE 'UTC')`);
  return sql.join(parts, sql` AND `);
}

/** One page of events, newest first, after the keyset position `(createdAt, id)` when given. */
export function timelineStatement(
  t: TableNames,
  f: EventFilter,
  limit: number,
  after: { createdAt: string; id: string } | null,
): SQL {
  const keyset = after
    ? sql` AND e.created_at <= ${after.createdAt}::timestamp
        AND (e.created_at < ${after.createdAt}::timestamp OR e.id < ${after.id}::uuid)`
    : sql``;
  return sql`
SELECT e.id, e.created_at::text AS created_text, ${EVENT_COLUMNS}
FROM ${id(t.events)} e
WHERE ${eventWhere(f)}${keyset}
ORDER BY e.created_at DESC, e.id DESC
LIMIT ${limit + 1}::int`;
}

/** Makes matching events due again for the chosen (registered) subscribers whose patterns match. */
export function replayStatement(
  t: TableNames,
  f: EventFilter,
  subscribers: readonly string[] | undefined,
  ttlMs: number,
): SQL {
  const subs = subscribers
    ? sql`SELECT name, patterns FROM ${id(t.subscribers)} WHERE name IN (SELECT jsonb_array_elements_text(${json(
        subscribers,
      )}))`
    : activeSubscribers(t, ttlMs);
  return sql`
WITH subs AS (${subs}),
targets AS (
  SELECT e.id, e.ordering_key, e.created_at, s.name, md5(e.id::text || ':' || s.name)::uuid AS delivery_id
  FROM ${id(t.events)} e JOIN subs s ON ${patternMatch('s.patterns', 'e.event_type')}
  WHERE ${eventWhere(f)}
),
dels AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, run_at)
  SELECT delivery_id, id, name, ordering_key, now() FROM targets ORDER BY created_at, id, name
  ON CONFLICT (id) DO NOTHING
  RETURNING id, event_id
),
dropped AS (DELETE FROM ${id(t.deadLetters)} WHERE id IN (SELECT id FROM dels) RETURNING id),
${id(reopenEvents(t))}
SELECT (SELECT count(*) FROM dels)::int AS scheduled, (SELECT count(*) FROM dropped)::int AS dropped,
  (SELECT count(*) FROM reopened)::int AS reopened,
  (SELECT count(*) FROM (SELECT ${notifyCall(t)} FROM (SELECT 1 FROM dels LIMIT 1) x) n)::int AS notified`;
}

/** Filter of dead letters, on aliases `dl` and `e`. */
export interface DeadLetterWhere {
  id?: string;
  subscriber?: string;
  eventType?: string;
  eventId?: string;
}

function deadLetterWhere(f: DeadLetterWhere): SQL {
  const parts: SQL[] = [sql`true`];
  if (f.id !== undefined) parts.push(sql`dl.id = ${f.id}::uuid`);
  if (f.subscriber !== undefined) parts.push(sql`dl.subscriber = ${f.subscriber}`);
  if (f.eventType !== undefined) parts.push(sql`e.event_type = ${f.eventType}`);
  if (f.eventId !== undefined) parts.push(sql`e.event_id = ${f.eventId}`);
  return sql.join(parts, sql` AND `);
}

/** Dead letters with their events, oldest failure first. */
export function listDeadLettersStatement(t: TableNames, f: DeadLetterWhere, limit: number): SQL {
  return sql`
SELECT dl.id AS dl_id, dl.subscriber, dl.attempts, dl.error,
  round(extract(epoch from dl.failed_at) * 1000)::float8 AS failed_ms, ${EVENT_COLUMNS}
FROM ${id(t.deadLetters)} dl JOIN ${id(t.events)} e ON e.id = dl.event_id
WHERE ${deadLetterWhere(f)}
ORDER BY dl.failed_at, dl.id
LIMIT ${limit}::int`;
}

/** Moves dead letters of registered subscribers back to due deliveries with fresh attempts. */
export function redriveStatement(t: TableNames, f: DeadLetterWhere, limit: number | null): SQL {
  return sql`
WITH chosen AS (
  SELECT dl.id FROM ${id(t.deadLetters)} dl JOIN ${id(t.events)} e ON e.id = dl.event_id
  WHERE ${deadLetterWhere(f)} AND EXISTS (SELECT 1 FROM ${id(t.subscribers)} s WHERE s.name = dl.subscriber)
  ORDER BY dl.failed_at, dl.id
  ${limit === null ? sql`` : sql`LIMIT ${limit}::int`}
  FOR UPDATE OF dl SKIP LOCKED
),
moved AS (DELETE FROM ${id(t.deadLetters)} dl USING chosen c WHERE dl.id = c.id RETURNING dl.*),
dels AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, run_at)
  SELECT id, event_id, subscriber, ordering_key, now() FROM moved ORDER BY failed_at, id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, event_id
),
${id(reopenEvents(t))}
SELECT (SELECT count(*) FROM moved)::int AS redriven, (SELECT count(*) FROM reopened)::int AS reopened,
  (SELECT count(*) FROM (SELECT ${notifyCall(t)} FROM (SELECT 1 FROM dels LIMIT 1) x) n)::int AS notified`;
}

/** Deletes one dead letter. */
export function discardStatement(t: TableNames, deadLetterId: string): SQL {
  return sql`DELETE FROM ${id(t.deadLetters)} WHERE id = ${deadLetterId}::uuid RETURNING id`;
}

/** The numbers behind `health()`: the seed's unprocessed count, dead letters, and the oldest due event's age. */
export function healthStatement(t: TableNames): SQL {
  return sql`
SELECT (SELECT count(*) FROM ${id(t.events)} WHERE NOT processed)::float8 AS unprocessed,
  (SELECT count(*) FROM ${id(t.deadLetters)})::float8 AS dead_letters,
  (SELECT round(extract(epoch from (${id(UTC_NOW)} - min(created_at))) * 1000)::float8 FROM ${id(t.events)}
    WHERE NOT processed AND (deliver_at IS NULL OR deliver_at <= now())) AS oldest_ms`;
}

/**
 * Deletes up to `batch` processed events created before `before` that nothing
 * refers to (no delivery, no dead letter).
 */
export function purgeStatement(t: TableNames, before: Date, batch: number): SQL {
  return sql`
WITH victims AS (
  SELECT e.id FROM ${id(t.events)} e
  WHERE e.processed AND e.created_at < (${before.toISOString()}::timestamptz AT TIME ZONE 'UTC')
    AND e.pending_deliveries = 0
    AND NOT EXISTS (SELECT 1 FROM ${id(t.deadLetters)} dl WHERE dl.event_id = e.id)
  ORDER BY e.processed, e.created_at
  LIMIT ${batch}::int
  FOR UPDATE SKIP LOCKED
)
DELETE FROM ${id(t.events)} e USING victims v WHERE e.id = v.id AND e.processed AND e.pending_deliveries = 0
RETURNING e.id`;
}
