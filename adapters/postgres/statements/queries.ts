/**
 * Reading and repairing: due times and backlog for the dispatcher, the
 * timeline, replay, dead letters, health and retention.
 */
import { sql, type SQL } from 'drizzle-orm';
import { EVENT_COLUMNS, patternMatch, patternMatchText } from '../event-row';
import type { TableNames } from '../names';
import { keyBlocked } from './claim';
import {
  activeSubscribers,
  id,
  json,
  ms,
  notifyCall,
  passedText,
  processedExpr,
  settledHorizon,
  UTC_NOW,
  VISIBLE_HORIZON,
} from './common';

/** These subscribers with their heads (CTE body). */
function named(t: TableNames, names: string[]): SQL {
  return sql`SELECT name, patterns, head_tx, head_pos FROM ${id(t.subscribers)}
  WHERE name IN (SELECT jsonb_array_elements_text(${json(names)}))`;
}

/**
 * The events after subscriber `s`'s head that its patterns match, oldest
 * first (a LATERAL body): only those below the visible horizon (readable now)
 * with `readable`, else every committed one (due, if not readable yet).
 */
function afterHead(t: TableNames, limit: number | null, readable: boolean): SQL {
  return sql`SELECT e.deliver_at FROM ${id(t.events)} e
    WHERE (e.tx_id, e.position) > (s.head_tx, s.head_pos) AND ${patternMatch('s.patterns', 'e.event_type')}
      ${readable ? sql`AND e.tx_id < (SELECT xmin FROM hz)` : sql``}
    ${limit === null ? sql`` : sql`ORDER BY e.tx_id, e.position LIMIT ${limit}::int`}`;
}

/**
 * Earliest time one of these subscribers has something to claim: the first
 * unleased delivery row's due time, the end of a running lease (row or
 * range), or the first readable event after its head.
 */
export function nextDueStatement(t: TableNames, names: string[]): SQL {
  return sql`
WITH subs AS (${named(t, names)}),
hz AS (SELECT ${VISIBLE_HORIZON} AS xmin)
SELECT round(extract(epoch from min(x.at)) * 1000)::float8 AS at FROM (
  SELECT (SELECT d.run_at FROM ${id(t.deliveries)} d
    WHERE d.subscriber = s.name AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now()) AND NOT ${id(keyBlocked(t))}
    ORDER BY d.run_at, d.pos_tx, d.pos LIMIT 1) AS at FROM subs s
  UNION ALL
  SELECT min(d.lease_expires_at) FROM ${id(t.deliveries)} d
  WHERE d.subscriber IN (SELECT name FROM subs) AND d.lease_expires_at >= now()
  UNION ALL
  SELECT min(r.lease_expires_at) FROM ${id(t.ranges)} r WHERE r.subscriber IN (SELECT name FROM subs)
  UNION ALL
  SELECT min(greatest(coalesce(l.deliver_at, now()), now())) FROM subs s CROSS JOIN LATERAL (${afterHead(t, 1000, true)}) l
) x`;
}

/**
 * For a delivery row `d` whose ordering key an unsettled event of one of its
 * subscriber's ranges holds: whether that range's lease still runs (`false`:
 * it ran out, so its events are due again). `NULL` when no range holds the key.
 * That event is the one the row waits for, so the row counts as it does; read
 * as due, it would have an idle bus claim again and again for a row no claim
 * can hand out.
 */
function keyHeldByRange(t: TableNames): string {
  return `(SELECT bool_or(r.lease_expires_at >= now()) FROM ${t.ranges} r, unnest(r.keyed, r.keys) AS k(p, key)
    WHERE r.subscriber = d.subscriber AND k.key = d.ordering_key AND NOT k.p = ANY(r.done))`;
}

/**
 * Counts these subscribers' unfinished work: delivery rows by state (one
 * blocked behind its ordering key counts as the one it waits for, a row or an
 * event of a range), events of ranges (leased, or due again once the lease
 * ran out) and committed events after the head (due, or scheduled for a
 * later `deliverAt`), including those still behind an older transaction:
 * they are due, only not readable yet.
 */
