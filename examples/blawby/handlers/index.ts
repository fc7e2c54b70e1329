/**
 * Registers every Blawby handler (seed section 5), each a named subscriber.
 */
import { registerAnalyticsHandlers, type AnalyticsHandlerDeps } from './analytics';
import { registerEmailHandlers, type EmailHandlerDeps } from './email';
import { registerInternalHandlers, type InternalHandlerDeps } from './internal';
import type { AttemptObserver, BlawbyBus } from './subscribe';

export { DEFAULT_REMINDER_DELAY_MS, formatAmount, registerEmailHandlers } from './email';
export type { EmailHandlerDeps, OnboardingStatusLookup } from './email';
export { registerAnalyticsHandlers } from './analytics';
export type { AnalyticsHandlerDeps } from './analytics';
export { registerInternalHandlers } from './internal';
export type { InternalHandlerDeps } from './internal';
export { subscribeObserved } from './subscribe';
export type { AttemptObserver, AttemptRecord, BlawbyBus } from './subscribe';

/** Everything the handlers need. */
export type HandlerDeps = Omit<EmailHandlerDeps, 'observe'> &
  Omit<AnalyticsHandlerDeps, 'observe'> &
  Omit<InternalHandlerDeps, 'observe'> & { observe?: AttemptObserver };

/** Registers the email, analytics and internal notification handlers; returns a function that removes them. */
export function registerHandlers(bus: BlawbyBus, deps: HandlerDeps): () => void {
  const offs = [
    registerEmailHandlers(bus, deps),
    registerAnalyticsHandlers(bus, deps),
    registerInternalHandlers(bus, deps),
  ];
  return () => offs.forEach((off) => off());
}
