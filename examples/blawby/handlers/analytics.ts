/**
 * Analytics handlers (seed phase 3.2): every event is tracked, and
 * connecting Stripe is recorded as a conversion.
 */
import { EventType } from '../catalog';
import type { AnalyticsTracker } from '../sinks/analytics';
import type { BlawbyBus } from './bus';

/** Dependencies of {@link registerAnalyticsHandlers}. */
export interface AnalyticsHandlerDeps {
  tracker: AnalyticsTracker;
}

/** Registers the analytics subscribers; returns a function that unsubscribes them all. */
export function registerAnalyticsHandlers(bus: BlawbyBus, deps: AnalyticsHandlerDeps): () => void {
  const offs = [
    bus.subscribe(
      '*',
      async (event, ctx) => {
        await deps.tracker.track({
          event: event.eventType,
          userId: event.actor,
          organizationId: event.organizationId,
          properties: event.payload as Record<string, unknown>,
          timestamp: event.timestamp,
          dedupeKey: ctx.deliveryId,
        });
      },
      { name: 'analytics.track_all' },
    ),
    bus.subscribe(
      EventType.BILLING_ONBOARDING_COMPLETED,
      async (event, ctx) => {
        await deps.tracker.trackConversion({
          event: 'stripe_connected',
          userId: event.actor,
          organizationId: event.organizationId,
          value: 0,
          timestamp: event.timestamp,
          dedupeKey: ctx.deliveryId,
        });
      },
      { name: 'analytics.conversion' },
    ),
  ];
  return () => offs.forEach((off) => off());
}
