/**
 * The outbox relay: forwards committed events from the log to a
 * cross-process transport, in commit order, at least once.
 *
 * Every process whose bus has this storage and a broker runs one; a lease
 * row elects the one that relays (the others wait to take over when its
 * lease runs out, or at once when it stops). The leader reads the log after
 * its cursor below the visible horizon (so no late commit is skipped),
 * publishes the batch, then moves the cursor in a statement fenced by its
 * lease: a crash between the two sends the batch again (duplicates carry the
 * same `eventId`), never loses it. Events whose `deliverAt` is ahead are
 * held in a table and sent when due.
 *
 * Every second or so it asks the broker how far each group has acknowledged
 * and moves the subscribers' heads there, so `processed`, the timeline and
 * `health()` read as with PostgreSQL alone; when the broker lost its data,
 * the cursor goes back to the oldest head and everything not yet handled by
 * every group is sent again. A group seen for the first time is sent, once,
 * what the relay had sent before it existed.
 */
import type { Logger, RelayHandle, RelayOptions, Transport, TransportEvent } from '@blawby/event-bus';
import { rowsOf, type Executor, type Row } from './driver';
import { eventOfRow } from './event-row';
import type { TableNames } from './names';
import * as r from './statements/relay';

/** Tuning of the relay (the defaults suit most deployments). */
export interface RelayTuning {
  /** Name of the relay's row: one relay per name among all processes (default `'default'`). */
  name: string;
  /** How long a leader holds the lease without renewing it (default 10 s): the takeover time when it dies. */
  leaseMs: number;
  /** Events read and published per step (default 500). */
  batchSize: number;
  /** How often the subscribers' heads follow the broker (default 1 s). */
  progressEveryMs: number;
  /** Longest wait between looks at the log when no notification arrives (default 500 ms). */
  pollMs: number;
}

/** Default {@link RelayTuning}. */
export const RELAY_DEFAULTS: RelayTuning = { name: 'default', leaseMs: 10_000, batchSize: 500, progressEveryMs: 1_000, pollMs: 500 };

const ERROR_PAUSE_MS = [250, 500, 1_000, 2_000, 5_000];

interface Deps {
  exec: Executor;
  tables: TableNames;
  transport: Transport;
  logger: Logger;
  ttlMs: number;
  /** Registers a wake-up on the storage's notifications; returns the way to stop it. */
  watch: (onWork: () => void) => Promise<() => Promise<void>>;
}

const positionOf = (row: Row): string => `${row.tx as string}:${String(row.pos)}`;

function parsePosition(text: string): r.LogPosition | null {
  const at = text.indexOf(':');
  if (at <= 0) return null;
  const tx = text.slice(0, at);
  const pos = Number(text.slice(at + 1));
  return /^\d+$/.test(tx) && Number.isSafeInteger(pos) ? { tx, pos } : null;
}

function transportEventOf(row: Row): TransportEvent {
  const message: TransportEvent = { event: eventOfRow(row), position: positionOf(row) };
  if (row.ordering_key != null) message.orderingKey = row.ordering_key as string;
  return message;
}

/** Starts a relay (see the module comment). */
export async function startOutboxRelay(deps: Deps, options: RelayOptions, tuning: RelayTuning): Promise<RelayHandle> {
  const relay = new OutboxRelay(deps, options, tuning);
  await relay.start();
  return relay;
}

class OutboxRelay implements RelayHandle {
  private running = true;
  private cursor: r.LogPosition | null = null;
  private leaseRenewedAt = 0;
  private progressAt = 0;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private loop: Promise<void> | undefined;
  private unwatch: (() => Promise<void>) | undefined;
  private errors = 0;
  /** A step failed: check the broker's progress (and data) before sending anything new. */
  private askBrokerFirst = false;

  constructor(
    private readonly deps: Deps,
    private readonly options: RelayOptions,
    private readonly tuning: RelayTuning,
  ) {}

