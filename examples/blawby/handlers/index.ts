/**
 * Registers every Blawby handler (seed section 5), each a named subscriber.
 */
import { registerAnalyticsHandlers, type AnalyticsHandlerDeps } from './analytics';
import { registerEmailHandlers, type EmailHandlerDeps } from './email';
import { registerInternalHandlers, type InternalHandlerDeps } from './internal';
import { observeAttempts, type AttemptObserver } from './attempts';
import type { BlawbyBus } from './bus';

export { DEFAULT_REMINDER_DELAY_MS, formatAmount, registerEmailHandlers } from './email';
export type { EmailHandlerDeps, OnboardingStatusLookup } from './email';
export { registerAnalyticsHandlers } from './analytics';
export type { AnalyticsHandlerDeps } from './analytics';
export { registerInternalHandlers } from './internal';
export type { InternalHandlerDeps } from './internal';
export { observeAttempts } from './attempts';
export type { AttemptObserver, AttemptRecord } from './attempts';
export type { BlawbyBus } from './bus';

/** Everything the handlers need, and who is told about their attempts (through `bus.observe`). */
export type HandlerDeps = EmailHandlerDeps & AnalyticsHandlerDeps & InternalHandlerDeps & { observe?: AttemptObserver };

/** Registers the email, analytics and internal notification handlers; returns a function that removes them. */
export function registerHandlers(bus: BlawbyBus, deps: HandlerDeps): () => void {
  const offs = [
    registerEmailHandlers(bus, deps),
    registerAnalyticsHandlers(bus, deps),
    registerInternalHandlers(bus, deps),
  ];
  if (deps.observe) offs.push(observeAttempts(bus, deps.observe));
  return () => offs.forEach((off) => off());
}
