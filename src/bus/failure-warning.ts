/**
 * Failing handlers are visible without a logger: a bus created without one
 * reports the first failure of each subscriber as a Node.js process warning
 * (printed to stderr by default, once per subscriber), so the quick start's
 * handler that throws a `ReferenceError` is not retried in silence. A bus
 * given a logger logs every failure there instead, and warns about nothing.
 */
import type { ErrorInfo } from '../errors';

/** The `code` of the process warning, to filter it (`process.on('warning', ...)`). */
export const HANDLER_FAILED_WARNING = 'EVENT_BUS_HANDLER_FAILED';

/** Reports the first failure of each subscriber of one bus as a process warning. */
export class FirstFailureWarnings {
  private readonly warned = new Set<string>();

  handlerFailed(subscriber: string, eventType: string, attempt: number, error: ErrorInfo, retryAt: Date | null): void {
    if (this.warned.has(subscriber)) return;
    this.warned.add(subscriber);
    const outcome = retryAt ? `it will be retried at ${retryAt.toISOString()}` : 'the delivery was dead-lettered';
    process.emitWarning(
      `Handler of subscriber "${subscriber}" failed on "${eventType}" (attempt ${attempt}) with ${error.name}: ${error.message}; ` +
        `${outcome}. Later failures of this subscriber are not reported here: pass a logger to createEventBus to see every one.`,
      { type: 'EventBusWarning', code: HANDLER_FAILED_WARNING, ...(error.stack ? { detail: error.stack } : {}) },
    );
  }
}
