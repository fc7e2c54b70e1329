/**
 * The PostgreSQL storage: events, deliveries and dead letters in tables, on
 * drizzle-orm over postgres.js or PGlite (the same SQL on both).
 *
 * Delivery model: one row per unfinished (event, subscriber), created in the
 * same statement as the event; a finished row is deleted (so the hot table is
 * as small as the backlog), a dead-lettered one moves to the dead letters.
 * Workers claim rows with `FOR UPDATE SKIP LOCKED` and hold them by a lease
 * (owner, token, expiry) that fences late acknowledgements.
 */
import { EventBusError, InvalidOptionError, silentLogger } from '@blawby/event-bus';
import type {
  BaseEvent,
  Logger,
  AppendInput,
  AppendOptions,
  AppendResult,
  Backlog,
  ClaimedDelivery,
  ClaimOptions,
  DeadLetter,
  DeadLetterFilter,
  FailOutcome,
  Lease,
  ReplayQuery,
  Storage,
  StorageCapabilities,
  StorageHealth,
  SubscriberRegistration,
  TimelinePage,
  TimelineQuery,
} from '@blawby/event-bus';
import { TickBatcher } from './batcher';
import {
  storageExecutor,
  isConnectionError,
  listen,
  rowsOf,
  wrapError,
  type DrizzleDatabase,
  type Executor,
  type Row,
  type Unlisten,
} from './driver';
import { eventOfRow, isUuid } from './event-row';
import { tableNames, type TableNames, type TableOptions } from './names';
import * as q from './statements';

/** Options of {@link postgresStorage}. */
export interface PostgresStorageOptions extends TableOptions {
  /** A drizzle database (`drizzle-orm/postgres-js`, `drizzle-orm/pglite`). Not closed by the storage. */
  db: DrizzleDatabase;
  /** A subscriber no process has registered for this long stops receiving new deliveries (default 24 h). */
  subscriberTtlMs?: number;
  /**
   * LISTEN for work notices and NOTIFY on publish (default `true`). Turn off
   * behind a transaction-pooling PgBouncer, where LISTEN does not work: the
   * dispatcher then polls.
   */
  notify?: boolean;
  /**
   * Wait for the WAL flush when claiming, extending, releasing and completing
   * (default `false`). Off, those commits skip the flush (`synchronous_commit
   * = off` for that statement only): a database crash may then forget the
   * last moments of lease bookkeeping, so a delivery runs again (at least
   * once), but nothing is ever lost. Publishing, retries and dead letters are
   * always flushed, and so is a completion inside a caller's transaction.
   */
  synchronousAcks?: boolean;
  /** Logger for background problems (LISTEN failures). */
  logger?: Logger;
}

/** Options of {@link PostgresStorage.purge}. */
export interface PurgeOptions {
  /** Deletes processed events created before this time. */
  olderThan: Date;
  /** Rows deleted per statement (default 1000), so a purge never holds long locks. */
  batchSize?: number;
}

/** The storage returned by {@link postgresStorage}: a {@link Storage} plus retention. */
export interface PostgresStorage extends Storage {
  readonly name: 'postgres';
  /** The quoted table names in use. */
  readonly tables: Readonly<TableNames>;
  /**
   * Deletes processed events older than `olderThan`, in bounded batches.
   * Never touches an event that still has a delivery or a dead letter.
   * Returns how many events were deleted.
   */
  purge(options: PurgeOptions): Promise<number>;
  /** Runs `fn` in a drizzle transaction of `db` (transactional subscribers get it as `ctx.tx`). */
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T>;
  /**
   * Calls `onWork` when a NOTIFY says deliveries became due (one LISTEN
   * connection per storage however many watchers), and after the LISTEN
   * connection was re-established. A no-op when `notify` is off or LISTEN fails.
   */
  watch(onWork: () => void): Promise<() => Promise<void>>;
}

