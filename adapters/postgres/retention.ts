/**
 * Retention: while a bus runs on the storage, purges processed events past
 * an age, in bounded batches, one process at a time.
 *
 * Each batch is one statement that first takes a transaction-scoped
 * advisory lock with `pg_try_advisory_xact_lock` (the two-key form on the
 * storage's key, apart from `migrate`'s lock): a process that does not get
 * it leaves this round to the one that did. A transaction-scoped lock (not a
 * session lock on a reserved connection) works behind a transaction-pooling
 * PgBouncer and pins no connection between batches; and short statements
 * keep the log's horizon (the oldest running transaction) moving.
 */
import { InvalidOptionError, type Logger } from '@blawby/event-bus';

/** Options of the `retention` option of {@link postgresStorage}. */
export interface RetentionOptions {
  /** Processed events whose `timestamp` is older than this (ms) are deleted. */
  processedOlderThanMs: number;
  /** Time between two rounds (default 1 hour). The first round runs once the bus has started. */
  intervalMs?: number;
  /** Events deleted per statement (default 1000), so a round never holds long locks. */
  batchSize?: number;
}

/** What retention did in this process since the storage was created (see {@link PostgresStorage.retentionStats}). */
export interface RetentionStats {
  /** Rounds run by this process. */
  runs: number;
  /** Rounds left to another process that held the lock. */
  skipped: number;
  /** Events deleted by this process. */
  purged: number;
  /** When this process last ran a round (`null` before the first). */
  lastRunAt: Date | null;
  /** Events deleted by the last round. */
  lastPurged: number;
}

/** Retention options with every field set. */
export type ResolvedRetention = Required<RetentionOptions>;

const HOUR_MS = 60 * 60 * 1000;

/** Checks the `retention` option; `undefined` when retention is off. */
export function resolveRetention(options: RetentionOptions | undefined): ResolvedRetention | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('retention', 'must be an object');
  const positive = (name: keyof RetentionOptions, value: unknown, fallback?: number): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new InvalidOptionError(`retention.${name}`, 'must be a positive integer');
    }
    return v;
  };
  return {
    processedOlderThanMs: positive('processedOlderThanMs', options.processedOlderThanMs),
    intervalMs: positive('intervalMs', options.intervalMs, HOUR_MS),
    batchSize: positive('batchSize', options.batchSize, 1000),
  };
}

/**
 * Runs rounds every `intervalMs` between `start()` and `stop()`. `round`
 * purges one batch and returns how many events it deleted, or `null` when
 * another process holds the lock.
 */
export class RetentionRunner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private started = false;
  private readonly counts: RetentionStats = { runs: 0, skipped: 0, purged: 0, lastRunAt: null, lastPurged: 0 };

  constructor(
    private readonly options: ResolvedRetention,
    private readonly batch: (olderThan: Date, batchSize: number) => Promise<number | null>,
    private readonly logger: Logger,
  ) {}

  /** Starts the rounds (the first one at once); a no-op when started. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops the rounds and waits for a running one to end its current batch. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  stats(): RetentionStats {
    return { ...this.counts };
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.round().finally(() => {
        this.running = undefined;
        if (this.started) this.schedule(this.options.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    const olderThan = new Date(Date.now() - this.options.processedOlderThanMs);
    let purged = 0;
    try {
      for (;;) {
        const n = await this.batch(olderThan, this.options.batchSize);
        if (n === null) {
          // Another process is purging: this round is theirs (unless we already did part of it).
          if (purged === 0) {
            this.counts.skipped += 1;
            return;
          }
          break;
        }
        purged += n;
        this.counts.purged += n;
        if (n < this.options.batchSize || !this.started) break;
      }
      this.counts.runs += 1;
      this.counts.lastRunAt = new Date();
      this.counts.lastPurged = purged;
      if (purged > 0) this.logger.info({ purged, olderThan }, `event-bus: retention purged ${purged} processed events`);
    } catch (err) {
      this.logger.warn({ err, purged }, 'event-bus: retention round failed; it runs again at the next interval');
    }
  }
}
