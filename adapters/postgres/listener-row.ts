/**
 * The row that tells publishers this storage listens for work notices. A
 * publish sends NOTIFY only while some listener's row is live, so servers
 * where nobody listens (publish-only services, workers that poll) keep
 * their commits free of the lock PostgreSQL takes for notifying ones.
 *
 * The row expires unless refreshed: a process killed while listening stops
 * drawing notices after {@link LISTENER_TTL_MS}. Refreshed every third of
 * that, and again whenever the LISTEN connection came back.
 */
import type { SQL } from 'drizzle-orm';
import type { Logger } from '@blawby/event-bus';
import type { TableNames } from './names';
import * as q from './statements';

/** How long a listener's row counts without a refresh. */
export const LISTENER_TTL_MS = 30_000;

/** One storage's listener row: written before it LISTENs, refreshed while it does, deleted when it stops. */
export class ListenerRow {
  private timer: NodeJS.Timeout | undefined;
  private warned = false;
  /** The last refresh queued (refreshes run one after another): {@link stop} waits for it, or it could write the row back after the delete. */
  private refreshing: Promise<void> = Promise.resolve();

  constructor(
    private readonly tables: TableNames,
    private readonly id: string,
    /** Runs a statement of the storage's own (within its operation timeout). */
    private readonly run: (what: string, statement: SQL) => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  /** Writes the row and keeps it fresh until {@link stop}. Never rejects: without the row, publishes do not notify and dispatchers poll. */
  async start(): Promise<void> {
    await this.refresh();
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh(), LISTENER_TTL_MS / 3);
      this.timer.unref();
    }
  }

  /** Writes the row now (after a reconnect, say). Never rejects. */
  refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(() => this.write());
    return this.refreshing;
  }

  private async write(): Promise<void> {
    try {
      await this.run('record the listener', q.listenerUpStatement(this.tables, this.id, LISTENER_TTL_MS));
      this.warned = false;
    } catch (err) {
      // Once per outage: the refresh runs every few seconds.
      if (!this.warned) this.logger.warn({ err }, 'event-bus: could not record this LISTEN; publishes may not notify it (dispatchers poll)');
      this.warned = true;
    }
  }

  /** Stops refreshing and deletes the row (best effort: it expires anyway). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
    await this.run('forget the listener', q.listenerDownStatement(this.tables, this.id)).catch(() => {});
  }
}
