/** `event-bus health`: the bus's health report, with exit code 6 when it is unhealthy. */
import type { Command } from '../command';
import { ExitCode } from '../exit-codes';
import { durationOption, flagOption, intOption } from '../options';

/** The `health` command. */
export const health: Command = {
  path: ['health'],
  summary: 'Unprocessed events, dead letters, the oldest pending age, warnings; exits 6 when unhealthy.',
  uses: ['database'],
  options: {
    'max-unprocessed': { type: 'string', value: '<n>', description: 'Unhealthy at this many unprocessed events (default 1000).' },
    'max-pending-age': { type: 'string', value: '<duration>', description: 'Unhealthy when the oldest due event waited longer (default no limit).' },
    'max-dead-letters': { type: 'string', value: '<n>', description: 'Unhealthy at this many dead letters (default no limit).' },
    json: { type: 'boolean', description: 'Print the report as JSON.' },
  },
  examples: ['event-bus health --max-pending-age 5m --json'],
  async run(ctx) {
    const maxUnprocessed = intOption(ctx, 'max-unprocessed', 1000, 1, Number.MAX_SAFE_INTEGER);
    const maxDeadLetters = intOption(ctx, 'max-dead-letters', Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER);
    const maxPendingAgeMs = durationOption(ctx, 'max-pending-age');
    // The thresholds are the command's, so the report is judged here from the bus's own numbers.
    const { bus, storage } = await ctx.openBus();
    const report = await bus.health();
    const reasons: string[] = [];
    if (report.unprocessed >= maxUnprocessed) reasons.push(`unprocessed ${report.unprocessed} >= ${maxUnprocessed}`);
    if (report.deadLetters >= maxDeadLetters) reasons.push(`dead letters ${report.deadLetters} >= ${maxDeadLetters}`);
    if (maxPendingAgeMs !== undefined && (report.oldestPendingAgeMs ?? 0) > maxPendingAgeMs) {
      reasons.push(`oldest pending ${report.oldestPendingAgeMs} ms > ${maxPendingAgeMs} ms`);
    }
    const healthy = reasons.length === 0;
    const { warnings } = report;
    if (flagOption(ctx, 'json')) {
      ctx.printJson({ ...report, status: healthy ? 'healthy' : 'unhealthy', healthy, reasons, eventsTable: storage.tables.events });
    } else {
      ctx.print(`status:               ${healthy ? 'healthy' : `unhealthy (${reasons.join('; ')})`}`);
      ctx.print(`unprocessed events:   ${report.unprocessed}`);
      ctx.print(`dead letters:         ${report.deadLetters}`);
      ctx.print(`oldest pending:       ${report.oldestPendingAgeMs === null ? '-' : `${report.oldestPendingAgeMs} ms`}`);
      for (const w of warnings) ctx.print(`warning ${w.code}: ${w.message}`);
      if (warnings.length === 0) ctx.print('warnings:             none');
    }
    return healthy ? ExitCode.OK : ExitCode.UNHEALTHY;
  },
};