const CAPABILITIES: StorageCapabilities = Object.freeze({ transactions: true, durable: true, shared: true });
const DAY_MS = 24 * 60 * 60 * 1000;
/** Most events in one coalesced append statement. */
const MAX_APPEND_BATCH = 1000;

/**
 * Creates the PostgreSQL {@link Storage}. Run {@link migrate} first (it is
 * never run implicitly).
 *
 * @example
 * ```ts
 * import postgres from 'postgres';
 * import { drizzle } from 'drizzle-orm/postgres-js';
 * const db = drizzle(postgres(process.env.DATABASE_URL!));
 * await migrate(db);
 * const bus = createEventBus({ catalog, storage: postgresStorage({ db }) });
 * ```
 */
export function postgresStorage(options: PostgresStorageOptions): PostgresStorage {
  const db = options?.db;
  if (!db || typeof db.execute !== 'function' || typeof db.transaction !== 'function') {
    throw new InvalidOptionError('db', 'must be a drizzle-orm PostgreSQL database');
  }
  const ttl = options.subscriberTtlMs ?? DAY_MS;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new InvalidOptionError('subscriberTtlMs', 'must be a positive number');
  const names = tableNames(options);
  return new PgStorage(
    db,
    // No channel: statements send no NOTIFY (nobody could LISTEN, e.g. behind PgBouncer).
    options.notify === false ? { ...names, channel: '' } : names,
    ttl,
    options.notify ?? true,
    options.synchronousAcks ?? false,
    options.logger ?? silentLogger,
  );
}

interface Settle {
  id: string;
  token: string;
}

interface AppendCall {
  inputs: readonly AppendInput[];
  claim: ClaimOptions | undefined;
}

interface AppendCallResult {
  events: BaseEvent[];
  /** Deliveries created due now and not claimed. */
  due: number;
  claimed: ClaimedDelivery[];
}

class PgStorage implements PostgresStorage {
  readonly name = 'postgres' as const;
  readonly capabilities = CAPABILITIES;
  private readonly appends: TickBatcher<AppendCall, AppendCallResult>;
  private readonly completes: TickBatcher<Settle, boolean>;
  private readonly watchers = new Set<() => void>();
  private listening: Promise<Unlisten | null> | null = null;
  /** Runs the storage's own statements (outside callers' transactions). */
  private readonly exec: Executor;
  private closed = false;

  constructor(
    private readonly db: DrizzleDatabase,
    readonly tables: TableNames,
    private readonly ttlMs: number,
    private readonly notify: boolean,
    private readonly synchronousAcks: boolean,
    private readonly logger: Logger,
  ) {
    this.exec = storageExecutor(db);
    this.appends = new TickBatcher(
      (calls) => this.appendMany(this.exec, calls),
      (call) => call.inputs.length,
      MAX_APPEND_BATCH,
      isConnectionError,
    );
    this.completes = new TickBatcher(
      (leases) => this.completeMany(this.exec, leases),
      () => 1,
      500,
      isConnectionError,
    );
  }

  // --- subscribers ---

  async register(subscribers: readonly SubscriberRegistration[]): Promise<void> {
    if (subscribers.length === 0) return;
    const subs = subscribers.map((s) => ({ name: s.name, patterns: [...s.patterns] }));
    await this.run('register', () => rowsOf(this.exec, q.registerStatement(this.tables, subs, this.ttlMs)));
  }

  async retire(name: string): Promise<void> {
    await this.run('retire', () => rowsOf(this.exec, q.retireStatement(this.tables, name)));
  }

  // --- append ---

  async append(inputs: readonly AppendInput[], options?: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    if (inputs.length === 0) return { events: [], claimed: [], unclaimed: 0 };
    let result: AppendCallResult;
    if (options?.tx !== undefined) {
      const tx = asExecutor(options.tx);
      // Inside the caller's transaction: no retry, and errors must reach the caller's rollback.
      // The new rows are invisible until the caller commits: nothing is claimed (`claim` is ignored).
      result = (await this.run('publish', () => this.appendMany(tx, [{ inputs, claim: undefined }]), false))[0]!;
    } else {
      result = await this.run('publish', () => this.appends.add({ inputs, claim: options?.claim }), false);
    }
    return { events: result.events, claimed: result.claimed, unclaimed: result.due };
  }