export function backlogStatement(t: TableNames, names: string[]): SQL {
  return sql`
WITH subs AS (${named(t, names)}),
d AS (
  SELECT d.subscriber, d.ordering_key, d.run_at, d.attempts, d.pos_tx, d.pos,
    (d.lease_expires_at IS NOT NULL AND d.lease_expires_at >= now()) AS leased, ${id(keyHeldByRange(t))} AS held
  FROM ${id(t.deliveries)} d WHERE d.subscriber IN (SELECT name FROM subs)
),
h AS (
  SELECT CASE WHEN ordering_key IS NULL THEN leased WHEN held IS NOT NULL THEN held ELSE first_value(leased) OVER w END AS leased,
    CASE WHEN ordering_key IS NULL THEN run_at WHEN held IS NOT NULL THEN now() ELSE first_value(run_at) OVER w END AS run_at,
    CASE WHEN ordering_key IS NULL THEN attempts ELSE first_value(attempts) OVER w END AS attempts
  FROM d WINDOW w AS (PARTITION BY subscriber, ordering_key ORDER BY pos_tx, pos)
),
rows AS (
  SELECT count(*) FILTER (WHERE leased) AS leased,
    count(*) FILTER (WHERE NOT leased AND run_at <= now()) AS due,
    count(*) FILTER (WHERE NOT leased AND run_at > now() AND attempts > 0) AS retrying,
    count(*) FILTER (WHERE NOT leased AND run_at > now() AND attempts = 0) AS scheduled
  FROM h
),
ranged AS (
  SELECT count(*) FILTER (WHERE r.lease_expires_at >= now()) AS leased,
    count(*) FILTER (WHERE r.lease_expires_at < now()) AS due
  FROM ${id(t.ranges)} r CROSS JOIN LATERAL unnest(r.members) m
  WHERE r.subscriber IN (SELECT name FROM subs) AND NOT m = ANY(r.done)
),
logged AS (
  SELECT count(*) FILTER (WHERE l.deliver_at IS NULL OR l.deliver_at <= now()) AS due,
    count(*) FILTER (WHERE l.deliver_at > now()) AS scheduled
  FROM subs s CROSS JOIN LATERAL (${afterHead(t, null, false)}) l
)
SELECT (rows.leased + ranged.leased)::float8 AS leased, (rows.due + ranged.due + logged.due)::float8 AS due,
  rows.retrying::float8 AS retrying, (rows.scheduled + logged.scheduled)::float8 AS scheduled
FROM rows, ranged, logged`;
}

/**
 * {@link backlogStatement}'s counts per subscriber (every registered one when
 * `names` is `null`), with the age of each one's oldest due or running event
 * (from its `created_at`) and its last heartbeat. Ordered by name, bytewise.
 */