  async start(): Promise<void> {
    const { exec, tables, ttlMs } = this.deps;
    await rowsOf(exec, r.relayEnsureStatement(tables, this.tuning.name, ttlMs));
    this.unwatch = await this.deps.watch(() => this.wake());
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loop;
    await this.unwatch?.();
    if (this.cursor) {
      await rowsOf(this.deps.exec, r.relayResignStatement(this.deps.tables, this.tuning.name, this.options.owner)).catch((err) =>
        this.deps.logger.warn({ err }, 'event-bus relay: could not give up its lease; another process takes over when it runs out'),
      );
    }
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      let more = false;
      try {
        more = await this.step();
        this.errors = 0;
      } catch (err) {
        // The broker may have been down, and come back without its data: ask it first next time,
        // so that what it lost is sent again before anything newer (keeping each key's order).
        this.askBrokerFirst = true;
        this.deps.logger.warn({ err }, 'event-bus relay: step failed; trying again');
        await this.sleep(ERROR_PAUSE_MS[Math.min(this.errors++, ERROR_PAUSE_MS.length - 1)]!);
        continue;
      }
      if (!more) await this.sleep(this.cursor ? this.tuning.pollMs : this.tuning.leaseMs / 3);
    }
  }

  /** One round; `true` when there may be more to send at once. */
  private async step(): Promise<boolean> {
    if (!(await this.lead())) return false;
    if (this.askBrokerFirst) {
      await this.followProgress();
      this.askBrokerFirst = false;
    }
    const sent = await this.forward();
    const due = await this.forwardDue();
    if (Date.now() - this.progressAt >= this.tuning.progressEveryMs) await this.followProgress();
    return sent || due;
  }

  /** Takes or renews the lease when a third of it has passed; `false` when another process leads. */
  private async lead(): Promise<boolean> {
    if (this.cursor && Date.now() - this.leaseRenewedAt < this.tuning.leaseMs / 3) return true;
    const { exec, tables } = this.deps;
    const [row] = await rowsOf(exec, r.relayLeadStatement(tables, this.tuning.name, this.options.owner, this.tuning.leaseMs));
    if (!row) {
      if (this.cursor) this.deps.logger.warn({}, 'event-bus relay: lost its lease to another process');
      this.cursor = null;
      return false;
    }
    // A new leader (or one that lost the lease in between) starts from the stored cursor.
    if (!this.cursor) {
      this.cursor = { tx: row.tx as string, pos: Number(row.pos) };
      this.deps.logger.info({ owner: this.options.owner }, 'event-bus relay: leading');
    }
    this.leaseRenewedAt = Date.now();
    return true;
  }

  /** Sends the next batch of the log; `true` when the batch was full. */
  private async forward(): Promise<boolean> {
    const { exec, tables, transport } = this.deps;
    const rows = await rowsOf(exec, r.relayReadStatement(tables, this.cursor!, this.tuning.batchSize));
    if (rows.length === 0) return false;
    const now = rows.filter((row) => row.later_ms == null);
    const later = rows
      .filter((row) => row.later_ms != null)
      .map((row) => ({ uuid: row.uuid as string, runAt: new Date(Number(row.later_ms)).toISOString() }));
    if (now.length > 0) await transport.publish(now.map(transportEventOf));
    const last = rows[rows.length - 1]!;
    const to = { tx: last.tx as string, pos: Number(last.pos) };
    const [moved] = await rowsOf(exec, r.relayAdvanceStatement(tables, this.tuning.name, this.options.owner, to, later));
    if (Number(moved?.moved ?? 0) === 0) {
      // Deposed while sending: the new leader sends this batch again from the stored cursor.
      this.cursor = null;
      return false;
    }
    this.cursor = to;
    return rows.length === this.tuning.batchSize;
  }

  /** Sends held-back events whose `deliverAt` has come. */
  private async forwardDue(): Promise<boolean> {
    const { exec, tables, transport } = this.deps;
    const rows = await rowsOf(exec, r.relayDueStatement(tables, this.tuning.name, this.tuning.batchSize));
    if (rows.length === 0) return false;
    await transport.publish(rows.map(transportEventOf));
    await rowsOf(exec, r.relaySentStatement(tables, this.tuning.name, this.options.owner, rows.map((row) => row.uuid as string)));
    return rows.length === this.tuning.batchSize;
  }

  /**
   * Moves the heads to where the groups have acknowledged; sends everything
   * again if the broker lost it; catches up the groups that are new.
   */
  private async followProgress(): Promise<void> {
    this.progressAt = Date.now();
    const { exec, tables, transport, ttlMs } = this.deps;
    if (!transport.progress) return;
    const sent = this.cursor!; // read before asking the broker: everything up to here had been published
    const subscribers = await rowsOf(exec, r.relaySubscribersStatement(tables, this.tuning.name, ttlMs));
    if (subscribers.length === 0) return;
    const progress = await transport.progress(subscribers.map((row) => row.name as string));
    if (!progress.intact) {
      const [row] = await rowsOf(exec, r.relayRewindStatement(tables, this.tuning.name, this.options.owner, ttlMs));
      if (row) this.cursor = { tx: row.tx as string, pos: Number(row.pos) };
      this.deps.logger.warn({ cursor: this.cursor }, 'event-bus relay: the broker lost its data; sending again what is not handled');
      return;
    }
    const heads: { subscriber: string; pending: r.LogPosition | null }[] = [];
    for (const row of subscribers) {
      const subscriber = row.name as string;
      // A group the broker does not report has no member yet: its head stays, and it is caught up once it has one.
      if (!(subscriber in progress.oldestPending)) continue;
      if (row.caught_up !== true) {
        await this.catchUp(subscriber, { tx: row.head_tx as string, pos: Number(row.head_pos) }, sent);
        continue;
      }
      const pending = progress.oldestPending[subscriber];
      if (pending == null) heads.push({ subscriber, pending: null });
      else {
        const at = parsePosition(pending);
        // A pending event without a place in the log (sent by a process with no relay) says nothing of the log.
        if (at) heads.push({ subscriber, pending: at });
      }
    }
    if (heads.length > 0) await rowsOf(exec, r.relayHeadsStatement(tables, sent, heads));
  }

  /**
   * A group that joined after the relay had sent events it matches (a new
   * subscriber, or the first start) may not have them: send it, addressed to
   * it alone, what lies between its head and what was sent, once.
   */
  private async catchUp(subscriber: string, head: r.LogPosition, upTo: r.LogPosition): Promise<void> {
    const { exec, tables, transport } = this.deps;
    let after = head;
    for (;;) {
      const rows = await rowsOf(exec, r.relayCatchUpReadStatement(tables, subscriber, after, upTo, this.tuning.batchSize));
      if (rows.length > 0) await transport.publish(rows.map((row) => ({ ...transportEventOf(row), subscriber })));
      if (rows.length < this.tuning.batchSize) break;
      const last = rows[rows.length - 1]!;
      after = { tx: last.tx as string, pos: Number(last.pos) };
    }
    await rowsOf(exec, r.relayCaughtUpStatement(tables, this.tuning.name, this.options.owner, subscriber));
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        this.woken = false;
        done();
      };
    });
  }
}
