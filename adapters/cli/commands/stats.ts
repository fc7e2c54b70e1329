/**
 * `event-bus stats`: what the database says, not a process's counters (the
 * CLI handles nothing itself): events published per type over a window, and
 * per subscriber its backlog, lag, dead letters and when a process last ran it.
 */
import { sql } from 'drizzle-orm';
import type { Backlog } from '@blawby/event-bus';
import type { Command } from '../command';
import { durationOption, flagOption } from '../options';
import { queryRows } from '../sql-rows';

/** One subscriber's line of the report. */
interface SubscriberStats {
  name: string;
  lastSeenAt: string;
  /** Age of its oldest due or running event (how far behind it is); `null` if none. */
  oldestPendingAgeMs: number | null;
  backlog: Backlog;
  deadLetters: number;
}

/** The `stats` command. */
export const stats: Command = {
  path: ['stats'],
  summary: 'Events published per type over a window; per subscriber its backlog, dead letters and last run.',
  uses: ['database'],
  options: {
    since: { type: 'string', value: '<duration>', description: 'Count events published this long ago or later (default 24h).' },
    json: { type: 'boolean', description: 'Print the numbers as JSON.' },
  },
  examples: ['event-bus stats --since 1h', 'event-bus stats --json | jq .subscribers'],
  async run(ctx) {
    const sinceMs = durationOption(ctx, 'since', 86_400_000)!;
    const since = new Date(Date.now() - sinceMs);
    const { bus, storage, connection } = await ctx.openBus();
    const t = storage.tables;
    const published = await queryRows(
      connection.db,
      sql`SELECT event_type, count(*)::int AS n FROM ${sql.raw(t.events)}
        WHERE created_at >= (${since.toISOString()}::timestamptz AT TIME ZONE 'UTC')
        GROUP BY event_type ORDER BY n DESC, event_type`,
    );
    const deadRows = await queryRows(
      connection.db,
      sql`SELECT subscriber, count(*)::int AS n FROM ${sql.raw(t.deadLetters)} GROUP BY subscriber`,
    );
    const dead = new Map(deadRows.map((r) => [String(r.subscriber), Number(r.n)]));
    const subscribers: SubscriberStats[] = (await storage.backlogBySubscriber()).map((b) => ({
      name: b.subscriber,
      lastSeenAt: b.lastSeenAt.toISOString(),
      oldestPendingAgeMs: b.oldestPendingAgeMs,
      backlog: { due: b.due, leased: b.leased, retrying: b.retrying, scheduled: b.scheduled },
      deadLetters: dead.get(b.subscriber) ?? 0,
    }));
    const health = await bus.health();
    const byType = Object.fromEntries(published.map((r) => [String(r.event_type), Number(r.n)]));
    const total = published.reduce((sum, r) => sum + Number(r.n), 0);
    if (flagOption(ctx, 'json')) {
      ctx.printJson({ since: since.toISOString(), published: { total, byType }, subscribers, health });
      return;
    }
    ctx.print(`published since ${since.toISOString()}: ${total}`);
    for (const [type, n] of Object.entries(byType)) ctx.print(`  ${type.padEnd(44)} ${n}`);
    ctx.print('');
    ctx.print(`subscribers: ${subscribers.length}`);
    if (subscribers.length) {
      ctx.print(
        `  ${'name'.padEnd(32)} ${'due'.padStart(7)} ${'running'.padStart(7)} ${'retry'.padStart(7)} ${'later'.padStart(7)} ${'dead'.padStart(7)} ${'lag'.padStart(9)}  last seen`,
      );
    }
    for (const s of subscribers) {
      const b = s.backlog;
      const cols = [b.due, b.leased, b.retrying, b.scheduled, s.deadLetters].map((n) => String(n).padStart(7)).join(' ');
      const lag = s.oldestPendingAgeMs === null ? '-' : `${Math.round(s.oldestPendingAgeMs / 1000)}s`;
      ctx.print(`  ${s.name.padEnd(32)} ${cols} ${lag.padStart(9)}  ${s.lastSeenAt}`);
    }
    ctx.print('');
    ctx.print(
      `unprocessed: ${health.unprocessed}   dead letters: ${health.deadLetters}   oldest pending: ${
        health.oldestPendingAgeMs === null ? '-' : `${health.oldestPendingAgeMs} ms`
      }`,
    );
  },
};