  private async appendMany(executor: Executor, calls: AppendCall[]): Promise<AppendCallResult[]> {
    const rows: q.AppendRow[] = [];
    for (const call of calls) {
      for (const input of call.inputs) rows.push(toAppendRow(input, rows.length));
    }
    // One claimer per statement: the first call that asks (calls of one bus share its owner).
    const claimer = calls.find((c) => c.claim && c.claim.limit > 0 && c.claim.subscribers.length > 0);
    const claim = claimer?.claim
      ? {
          owner: claimer.claim.owner,
          subscribers: claimer.claim.subscribers
            .filter((sub) => sub.limit > 0)
            .map((sub) => ({ name: sub.name, lim: Math.floor(sub.limit) })),
          limit: Math.floor(claimer.claim.limit),
          leaseMs: claimer.claim.leaseMs,
        }
      : null;
    const result = await rowsOf(executor, q.appendStatement(this.tables, rows, this.ttlMs, claim));
    const inserted = new Map<string, Row>();
    const byKey = new Map<string, BaseEvent>();
    const claimedRows: Row[] = [];
    for (const r of result) {
      if (r.kind === 'c') {
        claimedRows.push(r);
      } else if (r.kind === 'i') {
        inserted.set(r.event_id as string, r);
      } else if (r.idempotency_key != null) {
        byKey.set(r.idempotency_key as string, eventOfRow(r));
      }
    }
    // A key first seen in this statement: the input that was inserted with it.
    const firstWithKey = new Map<string, BaseEvent>();
    const events: BaseEvent[] = [];
    let offset = 0;
    const missing = new Set<string>();
    for (const call of calls) {
      for (const input of call.inputs) {
        const row = rows[offset++]!;
        const ins = inserted.get(row.event_id);
        if (ins && (row.idempotency_key === null || !firstWithKey.has(row.idempotency_key))) {
          const event: BaseEvent = { ...input.event, processed: ins.processed === true, retryCount: 0 };
          if (row.idempotency_key !== null) firstWithKey.set(row.idempotency_key, event);
          events.push(event);
        } else if (
          row.idempotency_key !== null &&
          !byKey.has(row.idempotency_key) &&
          !firstWithKey.has(row.idempotency_key)
        ) {
          missing.add(row.idempotency_key);
          events.push(input.event);
        } else {
          events.push(input.event);
        }
      }
    }
    if (missing.size > 0) {
      // Stored by a transaction that committed after this statement's snapshot.
      for (const r of await rowsOf(executor, q.eventsByIdempotencyKey(this.tables, [...missing]))) {
        byKey.set(r.idempotency_key as string, eventOfRow(r));
      }
    }
    const out: AppendCallResult[] = [];
    offset = 0;
    for (const call of calls) {
      const callEvents: BaseEvent[] = [];
      let due = 0;
      for (let i = 0; i < call.inputs.length; i++) {
        const row = rows[offset]!;
        let event = events[offset]!;
        offset++;
        const ins = inserted.get(row.event_id);
        const isFirst =
          ins !== undefined && (row.idempotency_key === null || firstWithKey.get(row.idempotency_key) === event);
        if (isFirst) {
          due += Number(ins.due ?? 0);
        } else if (row.idempotency_key !== null) {
          event = byKey.get(row.idempotency_key) ?? firstWithKey.get(row.idempotency_key) ?? event;
        }
        callEvents.push(event);
      }
      out.push({ events: callEvents, due, claimed: [] });
    }
    if (claimer && claimedRows.length > 0) {
      const eventsById = new Map<string, BaseEvent>();
      events.forEach((e) => eventsById.set(e.eventId, e));
      out[calls.indexOf(claimer)]!.claimed = claimedRows.map((r) => ({
        deliveryId: r.delivery_id as string,
        token: r.lease_token as string,
        subscriber: r.subscriber as string,
        attempt: 1,
        leaseExpiresAt: new Date(Number(r.lease_expires_ms)),
        event: eventsById.get(r.event_id as string)!,
      }));
    }
    return out;
  }

