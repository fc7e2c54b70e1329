/** `event-bus dlq list`: dead letters, oldest failure first. */
import type { Command } from '../command';
import { FILTER_OPTIONS, filterOf } from '../dead-letter-filter';
import { flagOption, intOption } from '../options';

/** The `dlq list` command. */
export const dlqList: Command = {
  path: ['dlq', 'list'],
  summary: 'List dead letters (oldest failure first), optionally filtered.',
  uses: ['database'],
  options: {
    ...FILTER_OPTIONS,
    limit: { type: 'string', value: '<n>', description: 'At most this many (default 100).' },
    json: { type: 'boolean', description: 'Print them as JSON (with the events and error stacks).' },
  },
  examples: ['event-bus dlq list --subscriber email.welcome', 'event-bus dlq list --type billing.payment_failed --json'],
  async run(ctx) {
    const limit = intOption(ctx, 'limit', 100);
    const opened = await ctx.openBus();
    const list = await opened.bus.deadLetters.list({ ...filterOf(ctx), limit });
    if (flagOption(ctx, 'json')) return ctx.printJson(list);
    if (list.length === 0) return ctx.print('no dead letters');
    ctx.print(`${'id'.padEnd(36)}  ${'failed at'.padEnd(24)}  ${'subscriber'.padEnd(28)}  ${'event type'.padEnd(36)}  tries  error`);
    for (const d of list) {
      const error = `${d.error.code ? `${d.error.code}: ` : ''}${d.error.message}`.replace(/\s+/g, ' ').slice(0, 80);
      ctx.print(
        `${d.id}  ${d.failedAt.toISOString().padEnd(24)}  ${d.subscriber.padEnd(28)}  ${d.eventType.padEnd(36)}  ${String(d.attempts).padStart(5)}  ${error}`,
      );
    }
  },
};
