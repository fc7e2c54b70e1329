/**
 * Migration 3: the ranges are indexed by subscriber and lease end (instead of
 * by subscriber alone). A claim looks for its subscribers' ranges whose lease
 * ran out; through this index, in its order, it reads only those, and marks
 * the entries of ranges deleted since as dead as it passes them. By subscriber
 * alone it read every range deleted since the last vacuum: most ranges live
 * for a moment, so between two vacuums there are thousands.
 */
import type { TableNames } from '../names';
import type { Migration } from './types';

export const rangeLeasesMigration: Migration = {
  id: 3,
  name: 'range_leases',
  statements(t: TableNames): string[] {
    return [
      `CREATE INDEX IF NOT EXISTS "${t.indexPrefix}idx_event_ranges_lease" ON ${t.ranges} (subscriber, lease_expires_at)`,
      `DROP INDEX IF EXISTS ${t.qSchema}."${t.indexPrefix}idx_event_ranges_subscriber"`,
    ];
  },
};