  // --- claims and settling ---

  async claim(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    this.assertOpen();
    const subs = options.subscribers
      .filter((s) => s.limit > 0)
      .map((s) => ({ name: s.name, lim: Math.floor(s.limit) }));
    if (subs.length === 0 || options.limit <= 0) return [];
    const rows = await this.run('claim', () =>
      rowsOf(
        this.exec,
        q.claimStatement(
          this.tables,
          options.owner,
          subs,
          Math.floor(options.limit),
          options.leaseMs,
          !this.synchronousAcks,
        ),
      ),
    );
    return rows.map((r) => ({
      deliveryId: r.id as string,
      token: r.lease_token as string,
      subscriber: r.subscriber as string,
      attempt: Number(r.attempts),
      leaseExpiresAt: new Date(Number(r.lease_expires_ms)),
      event: eventOfRow(r),
    }));
  }

  async extend(leases: readonly Lease[], leaseMs: number): Promise<string[]> {
    const valid = leases.filter(isValidLease).map((l) => ({ id: l.deliveryId, token: l.token }));
    if (valid.length === 0) return [];
    const rows = await this.run('extend', () =>
      rowsOf(this.exec, q.extendStatement(this.tables, valid, leaseMs, !this.synchronousAcks)),
    );
    return rows.map((r) => r.id as string);
  }

  async complete(lease: Lease, options?: { tx?: unknown }): Promise<boolean> {
    if (!isValidLease(lease)) return false;
    const settle = { id: lease.deliveryId, token: lease.token };
    if (options?.tx !== undefined) {
      const tx = asExecutor(options.tx);
      return (await this.run('complete', () => this.completeMany(tx, [settle]), false))[0]!;
    }
    return this.run('complete', () => this.completes.add(settle), false);
  }

  private async completeMany(executor: Executor, leases: Settle[]): Promise<boolean[]> {
    // In a caller's transaction the commit is theirs: its durability is not ours to change.
    const rows = await rowsOf(
      executor,
      q.completeStatement(this.tables, leases, executor === this.exec && !this.synchronousAcks),
    );
    const done = new Set(rows.map((r) => r.id as string));
    return leases.map((l) => done.has(l.id));
  }

  async fail(lease: Lease, outcome: FailOutcome): Promise<boolean> {
    if (!isValidLease(lease)) return false;
    const settle = { id: lease.deliveryId, token: lease.token };
    const lastError = `${outcome.error.name}: ${outcome.error.message}`;
    const statement =
      outcome.retryAt === null
        ? q.deadLetterStatement(this.tables, settle, outcome.error, lastError)
        : q.retryStatement(this.tables, settle, outcome.retryAt, outcome.error, lastError);
    const rows = await this.run('fail', () => rowsOf(this.exec, statement));
    return Number(rows[0]?.n ?? 0) > 0;
  }

  async release(lease: Lease): Promise<boolean> {
    if (!isValidLease(lease)) return false;
    const rows = await this.run('release', () =>
      rowsOf(
        this.exec,
        q.releaseStatement(this.tables, { id: lease.deliveryId, token: lease.token }, !this.synchronousAcks),
      ),
    );
    return rows.length > 0;
  }

  // --- queries ---

  async nextDueAt(subscribers: readonly string[]): Promise<Date | null> {
    if (subscribers.length === 0) return null;
    const rows = await this.run('nextDueAt', () => rowsOf(this.exec, q.nextDueStatement(this.tables, [...subscribers])));
    const at = rows[0]?.at;
    return at == null ? null : new Date(Number(at));
  }

