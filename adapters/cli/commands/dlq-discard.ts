/** `event-bus dlq discard`: deletes dead letters for good. */
import type { Command } from '../command';
import { CliError } from '../cli-error';
import { countDeadLetters, FILTER_OPTIONS, findDeadLetter, targetOf } from '../dead-letter-filter';
import { ExitCode } from '../exit-codes';
import { flagOption, intOption } from '../options';

/** Dead letters discarded per round of list-then-delete. */
const PAGE = 500;

/** The `dlq discard` command. */
export const dlqDiscard: Command = {
  path: ['dlq', 'discard'],
  summary: 'Delete one dead letter by id, or every match of the filters (--all: every one); --dry-run counts.',
  usage: '[<id>]',
  positionals: { min: 0, max: 1 },
  uses: ['database'],
  options: {
    ...FILTER_OPTIONS,
    all: { type: 'boolean', description: 'With no filter: every dead letter.' },
    limit: { type: 'string', value: '<n>', description: 'At most this many, oldest first (default all that match).' },
    'dry-run': { type: 'boolean', description: 'Only say how many would be discarded.' },
    json: { type: 'boolean', description: 'Print the count as JSON.' },
  },
  examples: ['event-bus dlq discard 0193b6c2-8a4e-7c1d-9f00-2b6d5e4a1c3f', 'event-bus dlq discard --type audit.exported --dry-run'],
  async run(ctx) {
    const target = targetOf(ctx);
    const dryRun = flagOption(ctx, 'dry-run');
    const limit = ctx.values.limit === undefined ? Number.POSITIVE_INFINITY : intOption(ctx, 'limit', 0);
    const opened = await ctx.openBus();
    const report = (count: number) => {
      if (flagOption(ctx, 'json')) return ctx.printJson({ dryRun, discarded: count });
      ctx.print(`${dryRun ? 'would discard' : 'discarded'} ${count} dead letter(s)`);
    };
    const { deadLetters } = opened.bus;
    if ('id' in target) {
      const exists = dryRun ? (await findDeadLetter(opened, target.id)) !== undefined : await deadLetters.discard(target.id);
      if (!exists) throw new CliError(ExitCode.NOT_FOUND, `no dead letter with id ${target.id}`, 'list them with `event-bus dlq list`');
      return report(1);
    }
    if (dryRun) return report(Math.min(limit, (await countDeadLetters(opened, target.filter)).total));
    let discarded = 0;
    while (discarded < limit) {
      const page = await deadLetters.list({ ...target.filter, limit: Math.min(PAGE, limit - discarded) });
      if (page.length === 0) break;
      for (const d of page) if (await deadLetters.discard(d.id)) discarded++;
    }
    return report(discarded);
  },
};
