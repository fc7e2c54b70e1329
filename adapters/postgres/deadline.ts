/**
 * Bounded waits on the database. A driver whose server hangs, or whose
 * connections are cut without a reset, can keep a statement pending for
 * minutes (until TCP gives up or the driver's connect timeout, if any,
 * fires). The storage bounds every operation instead, and lets the late
 * statement settle in the background, unobserved.
 */

/**
 * The database gave no answer within the storage's `operationTimeoutMs`.
 * Its `code`, `ETIMEDOUT`, makes it a connection failure
 * (`STORAGE_UNAVAILABLE`) like the drivers' own timeouts.
 */
export class NoAnswerError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';

  constructor(readonly timeoutMs: number) {
    super(`PostgreSQL did not answer within ${timeoutMs} ms`);
  }
}

/**
 * Settles like `work`, or rejects with `signal.reason` once `signal` aborts,
 * whichever comes first. `work` goes on; its late rejection is ignored.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Runs `fn` with a signal that aborts after `timeoutMs` (with a
 * {@link NoAnswerError}), and rejects with that error then if `fn` has not
 * settled. `timeoutMs` 0 means no bound.
 */
export function withDeadline<T>(timeoutMs: number, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  if (timeoutMs === 0) return fn(undefined);
  const controller = new AbortController();
  // Not unref'd: a caller awaiting the operation must get its answer even if nothing else keeps the process up.
  const timer = setTimeout(() => controller.abort(new NoAnswerError(timeoutMs)), timeoutMs);
  let work: Promise<T>;
  try {
    work = fn(controller.signal);
  } catch (err) {
    clearTimeout(timer);
    return Promise.reject(err);
  }
  return untilAborted(work, controller.signal).finally(() => clearTimeout(timer));
}

/** A signal that aborts when the first of `signals` does (`AbortSignal.any` needs Node 20.3). */
export function firstOf(signals: readonly (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  const controller = new AbortController();
  for (const s of present) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    // Left in place: each signal is one operation's, dropped with it (a `signal` option here would
    // put one listener per call on the controller's signal, past Node's warning threshold).
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}
