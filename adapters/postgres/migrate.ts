/**
 * Applying the shipped migrations (`migrate`) or printing them for users who
 * run DDL themselves (`migrationSql`).
 */
import { sql } from 'drizzle-orm';
import type { DrizzleDatabase } from './driver';
import { rowsOf, wrapError } from './driver';
import { migrations, type MigrationOptions } from './migrations';
import { tableNames, type TableNames, type TableOptions } from './names';

/** Options of {@link migrate} and {@link migrationSql}: where the tables go, and the optional foreign key. */
export interface MigrateOptions extends TableOptions, MigrationOptions {}

/** Result of {@link migrate}. */
export interface MigrateResult {
  /** Ids of the migrations this call applied (empty when the database was up to date). */
  applied: number[];
}

function migrationsTableSql(t: TableNames): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${t.qSchema}`,
    `CREATE TABLE IF NOT EXISTS ${t.migrations} (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TIMESTAMPTZ DEFAULT NOW() NOT NULL
)`,
  ];
}

/**
 * The SQL of every shipped migration for these options, as one script, for
 * users who apply DDL with their own tools. It records each migration in the
 * migrations table, so `migrate()` run later finds nothing to do.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * writeFileSync('drizzle/0007_event_bus.sql', migrationSql({ schema: 'events' }));
 * ```
 */
export function migrationSql(options: MigrateOptions = {}): string {
  const t = tableNames(options);
  const parts = [...migrationsTableSql(t)];
  for (const m of migrations) {
    parts.push(`-- ${String(m.id).padStart(4, '0')}_${m.name}`);
    parts.push(...m.statements(t, options));
    parts.push(`INSERT INTO ${t.migrations} (id, name) VALUES (${m.id}, '${m.name}') ON CONFLICT (id) DO NOTHING`);
  }
  return parts.map((p) => (p.startsWith('--') ? p : `${p};`)).join('\n\n') + '\n';
}

/**
 * Applies the shipped migrations that the database lacks, in one transaction
 * under an advisory lock (two processes migrating at once apply each
 * migration once), and records them. Idempotent. Never called implicitly:
 * run it at deploy time or at startup.
 *
 * @example
 * ```ts
 * await migrate(db);                                  // tables in "public": events, event_deliveries, ...
 * await migrate(db, { schema: 'bus', tablePrefix: 'app_' });
 * ```
 */
export async function migrate(db: DrizzleDatabase, options: MigrateOptions = {}): Promise<MigrateResult> {
  const t = tableNames(options);
  try {
    return await db.transaction(async (tx: DrizzleDatabase) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${t.lockKey}::int)`);
      for (const statement of migrationsTableSql(t)) await tx.execute(sql.raw(statement));
      const rows = await rowsOf(tx, sql.raw(`SELECT id FROM ${t.migrations}`));
      const done = new Set(rows.map((r) => Number(r.id)));
      const applied: number[] = [];
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        for (const statement of m.statements(t, options)) await tx.execute(sql.raw(statement));
        await tx.execute(sql`INSERT INTO ${sql.raw(t.migrations)} (id, name) VALUES (${m.id}::int, ${m.name})`);
        applied.push(m.id);
      }
      return { applied };
    });
  } catch (err) {
    throw wrapError(err, 'migrate');
  }
}