export function backlogBySubscriberStatement(t: TableNames, names: string[] | null): SQL {
  const subs =
    names === null
      ? sql`SELECT name, patterns, head_tx, head_pos, last_seen_at FROM ${id(t.subscribers)}`
      : sql`SELECT name, patterns, head_tx, head_pos, last_seen_at FROM ${id(t.subscribers)}
  WHERE name IN (SELECT jsonb_array_elements_text(${json(names)}))`;
  return sql`
WITH subs AS (${subs}),
hz AS (SELECT ${VISIBLE_HORIZON} AS xmin),
d AS (
  SELECT d.subscriber, d.event_id, d.ordering_key, d.run_at, d.attempts, d.pos_tx, d.pos,
    (d.lease_expires_at IS NOT NULL AND d.lease_expires_at >= now()) AS leased, ${id(keyHeldByRange(t))} AS held
  FROM ${id(t.deliveries)} d WHERE d.subscriber IN (SELECT name FROM subs)
),
h AS (
  SELECT subscriber, event_id, (leased OR run_at <= now()) AS pending,
    CASE WHEN ordering_key IS NULL THEN leased WHEN held IS NOT NULL THEN held ELSE first_value(leased) OVER w END AS leased,
    CASE WHEN ordering_key IS NULL THEN run_at WHEN held IS NOT NULL THEN now() ELSE first_value(run_at) OVER w END AS run_at,
    CASE WHEN ordering_key IS NULL THEN attempts ELSE first_value(attempts) OVER w END AS attempts
  FROM d WINDOW w AS (PARTITION BY subscriber, ordering_key ORDER BY pos_tx, pos)
),
rows AS (
  SELECT h.subscriber, count(*) FILTER (WHERE h.leased) AS leased,
    count(*) FILTER (WHERE NOT h.leased AND h.run_at <= now()) AS due,
    count(*) FILTER (WHERE NOT h.leased AND h.run_at > now() AND h.attempts > 0) AS retrying,
    count(*) FILTER (WHERE NOT h.leased AND h.run_at > now() AND h.attempts = 0) AS scheduled,
    min(e.created_at) FILTER (WHERE h.pending) AS oldest
  FROM h JOIN ${id(t.events)} e ON e.id = h.event_id GROUP BY h.subscriber
),
ranged AS (
  SELECT r.subscriber,
    sum(o.open) FILTER (WHERE r.lease_expires_at >= now()) AS leased,
    sum(o.open) FILTER (WHERE r.lease_expires_at < now()) AS due,
    min(o.oldest) AS oldest
  FROM ${id(t.ranges)} r CROSS JOIN LATERAL (
    SELECT count(*) AS open, min(e.created_at) AS oldest FROM ${id(t.events)} e
    WHERE (e.tx_id, e.position) >= (r.lo_tx, r.lo_pos) AND (e.tx_id, e.position) <= (r.hi_tx, r.hi_pos)
      AND e.position = ANY(r.members) AND NOT e.position = ANY(r.done)
  ) o
  WHERE r.subscriber IN (SELECT name FROM subs) GROUP BY r.subscriber
),
logged AS (
  SELECT s.name AS subscriber,
    count(*) FILTER (WHERE l.deliver_at IS NULL OR l.deliver_at <= now()) AS due,
    count(*) FILTER (WHERE l.deliver_at > now()) AS scheduled,
    min(l.created_at) FILTER (WHERE l.deliver_at IS NULL OR l.deliver_at <= now()) AS oldest
  FROM subs s CROSS JOIN LATERAL (
    SELECT e.deliver_at, e.created_at FROM ${id(t.events)} e
    WHERE (e.tx_id, e.position) > (s.head_tx, s.head_pos) AND ${patternMatch('s.patterns', 'e.event_type')}
      AND e.tx_id < (SELECT xmin FROM hz)
  ) l
  GROUP BY s.name
)
SELECT s.name AS subscriber,
  (coalesce(rows.leased, 0) + coalesce(ranged.leased, 0))::float8 AS leased,
  (coalesce(rows.due, 0) + coalesce(ranged.due, 0) + coalesce(logged.due, 0))::float8 AS due,
  coalesce(rows.retrying, 0)::float8 AS retrying,
  (coalesce(rows.scheduled, 0) + coalesce(logged.scheduled, 0))::float8 AS scheduled,
  round(extract(epoch from (${id(UTC_NOW)} - least(rows.oldest, ranged.oldest, logged.oldest))) * 1000)::float8 AS oldest_ms,
  round(extract(epoch from s.last_seen_at) * 1000)::float8 AS last_seen_ms
FROM subs s
LEFT JOIN rows ON rows.subscriber = s.name
LEFT JOIN ranged ON ranged.subscriber = s.name
LEFT JOIN logged ON logged.subscriber = s.name
ORDER BY s.name COLLATE "C"`;
}

/** Filters shared by timeline and replay, on alias `e`. */
export interface EventFilter {
  actor?: string;
  organizationId?: string;
  eventTypes?: readonly string[];
  /** A tenant boundary (see `TimelineScope`). */
  scope?: { organizationIds: readonly string[]; actor?: string };
  from?: Date;
  to?: Date;
}