  async backlog(subscribers: readonly string[]): Promise<Backlog> {
    if (subscribers.length === 0) return { due: 0, leased: 0, retrying: 0, scheduled: 0 };
    const rows = await this.run('backlog', () => rowsOf(this.exec, q.backlogStatement(this.tables, [...subscribers])));
    const r = rows[0] ?? {};
    return {
      due: Number(r.due ?? 0),
      leased: Number(r.leased ?? 0),
      retrying: Number(r.retrying ?? 0),
      scheduled: Number(r.scheduled ?? 0),
    };
  }

  async timeline(query: TimelineQuery): Promise<TimelinePage> {
    const limit = query.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidOptionError('limit', 'must be an integer from 1 to 1000');
    }
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    const rows = await this.run('timeline', () =>
      rowsOf(this.exec, q.timelineStatement(this.tables, query, limit, after)),
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      events: page.map(eventOfRow),
      nextCursor: rows.length > limit && last ? encodeCursor(last.created_text as string, last.id as string) : null,
    };
  }

  async replay(query: ReplayQuery): Promise<number> {
    if (query.subscribers && query.subscribers.length === 0) return 0;
    const rows = await this.run('replay', () =>
      rowsOf(this.exec, q.replayStatement(this.tables, query, query.subscribers, this.ttlMs)),
    );
    return Number(rows[0]?.scheduled ?? 0);
  }

  async listDeadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    const where = deadLetterWhere(filter);
    if (!where) return [];
    const limit = filter.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidOptionError('limit', 'must be a positive integer');
    const rows = await this.run('listDeadLetters', () =>
      rowsOf(this.exec, q.listDeadLettersStatement(this.tables, where, limit)),
    );
    return rows.map((r) => {
      const event = eventOfRow(r);
      return {
        id: r.dl_id as string,
        eventId: event.eventId,
        eventType: event.eventType,
        subscriber: r.subscriber as string,
        attempts: Number(r.attempts),
        error: r.error as DeadLetter['error'],
        failedAt: new Date(Number(r.failed_ms)),
        event,
      };
    });
  }

  async redrive(target: string | DeadLetterFilter): Promise<number> {
    const where = typeof target === 'string' ? (isUuid(target) ? { id: target } : null) : deadLetterWhere(target);
    if (!where) return 0;
    const limit = typeof target === 'string' ? null : target.limit ?? null;
    const rows = await this.run('redrive', () => rowsOf(this.exec, q.redriveStatement(this.tables, where, limit)));
    return Number(rows[0]?.redriven ?? 0);
  }

  async discard(id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const rows = await this.run('discard', () => rowsOf(this.exec, q.discardStatement(this.tables, id)));
    return rows.length > 0;
  }

  async health(): Promise<StorageHealth> {
    const rows = await this.run('health', () => rowsOf(this.exec, q.healthStatement(this.tables)));
    const r = rows[0] ?? {};
    return {
      unprocessed: Number(r.unprocessed ?? 0),
      deadLetters: Number(r.dead_letters ?? 0),
      oldestPendingAgeMs: r.oldest_ms == null ? null : Math.max(0, Number(r.oldest_ms)),
    };
  }

  async purge(options: PurgeOptions): Promise<number> {
    if (!(options?.olderThan instanceof Date) || Number.isNaN(options.olderThan.getTime())) {
      throw new InvalidOptionError('olderThan', 'must be a Date');
    }
    const batch = options.batchSize ?? 1000;
    if (!Number.isInteger(batch) || batch < 1) throw new InvalidOptionError('batchSize', 'must be a positive integer');
    let total = 0;
    for (;;) {
      const rows = await this.run('purge', () =>
        rowsOf(this.exec, q.purgeStatement(this.tables, options.olderThan, batch)),
      );
      total += rows.length;
      if (rows.length < batch) return total;
    }
  }

  // --- transactions and wake-ups ---

  async transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await this.db.transaction((tx) => fn(tx));
    } catch (err) {
      throw wrapError(err, 'transaction');
    }
  }

  async watch(onWork: () => void): Promise<() => Promise<void>> {
    const noop = async () => {};
    if (!this.notify) return noop;
    this.watchers.add(onWork);
    if (!this.listening) {
      const wake = () => {
        for (const w of this.watchers) w();
      };
      this.listening = listen(this.db, this.tables.channel, wake, wake).catch((err: unknown) => {
        this.logger.warn({ err }, 'event-bus: LISTEN failed; dispatchers will poll');
        return null;
      });
    }
    const unlisten = await this.listening;
    if (!unlisten) {
      this.watchers.delete(onWork);
      return noop;
    }
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      this.watchers.delete(onWork);
      if (this.watchers.size === 0) await this.stopListening();
    };
  }

  private async stopListening(): Promise<void> {
    const listening = this.listening;
    this.listening = null;
    const unlisten = await listening;
    if (unlisten) await unlisten().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.appends.drain(), this.completes.drain()]);
    this.watchers.clear();
    await this.stopListening();
  }

  // --- helpers ---

  private assertOpen(): void {
    if (this.closed) throw new EventBusError('BUS_STOPPED', 'The postgres storage is closed');
  }

  /**
   * Runs one storage operation: connection failures become
   * `STORAGE_UNAVAILABLE`; a deadlock or serialization failure (possible when
   * two statements lock the same events in another order) is retried, since
   * each operation is one statement that rolled back as a whole.
   */
  private async run<T>(what: string, fn: () => Promise<T>, retry = true): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (retry && attempt < 4 && isTransient(err)) continue;
        throw wrapError(err, what);
      }
    }
  }
}

