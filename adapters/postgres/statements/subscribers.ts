/** Subscribers: registering (with the heartbeat that keeps a name active) and retiring. */
import { sql, type SQL } from 'drizzle-orm';
import type { TableNames } from '../names';
import { activeSubscribers, id, json, ms, settledHorizon } from './common';

/**
 * Upserts subscribers (a heartbeat for known names). A name that is new, or
 * had stopped counting, starts at the settled horizon: the oldest place in
 * the log another active subscriber has not settled, or, with none, where the
 * last ones left off. So it receives what is not yet processed, never older
 * history. The stored horizon follows the active subscribers forward.
 */
export function registerStatement(t: TableNames, subs: { name: string; patterns: string[] }[], ttlMs: number): SQL {
  return sql`
WITH input AS (SELECT * FROM jsonb_to_recordset(${json(subs)}) AS x(name text, patterns text[])),
act AS (${activeSubscribers(t, ttlMs)}),
start AS (${id(settledHorizon(t))}),
up AS (
  INSERT INTO ${id(t.subscribers)} AS s (name, patterns, last_seen_at, head_tx, head_pos)
  SELECT i.name, i.patterns, now(), coalesce((SELECT tx FROM start), '0'::xid8), coalesce((SELECT pos FROM start), 0)
  FROM input i
  ON CONFLICT (name) DO UPDATE SET patterns = excluded.patterns, last_seen_at = now(),
    head_tx = CASE WHEN s.last_seen_at > now() - ${ms(ttlMs)} THEN s.head_tx ELSE excluded.head_tx END,
    head_pos = CASE WHEN s.last_seen_at > now() - ${ms(ttlMs)} THEN s.head_pos ELSE excluded.head_pos END
  RETURNING s.name
),
kept AS (
  UPDATE ${id(t.state)} st SET horizon_tx = h.tx, horizon_pos = h.pos FROM start h
  WHERE EXISTS (SELECT 1 FROM act) AND (h.tx, h.pos) > (st.horizon_tx, st.horizon_pos)
  RETURNING 1
)
SELECT (SELECT count(*) FROM up)::int AS registered, (SELECT count(*) FROM kept)::int AS moved`;
}

/** Forgets a subscriber: its cursor, its ranges, its waiting deliveries, and that the relay caught it up. */
export function retireStatement(t: TableNames, name: string): SQL {
  return sql`
WITH sub AS (DELETE FROM ${id(t.subscribers)} WHERE name = ${name} RETURNING name),
gone AS (DELETE FROM ${id(t.deliveries)} WHERE subscriber = ${name} RETURNING 1),
ranges AS (DELETE FROM ${id(t.ranges)} WHERE subscriber = ${name} RETURNING 1),
relays AS (UPDATE ${id(t.relays)} SET caught_up = array_remove(caught_up, ${name}) WHERE ${name} = ANY(caught_up) RETURNING 1)
SELECT (SELECT count(*) FROM gone)::int AS dropped, (SELECT count(*) FROM ranges)::int AS ranges,
  (SELECT count(*) FROM sub)::int AS retired`;
}