function eventWhere(f: EventFilter): SQL {
  const parts: SQL[] = [sql`true`];
  if (f.actor !== undefined) parts.push(sql`e.actor = ${f.actor}`);
  if (f.organizationId !== undefined) parts.push(sql`e.organization_id = ${f.organizationId}`);
  if (f.scope) {
    const orgs = sql`e.organization_id IN (SELECT jsonb_array_elements_text(${json(f.scope.organizationIds)}))`;
    parts.push(
      f.scope.actor === undefined
        ? orgs
        : sql`(${orgs} OR (e.organization_id IS NULL AND e.actor = ${f.scope.actor}))`,
    );
  }
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
  ttlMs: number,
): SQL {
  const keyset = after
    ? sql` AND e.created_at <= ${after.createdAt}::timestamp
        AND (e.created_at < ${after.createdAt}::timestamp OR e.id < ${after.id}::uuid)`
    : sql``;
  return sql`
WITH act AS (${activeSubscribers(t, ttlMs)}),
page AS (
  SELECT e.* FROM ${id(t.events)} e
  WHERE ${eventWhere(f)}${keyset}
  ORDER BY e.created_at DESC, e.id DESC
  LIMIT ${limit + 1}::int
)
SELECT e.id, e.created_at::text AS created_text, ${EVENT_COLUMNS}, ${processedExpr(t)} AS processed
FROM page e
ORDER BY e.created_at DESC, e.id DESC`;
}

/** Makes matching events due again for the chosen (registered) subscribers whose patterns match. */
export function replayStatement(
  t: TableNames,
  f: EventFilter,
  subscribers: readonly string[] | undefined,
  ttlMs: number,
): SQL {
  const subs = subscribers ? named(t, [...subscribers]) : activeSubscribers(t, ttlMs);
  // Only what a subscriber's head has passed: later events reach it through the log anyway.
  return sql`
WITH subs AS (${subs}),
targets AS (
  SELECT e.id, e.ordering_key, e.tx_id, e.position, s.name, md5(e.id::text || ':' || s.name)::uuid AS delivery_id
  FROM ${id(t.events)} e JOIN subs s ON ${patternMatch('s.patterns', 'e.event_type')}
  WHERE ${eventWhere(f)} AND (e.tx_id, e.position) <= (s.head_tx, s.head_pos)
),
dels AS (
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, pos_tx, pos, run_at)
  SELECT delivery_id, id, name, ordering_key, tx_id, position, now() FROM targets ORDER BY tx_id, position, name
  ON CONFLICT (id) DO NOTHING
  RETURNING id
),
dropped AS (DELETE FROM ${id(t.deadLetters)} WHERE id IN (SELECT id FROM dels) RETURNING id)
SELECT (SELECT count(*) FROM dels)::int AS scheduled, (SELECT count(*) FROM dropped)::int AS dropped,
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
  INSERT INTO ${id(t.deliveries)} (id, event_id, subscriber, ordering_key, pos_tx, pos, run_at)
  SELECT m.id, m.event_id, m.subscriber, m.ordering_key, e.tx_id, e.position, now()
  FROM moved m JOIN ${id(t.events)} e ON e.id = m.event_id ORDER BY e.tx_id, e.position
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
SELECT (SELECT count(*) FROM moved)::int AS redriven,
  (SELECT count(*) FROM (SELECT ${notifyCall(t)} FROM (SELECT 1 FROM dels LIMIT 1) x) n)::int AS notified`;
}

/** Deletes one dead letter. */
export function discardStatement(t: TableNames, deadLetterId: string): SQL {
  return sql`DELETE FROM ${id(t.deadLetters)} WHERE id = ${deadLetterId}::uuid RETURNING id`;
}

/**
 * The numbers behind `health()`: events not processed (as
 * {@link processedExpr} derives it), dead letters, and the oldest due
 * unprocessed event's age. Only events after the settled horizon, and those
 * with a row off the happy path, can be unprocessed, so the scan is as large
 * as the backlog: it reads those events once and joins the rows off the path
 * to them (a hash join, not an index probe per event, while those rows are
 * few). Events after every subscriber's head, most of a large backlog, are
 * counted per event type; only those behind some head are checked one by one.
 */
