/**
 * The analytics tracker port and its default implementation, which writes
 * to the `analytics_events` table (a real product would send to Segment,
 * PostHog, ...; the port is the seam). Every write carries a dedupe key, so a
 * retried delivery records once.
 */
import { eq } from 'drizzle-orm';
import type { AppDb } from '../db/connect';
import { analyticsEvents } from '../db/schema';

/** One tracked event. */
export interface TrackInput {
  event: string;
  userId?: string;
  organizationId?: string;
  properties: Record<string, unknown>;
  timestamp: Date;
  /** Same key twice: recorded once (pass the handler's `ctx.deliveryId`). */
  dedupeKey: string;
}

/** One conversion (a business goal reached). */
export interface ConversionInput {
  event: string;
  userId?: string;
  organizationId?: string;
  value: number;
  timestamp: Date;
  dedupeKey: string;
}

/** Port: records product analytics. */
export interface AnalyticsTracker {
  track(input: TrackInput): Promise<void>;
  trackConversion(input: ConversionInput): Promise<void>;
}

/** A tracker that writes to the `analytics_events` table. */
export function tableTracker(db: AppDb): AnalyticsTracker {
  return {
    async track(input) {
      await db
        .insert(analyticsEvents)
        .values({
          kind: 'track',
          name: input.event,
          userId: input.userId ?? null,
          organizationId: input.organizationId ?? null,
          properties: input.properties,
          occurredAt: input.timestamp,
          dedupeKey: input.dedupeKey,
        })
        .onConflictDoNothing();
    },
    async trackConversion(input) {
      await db
        .insert(analyticsEvents)
        .values({
          kind: 'conversion',
          name: input.event,
          userId: input.userId ?? null,
          organizationId: input.organizationId ?? null,
          properties: {},
          value: input.value,
          occurredAt: input.timestamp,
          dedupeKey: input.dedupeKey,
        })
        .onConflictDoNothing();
    },
  };
}

/** Counts rows of the analytics table by kind and name (for reports and tests). */
export async function analyticsCounts(db: AppDb, kind?: 'track' | 'conversion'): Promise<Record<string, number>> {
  const rows = await db
    .select({ kind: analyticsEvents.kind, name: analyticsEvents.name })
    .from(analyticsEvents)
    .where(kind ? eq(analyticsEvents.kind, kind) : undefined);
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.name] = (counts[row.name] ?? 0) + 1;
  return counts;
}
