/**
 * Migration 3: an index on the ranges' lease ends. A claim looks for ranges
 * whose lease ran out; through this index, in its order, it reads only those
 * (and marks the entries of ranges deleted since as dead as it passes them),
 * where a scan by subscriber read every range deleted since the last vacuum:
 * most ranges live for a moment, so between two vacuums there are thousands.
 */
import type { TableNames } from '../names';
import type { Migration } from './types';

export const rangeLeasesMigration: Migration = {
  id: 3,
  name: 'range_leases',
  statements(t: TableNames): string[] {
    return [
      `CREATE INDEX IF NOT EXISTS "${t.indexPrefix}idx_event_ranges_lease" ON ${t.ranges} (lease_expires_at)`,
    ];
  },
};
