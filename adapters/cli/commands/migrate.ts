/** `event-bus migrate`: applies the shipped migrations (idempotent), or prints their SQL. */
import { migrate as runMigrations, migrationSql } from '@blawby/event-bus/postgres';
import type { Command } from '../command';
import { flagOption, stringOption } from '../options';

/** The `migrate` command. */
export const migrate: Command = {
  path: ['migrate'],
  summary: "Create or upgrade the bus's tables (idempotent, under an advisory lock).",
  description: 'With --print, writes the SQL of every migration to stdout instead, for teams that apply DDL with their own tools.',
  uses: ['database'],
  options: {
    print: { type: 'boolean', description: 'Print the migration SQL instead of applying it (needs no database).' },
    json: { type: 'boolean', description: 'Print the result as JSON.' },
  },
  examples: ['event-bus migrate --database-url postgres://localhost/app', 'event-bus migrate --print --schema bus > 0001_event_bus.sql'],
  async run(ctx) {
    const placement = { schema: stringOption(ctx, 'schema'), tablePrefix: stringOption(ctx, 'table-prefix') };
    if (flagOption(ctx, 'print')) {
      ctx.io.stdout.write(migrationSql(placement));
      return;
    }
    const { db, target } = await ctx.connect();
    const { applied } = await runMigrations(db, placement);
    if (flagOption(ctx, 'json')) ctx.printJson({ applied });
    else ctx.print(applied.length ? `applied migration(s) ${applied.join(', ')} to ${target}` : `${target} is up to date`);
  },
};
