/**
 * `event-bus tail`: prints new events as they are published, oldest first,
 * until interrupted (or after `--count` events). It reads the timeline,
 * woken by the storage's notifications and polling every `--interval`; each
 * read looks `--lookback` behind the newest event seen, so an event whose
 * transaction committed a little after a newer one is still printed (once).
 */
import type { BaseEvent } from '@blawby/event-bus';
import type { Command } from '../command';
import { resolveEventTypes } from '../open-bus';
import { durationOption, flagOption, intOption, listOption, stringOption } from '../options';

/** The `tail` command. */
export const tail: Command = {
  path: ['tail'],
  summary: 'Print new events as they are published (filter by type, organization, actor), until Ctrl-C.',
  uses: ['database', 'catalog'],
  options: {
    type: { type: 'string', multiple: true, value: '<type>', description: 'Only events of this type (with --catalog also domain.* and *).' },
    org: { type: 'string', value: '<id>', description: 'Only events of this organization.' },
    actor: { type: 'string', value: '<id>', description: 'Only events by this actor.' },
    since: { type: 'string', value: '<duration>', description: 'First print the events of this long ago (default: only new ones).' },
    count: { type: 'string', value: '<n>', description: 'Exit after printing this many events.' },
    interval: { type: 'string', value: '<duration>', description: 'Poll at least this often (default 1s).' },
    lookback: { type: 'string', value: '<duration>', description: 'How far behind the newest event each read looks for late commits (default 10s).' },
    json: { type: 'boolean', description: 'One JSON envelope per line (NDJSON).' },
  },
  examples: ["event-bus tail --type 'billing.*' --catalog ./src/events/catalog.ts", 'event-bus tail --org org_123 --json | jq .payload'],
  async run(ctx) {
    const sinceMs = durationOption(ctx, 'since', 0)!;
    const intervalMs = Math.max(50, durationOption(ctx, 'interval', 1000)!);
    const lookbackMs = durationOption(ctx, 'lookback', 10_000)!;
    const count = ctx.values.count === undefined ? Number.POSITIVE_INFINITY : intOption(ctx, 'count', 1);
    const json = flagOption(ctx, 'json');
    const catalog = await ctx.loadCatalog();
    const eventTypes = resolveEventTypes(catalog, listOption(ctx, 'type'));
    const { bus, storage } = await ctx.openBus({ eventTypes });
    const actor = stringOption(ctx, 'actor');
    const organizationId = stringOption(ctx, 'org');
    const filter = {
      ...(eventTypes.length ? { eventTypes } : {}),
      ...(actor !== undefined ? { actor } : {}),
      ...(organizationId !== undefined ? { organizationId } : {}),
    };

    const start = Date.now() - sinceMs;
    /** Ids printed (or present before the start) with their times, forgotten once behind the read window. */
    const seen = new Map<string, number>();
    let newest = start;
    let printed = 0;
    const signal = ctx.io.signal;

    const read = async (from: number): Promise<BaseEvent[]> => {
      const events: BaseEvent[] = [];
      let cursor: string | undefined;
      do {
        const page = await bus.timeline({ ...filter, from: new Date(from), limit: 1000, ...(cursor ? { cursor } : {}) });
        events.push(...page.events);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return events.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || (a.eventId < b.eventId ? -1 : 1));
    };
    const show = (e: BaseEvent) => {
      if (json) return ctx.print(JSON.stringify(e));
      const who = [e.actor ? `actor=${e.actor}` : '', e.organizationId ? `org=${e.organizationId}` : ''].filter(Boolean).join(' ');
      const payload = JSON.stringify(e.payload);
      ctx.print(
        `${e.timestamp.toISOString()}  ${e.eventType}  v${e.eventVersion}  ${e.eventId}${who ? `  ${who}` : ''}  ${payload.length > 200 ? `${payload.slice(0, 199)}…` : payload}`,
      );
    };

    // What is already there before the start is not news: remember it without printing.
    for (const e of await read(start - lookbackMs)) {
      if (e.timestamp.getTime() < start) seen.set(e.eventId, e.timestamp.getTime());
    }
    let wake: (() => void) | undefined;
    const unwatch = storage.watch ? await storage.watch(() => wake?.()) : undefined;
    // On stderr, so stdout holds only events; a script waiting for the tail to be live can wait for this line.
    ctx.note(`tailing events from ${new Date(start).toISOString()} (Ctrl-C to stop)`);
    try {
      while (!signal.aborted && printed < count) {
        for (const e of await read(newest - lookbackMs)) {
          if (seen.has(e.eventId) || printed >= count) continue;
          seen.set(e.eventId, e.timestamp.getTime());
          newest = Math.max(newest, e.timestamp.getTime());
          show(e);
          printed++;
        }
        for (const [id, at] of seen) if (at < newest - 2 * lookbackMs) seen.delete(id);
        if (printed >= count) break;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, intervalMs);
          signal.addEventListener('abort', done);
          wake = done;
        });
      }
    } finally {
      await unwatch?.();
    }
  },
};
