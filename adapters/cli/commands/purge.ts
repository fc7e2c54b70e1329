/** `event-bus purge --older-than <duration>`: retention, deleting processed events older than that. */
import type { Command } from '../command';
import { usageError } from '../cli-error';
import { durationOption, flagOption, intOption } from '../options';

/** The `purge` command. */
export const purge: Command = {
  path: ['purge'],
  summary: 'Delete processed events older than a duration, in bounded batches.',
  description:
    'Never deletes an event some subscriber has not finished, nor one with a pending retry or a dead letter. ' +
    'Batches keep locks short, so it is safe to run while workers run (e.g. from cron).',
  uses: ['database'],
  options: {
    'older-than': { type: 'string', value: '<duration>', description: 'Age of the events to delete, e.g. 30d or 12h (required).' },
    'batch-size': { type: 'string', value: '<n>', description: 'Events deleted per statement (default 1000).' },
    json: { type: 'boolean', description: 'Print the count as JSON.' },
  },
  examples: ['event-bus purge --older-than 90d'],
  async run(ctx) {
    const age = durationOption(ctx, 'older-than');
    if (age === undefined) throw usageError('--older-than is required', 'e.g. event-bus purge --older-than 30d');
    const batchSize = intOption(ctx, 'batch-size', 1000, 1, 100_000);
    const olderThan = new Date(Date.now() - age);
    const { storage } = await ctx.openBus();
    const purged = await storage.purge({ olderThan, batchSize });
    if (flagOption(ctx, 'json')) return ctx.printJson({ purged, olderThan: olderThan.toISOString() });
    ctx.print(`purged ${purged} processed event(s) created before ${olderThan.toISOString()}`);
  },
};
