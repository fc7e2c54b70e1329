/**
 * `event-bus replay`: makes past events due again for their subscribers,
 * with the filters of `bus.replay`. A dry run scans the matching events and
 * says how many there are and at most how many deliveries that makes; a
 * real run replays them in windows of `--batch-size` events, oldest first,
 * with a progress bar, so a long replay shows how far it got.
 */
import { matchesPattern } from '@blawby/event-bus';
import type { Command } from '../command';
import { CliError } from '../cli-error';
import { ExitCode } from '../exit-codes';
import { resolveEventTypes } from '../open-bus';
import { flagOption, intOption, listOption, stringOption, timeOption } from '../options';
import { createProgress } from '../progress';
import { storedSubscribers } from '../subscribers';

/** A subscriber no process has registered for this long gets no replay (the storage's default TTL). */
const SUBSCRIBER_TTL_MS = 86_400_000;

/** The `replay` command. */
export const replay: Command = {
  path: ['replay'],
  summary: 'Make past events due again for their subscribers (filters as bus.replay); --dry-run counts.',
  description:
    'Without --subscriber, every subscriber a process ran in the last 24 hours gets the events its patterns match. ' +
    'Events a subscriber has not reached yet are not replayed to it (it gets them anyway). A running worker of each ' +
    'subscriber handles the replayed deliveries. --from and --to take an ISO 8601 time or a duration ago (2h).',
  uses: ['database', 'catalog'],
  options: {
    type: { type: 'string', multiple: true, value: '<type>', description: 'Only events of this type (with --catalog also domain.* and *).' },
    org: { type: 'string', value: '<id>', description: 'Only events of this organization.' },
    actor: { type: 'string', value: '<id>', description: 'Only events by this actor.' },
    from: { type: 'string', value: '<time>', description: 'Only events at or after this time.' },
    to: { type: 'string', value: '<time>', description: 'Only events before this time.' },
    subscriber: { type: 'string', multiple: true, value: '<name>', description: 'Replay to this subscriber only (default all active ones).' },
    'batch-size': { type: 'string', value: '<n>', description: 'Events replayed per statement (default 1000).' },
    'dry-run': { type: 'boolean', description: 'Only count the events and the deliveries they would make at most.' },
    progress: { type: 'boolean', description: 'Draw the progress bar on stderr even when it is not a terminal.' },
    'no-progress': { type: 'boolean', description: 'Never draw the progress bar (default: drawn on a terminal).' },
    json: { type: 'boolean', description: 'Print the result as JSON.' },
  },
  examples: [
    'event-bus replay --type billing.payment_failed --from 2026-11-30T00:00:00Z --subscriber email.payment_failed --dry-run',
    "event-bus replay --catalog ./src/events/catalog.ts --type 'billing.*' --from 24h",
  ],
  async run(ctx) {
    const now = Date.now();
    const from = timeOption(ctx, 'from', now);
    const to = timeOption(ctx, 'to', now);
    const batchSize = intOption(ctx, 'batch-size', 1000, 1, 100_000);
    const dryRun = flagOption(ctx, 'dry-run');
    const chosen = listOption(ctx, 'subscriber');
    const catalog = await ctx.loadCatalog();
    const eventTypes = resolveEventTypes(catalog, listOption(ctx, 'type'));
    const opened = await ctx.openBus({ eventTypes });
    const filter = {
      ...(eventTypes.length ? { eventTypes } : {}),
      ...(stringOption(ctx, 'actor') !== undefined ? { actor: stringOption(ctx, 'actor') } : {}),
      ...(stringOption(ctx, 'org') !== undefined ? { organizationId: stringOption(ctx, 'org') } : {}),
    };

    const known = await storedSubscribers(opened);
    const missing = chosen.filter((name) => !known.some((s) => s.name === name));
    if (missing.length) {
      throw new CliError(ExitCode.NOT_FOUND, `no subscriber named ${missing.map((m) => `"${m}"`).join(', ')} in the database`, 'see `event-bus stats` for the subscribers it knows');
    }
    const targets = chosen.length ? known.filter((s) => chosen.includes(s.name)) : known.filter((s) => s.lastSeenAt.getTime() > now - SUBSCRIBER_TTL_MS);

    // The matching events, oldest first: their times cut the run into windows, their types bound the deliveries.
    const times: number[] = [];
    let bound = 0;
    let cursor: string | undefined;
    do {
      const page = await opened.bus.timeline({ ...filter, from, to, limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const e of page.events) {
        times.push(e.timestamp.getTime());
        bound += targets.filter((s) => s.patterns.some((p) => matchesPattern(p, e.eventType))).length;
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    times.reverse();

    const json = flagOption(ctx, 'json');
    const names = targets.map((s) => s.name);
    if (dryRun) {
      if (json) return ctx.printJson({ dryRun, events: times.length, maxDeliveries: bound, subscribers: names });
      ctx.print(`would replay ${times.length} event(s): at most ${bound} deliveries to ${names.length ? names.join(', ') : 'no subscriber'}`);
      return;
    }

    // Windows [from, t1), [t1, t2), ..., [tk, to): together exactly the asked range, each about batchSize events.
    const cuts: number[] = [];
    for (let i = batchSize; i < times.length; i += batchSize) {
      if (times[i]! > (cuts.at(-1) ?? times[0]!)) cuts.push(times[i]!);
    }
    const windows = [from?.getTime(), ...cuts].map((lo, i) => ({ lo, hi: i < cuts.length ? cuts[i] : to?.getTime() }));
    const drawn = !flagOption(ctx, 'no-progress') && (flagOption(ctx, 'progress') || (ctx.io.stderr.isTTY === true && windows.length > 1));
    const progress = createProgress(ctx.io.stderr, times.length, drawn, 'replay');
    let deliveries = 0;
    let events = 0; // index into `times`: the events of the windows done so far
    for (const w of windows) {
      deliveries += await opened.bus.replay({
        ...filter,
        ...(w.lo !== undefined ? { from: new Date(w.lo) } : {}),
        ...(w.hi !== undefined ? { to: new Date(w.hi) } : {}),
        ...(chosen.length ? { subscribers: chosen } : {}),
      });
      while (events < times.length && (w.hi === undefined || times[events]! < w.hi)) events++;
      progress.update(events, `events, ${deliveries} deliveries scheduled`);
    }
    progress.finish();
    if (json) return ctx.printJson({ dryRun, events: times.length, deliveries, subscribers: names });
    ctx.print(`replayed ${times.length} event(s): ${deliveries} deliveries scheduled`);
  },
};
