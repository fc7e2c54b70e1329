/** `event-bus dlq redrive`: puts dead letters back to be delivered with fresh attempts. */
import type { Command } from '../command';
import { CliError } from '../cli-error';
import { countDeadLetters, FILTER_OPTIONS, findDeadLetter, targetOf } from '../dead-letter-filter';
import { ExitCode } from '../exit-codes';
import { flagOption, intOption } from '../options';

/** The `dlq redrive` command. */
export const dlqRedrive: Command = {
  path: ['dlq', 'redrive'],
  summary: 'Redrive one dead letter by id, or every match of the filters (--all: every one); --dry-run counts.',
  usage: '[<id>]',
  positionals: { min: 0, max: 1 },
  description:
    'A redriven delivery is due at once with a fresh set of attempts; a running worker of its subscriber picks it up. ' +
    'Only dead letters of subscribers the database still knows can be redriven.',
  uses: ['database'],
  options: {
    ...FILTER_OPTIONS,
    all: { type: 'boolean', description: 'With no filter: every dead letter.' },
    limit: { type: 'string', value: '<n>', description: 'At most this many, oldest first (default all that match).' },
    'dry-run': { type: 'boolean', description: 'Only say how many would be redriven.' },
    json: { type: 'boolean', description: 'Print the count as JSON.' },
  },
  examples: [
    'event-bus dlq redrive 0193b6c2-8a4e-7c1d-9f00-2b6d5e4a1c3f',
    'event-bus dlq redrive --subscriber email.welcome --dry-run',
    'event-bus dlq redrive --all',
  ],
  async run(ctx) {
    const target = targetOf(ctx);
    const dryRun = flagOption(ctx, 'dry-run');
    const limit = ctx.values.limit === undefined ? undefined : intOption(ctx, 'limit', 0);
    const opened = await ctx.openBus();
    const report = (count: number, note = '') => {
      if (flagOption(ctx, 'json')) return ctx.printJson({ dryRun, redriven: count });
      ctx.print(`${dryRun ? 'would redrive' : 'redrove'} ${count} dead letter(s)${note}`);
    };
    if ('id' in target) {
      const found = await findDeadLetter(opened, target.id);
      if (!found) throw new CliError(ExitCode.NOT_FOUND, `no dead letter with id ${target.id}`, 'list them with `event-bus dlq list`');
      if (!found.registered) {
        throw new CliError(
          ExitCode.FAILURE,
          `dead letter ${target.id} belongs to subscriber "${found.deadLetter.subscriber}", which is no longer registered`,
          'start a process that subscribes under that name, or discard the dead letter',
        );
      }
      return report(dryRun ? 1 : await opened.bus.deadLetters.redrive(target.id));
    }
    if (dryRun) {
      const { total, redrivable } = await countDeadLetters(opened, target.filter);
      const count = limit === undefined ? redrivable : Math.min(limit, redrivable);
      const skipped = total - redrivable;
      return report(count, skipped ? ` (${skipped} more belong to subscribers no longer registered)` : '');
    }
    return report(await opened.bus.deadLetters.redrive({ ...target.filter, ...(limit === undefined ? {} : { limit }) }));
  },
};
