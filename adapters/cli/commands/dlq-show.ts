/** `event-bus dlq show <id>`: one dead letter with its event and the last error's stack. */
import type { Command } from '../command';
import { CliError } from '../cli-error';
import { findDeadLetter } from '../dead-letter-filter';
import { ExitCode } from '../exit-codes';
import { flagOption } from '../options';

/** The `dlq show` command. */
export const dlqShow: Command = {
  path: ['dlq', 'show'],
  summary: 'Show one dead letter: its event, attempts and last error (exit 5 when there is none).',
  usage: '<id>',
  positionals: { min: 1, max: 1 },
  uses: ['database'],
  options: { json: { type: 'boolean', description: 'Print it as JSON.' } },
  async run(ctx) {
    const id = ctx.positionals[0]!;
    const opened = await ctx.openBus();
    const found = await findDeadLetter(opened, id);
    if (!found) throw new CliError(ExitCode.NOT_FOUND, `no dead letter with id ${id}`, 'list them with `event-bus dlq list`');
    const { deadLetter: d, registered } = found;
    if (flagOption(ctx, 'json')) return ctx.printJson({ ...d, subscriberRegistered: registered });
    ctx.print(`dead letter   ${d.id}`);
    ctx.print(`subscriber    ${d.subscriber}${registered ? '' : ' (no longer registered: it cannot be redriven)'}`);
    ctx.print(`event         ${d.eventId} ${d.eventType} v${d.event.eventVersion} at ${d.event.timestamp.toISOString()}`);
    if (d.event.actor) ctx.print(`actor         ${d.event.actor}${d.event.actorType ? ` (${d.event.actorType})` : ''}`);
    if (d.event.organizationId) ctx.print(`organization  ${d.event.organizationId}`);
    ctx.print(`attempts      ${d.attempts}, failed at ${d.failedAt.toISOString()}`);
    ctx.print(`error         ${d.error.name}${d.error.code ? ` ${d.error.code}` : ''}: ${d.error.message}`);
    if (d.error.stack) ctx.print(d.error.stack.split('\n').map((l) => `  ${l}`).join('\n'));
    ctx.print('payload');
    ctx.print(JSON.stringify(d.event.payload, null, 2));
    ctx.print('metadata');
    ctx.print(JSON.stringify(d.event.metadata, null, 2));
  },
};