export function healthStatement(t: TableNames, ttlMs: number): SQL {
  return sql`
WITH act AS (${activeSubscribers(t, ttlMs)}),
hz AS (${id(settledHorizon(t))}),
off AS MATERIALIZED (
  SELECT event_id FROM ${id(t.deliveries)} UNION SELECT event_id FROM ${id(t.relayScheduled)}
),
top AS (SELECT head_tx AS tx, head_pos AS pos FROM act ORDER BY head_tx DESC, head_pos DESC LIMIT 1),
un AS (
  -- Between the horizon and the furthest head: each event checked against the cursors.
  SELECT e.created_at, e.deliver_at FROM ${id(t.events)} e LEFT JOIN off o ON o.event_id = e.id
  WHERE (e.tx_id, e.position) > (SELECT tx, pos FROM hz)
    AND (NOT EXISTS (SELECT 1 FROM top) OR (e.tx_id, e.position) <= (SELECT tx, pos FROM top))
    AND (o.event_id IS NOT NULL OR NOT ${sql.raw(passedText(t))})
  UNION ALL
  SELECT e.created_at, e.deliver_at FROM off o JOIN ${id(t.events)} e ON e.id = o.event_id
  WHERE (e.tx_id, e.position) <= (SELECT tx, pos FROM hz)
),
ahead AS (
  -- After every head (most of a large backlog): unprocessed when some active subscriber
  -- matches the type, or a row off the path holds it; counted per type, not checked per event.
  SELECT e.event_type, o.event_id IS NOT NULL AS held, count(*) AS n,
    min(e.created_at) FILTER (WHERE e.deliver_at IS NULL OR e.deliver_at <= now()) AS oldest
  FROM ${id(t.events)} e LEFT JOIN off o ON o.event_id = e.id
  WHERE (e.tx_id, e.position) > (SELECT tx, pos FROM top)
  GROUP BY 1, 2
),
waiting AS (
  SELECT a.n, a.oldest FROM ahead a
  WHERE a.held OR EXISTS (SELECT 1 FROM act s WHERE ${sql.raw(patternMatchText('s.patterns', 'a.event_type'))})
)
SELECT ((SELECT count(*) FROM un) + (SELECT coalesce(sum(n), 0) FROM waiting))::float8 AS unprocessed,
  (SELECT count(*) FROM ${id(t.deadLetters)})::float8 AS dead_letters,
  (SELECT round(extract(epoch from (${id(UTC_NOW)} - least(
    (SELECT min(created_at) FROM un WHERE deliver_at IS NULL OR deliver_at <= now()),
    (SELECT min(oldest) FROM waiting)))) * 1000)::float8) AS oldest_ms`;
}

/**
 * Deletes up to `batch` processed events created before `before`: settled by
 * every active subscriber (at or before the settled horizon), with no
 * delivery row and no dead letter.
 */
export function purgeStatement(t: TableNames, before: Date, batch: number, ttlMs: number): SQL {
  return sql`
WITH act AS (${activeSubscribers(t, ttlMs)}),
hz AS (${id(settledHorizon(t))}),
victims AS (${purgeVictims(t, before, batch, sql`true`)})
DELETE FROM ${id(t.events)} e USING victims v WHERE e.id = v.id
RETURNING e.id`;
}

/**
 * One batch of retention in one statement (`locked`, `n`): takes
 * `pg_try_advisory_xact_lock` on `lockKey` first (an uncorrelated subquery,
 * evaluated once before the scan), then purges as {@link purgeStatement}
 * does only if it got the lock, which it holds until the statement's
 * implicit transaction ends. One statement rather than a transaction of two:
 * postgres.js 3.4 can crash the process when the server dies under an open
 * transaction (porsager/postgres#1154), and a statement opens none.
 */
