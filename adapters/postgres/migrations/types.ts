/** Shape of a shipped migration. */
import type { TableNames } from '../names';

/** Options that change the SQL of a migration. */
export interface MigrationOptions {
  /** Adds `REFERENCES table(column) ON DELETE SET NULL` to `events.organization_id`. */
  organizationForeignKey?: { table: string; column?: string };
}

/** One numbered migration: idempotent statements, applied in one transaction. */
export interface Migration {
  id: number;
  name: string;
  statements(names: TableNames, options: MigrationOptions): string[];
}