function isTransient(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === '40P01' || code === '40001') return true;
  }
  return false;
}

function asExecutor(tx: unknown): Executor {
  if (!tx || typeof (tx as Executor).execute !== 'function') {
    throw new InvalidOptionError(
      'tx',
      'must be a drizzle transaction (the `tx` of `db.transaction(async (tx) => ...)`)',
    );
  }
  return tx as Executor;
}

function isValidLease(lease: Lease): boolean {
  return isUuid(lease.deliveryId) && isUuid(lease.token);
}

function toAppendRow(input: AppendInput, ord: number): q.AppendRow {
  const e = input.event;
  return {
    ord,
    id: isUuid(e.eventId) ? e.eventId : null,
    event_id: e.eventId,
    event_type: e.eventType,
    event_version: e.eventVersion,
    actor: e.actor ?? null,
    actor_type: e.actorType ?? null,
    organization_id: e.organizationId ?? null,
    payload: e.payload,
    metadata: e.metadata,
    created_at: e.timestamp.toISOString(),
    idempotency_key: input.idempotencyKey ?? null,
    ordering_key: input.orderingKey ?? null,
    deliver_at: input.deliverAt ? input.deliverAt.toISOString() : null,
  };
}

/** The dead-letter filter as SQL conditions; `null` when it cannot match (an id that is not a UUID). */
function deadLetterWhere(filter: DeadLetterFilter & { id?: string }): q.DeadLetterWhere | null {
  if (filter.id !== undefined && !isUuid(filter.id)) return null;
  const where: q.DeadLetterWhere = {};
  if (filter.id !== undefined) where.id = filter.id;
  if (filter.subscriber !== undefined) where.subscriber = filter.subscriber;
  if (filter.eventType !== undefined) where.eventType = filter.eventType;
  if (filter.eventId !== undefined) where.eventId = filter.eventId;
  return where;
}

function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(`p1|${createdAt}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const parts = Buffer.from(cursor, 'base64url').toString().split('|');
  const [tag, createdAt, id] = parts;
  if (
    parts.length !== 3 ||
    tag !== 'p1' ||
    !createdAt ||
    !/^\d{4,}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(createdAt) ||
    !id ||
    !isUuid(id)
  ) {
    throw new InvalidOptionError('cursor', 'not a cursor returned by this storage');
  }
  return { createdAt, id };
}