export function retentionPurgeStatement(t: TableNames, lockKey: number, before: Date, batch: number, ttlMs: number): SQL {
  return sql`
WITH lk AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(${lockKey}::int, 1) AS locked),
act AS (${activeSubscribers(t, ttlMs)}),
hz AS (${id(settledHorizon(t))}),
victims AS (${purgeVictims(t, before, batch, sql`(SELECT locked FROM lk)`)}),
del AS (DELETE FROM ${id(t.events)} e USING victims v WHERE e.id = v.id RETURNING e.id)
SELECT (SELECT locked FROM lk) AS locked, (SELECT count(*) FROM del)::int AS n`;
}

/** Processed events created before `before` that nothing refers to any more (no delivery, dead letter or held-back relay send), oldest first, `batch` at most, while `allowed`. */
function purgeVictims(t: TableNames, before: Date, batch: number, allowed: SQL): SQL {
  return sql`
  SELECT e.id FROM ${id(t.events)} e
  WHERE ${allowed}
    AND e.created_at < (${before.toISOString()}::timestamptz AT TIME ZONE 'UTC')
    AND (e.tx_id, e.position) <= (SELECT tx, pos FROM hz)
    AND NOT EXISTS (SELECT 1 FROM ${id(t.deliveries)} d WHERE d.event_id = e.id)
    AND NOT EXISTS (SELECT 1 FROM ${id(t.deadLetters)} dl WHERE dl.event_id = e.id)
    AND NOT EXISTS (SELECT 1 FROM ${id(t.relayScheduled)} rs WHERE rs.event_id = e.id)
  ORDER BY e.created_at
  LIMIT ${batch}::int
  FOR UPDATE SKIP LOCKED`;
}

/**
 * The conditions behind the storage's health warnings, one row each (`kind`,
 * `tbl`, `n`, `age_ms`): autovacuum off for the server (`autovacuum` or
 * `track_counts` off) or for one of the bus's tables (`autovacuum_enabled =
 * false`); a bus table with at least `maxDeadTuples` dead tuples; and the
 * oldest transaction of the cluster open longer than `maxTransactionAgeMs`
 * (any database: it holds back both cleanup and the log's visible horizon),
 * with how many are, prepared transactions included. Reads catalogs and
 * statistics views only.
 */
export function warningsStatement(t: TableNames, maxTransactionAgeMs: number, maxDeadTuples: number): SQL {
  const names = [t.events, t.subscribers, t.deliveries, t.deadLetters, t.ranges, t.state, t.relays, t.relayScheduled, t.listeners];
  return sql`
WITH tabs AS (
  SELECT c.oid, c.reloptions, q.name FROM (SELECT jsonb_array_elements_text(${json(names)}) AS name) q
  JOIN pg_class c ON c.oid = to_regclass(q.name)
),
server AS (SELECT current_setting('autovacuum') = 'off' OR current_setting('track_counts') = 'off' AS off),
old AS (
  SELECT xact_start AS started FROM pg_stat_activity
  WHERE pid <> pg_backend_pid() AND xact_start < now() - ${ms(maxTransactionAgeMs)}
    AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
  UNION ALL
  SELECT prepared FROM pg_prepared_xacts WHERE prepared < now() - ${ms(maxTransactionAgeMs)}
)
SELECT 'autovacuum' AS kind, NULL::text AS tbl, NULL::float8 AS n, NULL::float8 AS age_ms FROM server WHERE off
UNION ALL
SELECT 'autovacuum', tabs.name, NULL, NULL FROM tabs, server
WHERE NOT server.off AND EXISTS (
  SELECT 1 FROM unnest(tabs.reloptions) o WHERE lower(o) IN ('autovacuum_enabled=false', 'autovacuum_enabled=off', 'autovacuum_enabled=0', 'autovacuum_enabled=no'))
UNION ALL
SELECT 'dead_tuples', tabs.name, s.n_dead_tup::float8, NULL FROM tabs JOIN pg_stat_all_tables s ON s.relid = tabs.oid
WHERE s.n_dead_tup >= ${maxDeadTuples}::bigint
UNION ALL
SELECT 'transaction', NULL, count(*)::float8, round(extract(epoch from now() - min(started)) * 1000)::float8 FROM old
HAVING count(*) > 0`;
}
