/**
 * The PostgreSQL storage, on drizzle-orm over postgres.js, node-postgres or
 * PGlite (the same SQL on all three).
 *
 * Delivery model: the `events` table is the log, in commit-safe order
 * (tx_id, position). Each subscriber keeps a head into it; a claim moves the
 * head past a batch of events and leases that batch, a range, to the
 * claimer (owner, token, expiry). Settling an event of a range marks it done
 * there; the last one deletes the range. So publishing writes one row per
 * event whatever the number of subscribers, and nothing is written per
 * delivery on the happy path. What cannot run now (a retry waiting for its
 * time, a future `deliverAt`, a key blocked behind another delivery, a
 * replay, a range whose lease ran out) becomes a row of the deliveries table,
 * claimed with `FOR UPDATE SKIP LOCKED` under its own lease.
 */
import { randomUUID } from 'node:crypto';
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
  DeadLetterRecord,
  FailOutcome,
  HealthWarning,
  Lease,
  RelayHandle,
  RelayOptions,
  ReplayQuery,
  Storage,
  StorageCapabilities,
  StorageHealth,
  SubscriberBacklog,
  SubscriberRegistration,
  TimelinePage,
  TimelineQuery,
  Transport,
} from '@blawby/event-bus';
import { TickBatcher } from './batcher';
import {
  storageExecutor,
  isConnectionError,
  isPglite,
  listen,
  rowsOf,
  rowsOfText,
  notMigratedError,
  preparesOn,
  transactionExecutor,
  wrapError,
  type DrizzleDatabase,
  type Executor,
  type Row,
  type Unlisten,
} from './driver';
import { withDeadline } from './deadline';
import { ListenerRow } from './listener-row';
import { eventOfRow, isUuid } from './event-row';
import { resolveRetention, RetentionRunner, type RetentionOptions, type RetentionStats } from './retention';
import { tableNames, type TableNames, type TableOptions } from './names';
import { RELAY_DEFAULTS, startOutboxRelay, type RelayTuning } from './relay';
import { relayBacklogStatement } from './statements/relay';
import * as q from './statements';
import type { ClaimShare, RangeLease, RowLease } from './statements';

/** Options of {@link postgresStorage}. */
export interface PostgresStorageOptions extends TableOptions {
  /**
   * A drizzle database (`drizzle-orm/postgres-js`, `drizzle-orm/node-postgres`
   * over a `pg` Pool, `drizzle-orm/pglite`). Not closed by the storage.
   */
  db: DrizzleDatabase;
  /**
   * The ambient transaction, if any: called on every publish made without
   * `tx`; when it returns a drizzle transaction, the events are appended in it
   * (they commit or roll back with it, and handlers see them only after the
   * commit). An explicit `tx` wins. For a unit of work kept in an
   * `AsyncLocalStorage`: `currentTransaction: () => unitOfWork.getStore()?.tx`.
   */
  currentTransaction?: () => unknown;
  /**
   * Run the storage's own statements as named prepared statements on
   * postgres.js and node-postgres (default `true`; postgres.js clients created
   * with `prepare: false` never do). Turn off behind a PgBouncer in
   * transaction mode that does not keep prepared statements.
   */
  prepare?: boolean;
  /**
   * Purge processed events past an age while a bus runs on this storage (from
   * `bus.start()` to `bus.stop()`), one process at a time; see
   * {@link RetentionOptions} and {@link PostgresStorage.retentionStats}. Off by default.
   */
  retention?: RetentionOptions;
  /** A subscriber no process has registered for this long stops receiving new deliveries (default 24 h). */
  subscriberTtlMs?: number;
  /** Thresholds of the storage's health warnings (see {@link PostgresStorage.warnings}). */
  warnings?: PostgresWarningOptions;
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
  /**
   * Longest wait, in milliseconds, for one storage operation (a publish, a
   * claim, `health()`, a timeline page, ...) before it rejects with
   * `STORAGE_UNAVAILABLE` (default 5000 on postgres.js and node-postgres; 0,
   * no bound, on PGlite, which has no network). A server that hangs or a
   * network that drops packets would otherwise keep callers waiting for as
   * long as the driver does. A write that times out may still commit later:
   * its outcome is unknown (see `docs/errors.md`). Raise it if statements
   * legitimately take longer; 0 turns the bound off.
   */
  operationTimeoutMs?: number;
  /** Logger for background problems (LISTEN failures) and retention rounds. */
  logger?: Logger;
  /**
   * The outbox relay that feeds a cross-process transport (started by
   * `bus.start()` when the bus has one): its name (one active relay per
   * name), lease, batch size, and how often heads follow the broker.
   */
  relay?: Partial<RelayTuning>;
}

/** Thresholds of {@link PostgresStorage.warnings}. */
export interface PostgresWarningOptions {
  /** `XMIN_HORIZON_PINNED` when a transaction of the server has been open longer than this (default 60 000 ms). */
  maxTransactionAgeMs?: number;
  /** `DEAD_TUPLES_HIGH` when one of the bus's tables has this many dead tuples or more (default 100 000). */
  maxDeadTuples?: number;
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
  /** What the `retention` option purged in this process (all zero when it is off). */
  retentionStats(): RetentionStats;
  /** Runs `fn` in a drizzle transaction of `db` (transactional subscribers get it as `ctx.tx`). */
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T>;
  /**
   * Calls `onWork` when a NOTIFY says deliveries became due (one LISTEN
   * connection per storage however many watchers), and after the LISTEN
   * connection was re-established. A no-op when `notify` is off or LISTEN fails.
   */
  watch(onWork: () => void): Promise<() => Promise<void>>;
  /**
   * `AUTOVACUUM_DISABLED`, `DEAD_TUPLES_HIGH`, `XMIN_HORIZON_PINNED` and
   * `LISTEN_UNAVAILABLE` warnings, read from the server's catalogs and
   * statistics (see `docs/operating.md`).
   */
  warnings(): Promise<HealthWarning[]>;
}

const CAPABILITIES: StorageCapabilities = Object.freeze({ transactions: true, durable: true, shared: true });
/** Default `operationTimeoutMs` on a server driver. */
const DEFAULT_OPERATION_TIMEOUT_MS = 5000;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Most events in one coalesced append statement. */
const MAX_APPEND_BATCH = 1000;
/**
 * How many events of the log one claim reads per subscriber (events its
 * patterns do not match included): a few times what it may take, so the
 * planner walks the log index in order and stops early (with a window far
 * larger than the limit it reads the whole backlog and sorts it), capped.
 */
function scanWindow(shares: readonly ClaimShare[]): number {
  return Math.min(1000, 4 * Math.max(...shares.map((s) => s.lim)) + 64);
}
/** Claims that go straight to the full claim statement for a subscriber the lean one sent back. */
const LEAN_BACKOFF = 8;
/** Claims again for a subscriber whose head another claimer moved first, this many times at most. */
const CLAIM_ROUNDS = 4;
/** How long a claim waits, once, for an older transaction to end when committed events wait behind it. */
const HORIZON_WAIT_MS = 10;
/** First and longest wait before claiming again when committed events wait behind an older transaction. */
const LAG_WAIT_MS = [2, 250] as const;

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
  if (options.currentTransaction !== undefined && typeof options.currentTransaction !== 'function') {
    throw new InvalidOptionError('currentTransaction', 'must be a function returning the ambient transaction or undefined');
  }
  const retention = resolveRetention(options.retention);
  const operationTimeoutMs = options.operationTimeoutMs ?? (isPglite(db) ? 0 : DEFAULT_OPERATION_TIMEOUT_MS);
  if (typeof operationTimeoutMs !== 'number' || !Number.isFinite(operationTimeoutMs) || operationTimeoutMs < 0) {
    throw new InvalidOptionError('operationTimeoutMs', 'must be a number of milliseconds, or 0 for no bound');
  }
  const warnAt = {
    maxTransactionAgeMs: positive('warnings.maxTransactionAgeMs', options.warnings?.maxTransactionAgeMs, 60_000),
    maxDeadTuples: positive('warnings.maxDeadTuples', options.warnings?.maxDeadTuples, 100_000),
  };
  return new PgStorage(
    db,
    // No channel: statements send no NOTIFY (nobody could LISTEN, e.g. behind PgBouncer).
    options.notify === false ? { ...names, channel: '' } : names,
    ttl,
    options.notify ?? true,
    options.synchronousAcks ?? false,
    options.logger ?? silentLogger,
    {
      prepare: options.prepare ?? true,
      currentTransaction: options.currentTransaction,
      retention,
      warnAt,
      operationTimeoutMs,
      relay: resolveRelay(options.relay),
    },
  );
}

function resolveRelay(options: Partial<RelayTuning> | undefined): RelayTuning {
  if (options === undefined) return RELAY_DEFAULTS;
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('relay', 'must be an object');
  const name = options.name ?? RELAY_DEFAULTS.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(name)) {
    throw new InvalidOptionError('relay.name', 'must be 1 to 100 letters, digits, or _ . : -');
  }
  const batchSize = options.batchSize ?? RELAY_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new InvalidOptionError('relay.batchSize', 'must be an integer from 1 to 10000');
  }
  return {
    name,
    batchSize,
    leaseMs: positive('relay.leaseMs', options.leaseMs, RELAY_DEFAULTS.leaseMs),
    progressEveryMs: positive('relay.progressEveryMs', options.progressEveryMs, RELAY_DEFAULTS.progressEveryMs),
    pollMs: positive('relay.pollMs', options.pollMs, RELAY_DEFAULTS.pollMs),
  };
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(option, 'must be a positive number');
  }
  return value;
}

/** A lease as the statements need it: on a delivery row, or on one event of a range. */
type ParsedLease = { kind: 'row'; lease: RowLease } | { kind: 'range'; lease: RangeLease };

interface AppendCallResult {
  events: BaseEvent[];
  /** Events appended that are due now for some subscriber. */
  due: number;
  /** The call reused an idempotency key for another event type or organization: nothing of it was stored. */
  conflict?: true;
}

class PgStorage implements PostgresStorage {
  readonly name = 'postgres' as const;
  readonly capabilities = CAPABILITIES;
  private readonly appends: TickBatcher<readonly AppendInput[], AppendCallResult>;
  private readonly completes: TickBatcher<ParsedLease, boolean>;
  private readonly watchers = new Set<() => void>();
  /** Wait before claiming again while committed events sit behind an older transaction (grows while they do). */
  private lagWaitMs: number = LAG_WAIT_MS[0];
  private lagTimer: NodeJS.Timeout | undefined;
  /** Claims made, to rotate which subscriber is served first. */
  private claims = 0;
  /** Subscribers the lean claim sent back, and for how many more claims they skip it. */
  private readonly fullClaims = new Map<string, number>();
  private listening: Promise<Unlisten | null> | null = null;
  /** The last LISTEN attempt failed (dispatchers poll). */
  private listenFailed = false;
  /** Tells publishers this storage listens, while it does. */
  private readonly listenerRow: ListenerRow;
  /** Run statements in callers' transactions as prepared statements too (as `exec` does). */
  private readonly preparesInTransactions: boolean;
  /** Runs the storage's own statements (outside callers' transactions). */
  private readonly exec: Executor;
  private closed = false;
  private readonly retention: RetentionRunner | undefined;
  /** The statements of appends without idempotency keys (fixed text: see `statements/text.ts`). */
  private readonly appendOne: q.TextStatement<[row: q.AppendRow]>;
  private readonly appendSeveral: q.TextStatement<[rows: q.AppendRow[]]>;

  constructor(
    private readonly db: DrizzleDatabase,
    readonly tables: TableNames,
    private readonly ttlMs: number,
    private readonly notify: boolean,
    private readonly synchronousAcks: boolean,
    private readonly logger: Logger,
    private readonly extra: {
      prepare: boolean;
      currentTransaction: (() => unknown) | undefined;
      retention: ReturnType<typeof resolveRetention>;
      warnAt: Required<PostgresWarningOptions>;
      operationTimeoutMs: number;
      relay: RelayTuning;
    },
  ) {
    this.exec = storageExecutor(db, extra.prepare);
    this.preparesInTransactions = preparesOn(db, extra.prepare);
    this.listenerRow = new ListenerRow(
      tables,
      randomUUID(),
      (what, statement) => this.run(what, (signal) => rowsOf(this.exec, statement, signal)),
      logger,
    );
    this.appendOne = q.appendOneStatement(tables, ttlMs);
    this.appendSeveral = q.appendManyStatement(tables, ttlMs);
    if (extra.retention) {
      this.retention = new RetentionRunner(extra.retention, (before, n) => this.retentionBatch(before, n), logger);
    }
    this.appends = new TickBatcher(
      (calls, signal) => this.appendMany(this.exec, calls, signal),
      (inputs) => inputs.length,
      MAX_APPEND_BATCH,
      isConnectionError,
    );
    // One deadline (and retry on a deadlock) per batch rather than per completion: a timer,
    // an AbortController and listeners per delivery cost more than the statement's share.
    // A completion is a no-op once recorded, so sending a batch again is safe.
    this.completes = new TickBatcher(
      (leases) => this.run('complete', (signal) => this.completeMany(this.exec, leases, signal)),
      () => 1,
      500,
      isConnectionError,
    );
  }

  // --- subscribers ---

  async register(subscribers: readonly SubscriberRegistration[]): Promise<void> {
    if (subscribers.length === 0) return;
    const subs = subscribers.map((s) => ({ name: s.name, patterns: [...s.patterns] }));
    await this.run('register', (signal) => rowsOf(this.exec, q.registerStatement(this.tables, subs, this.ttlMs), signal));
  }

  async retire(name: string): Promise<void> {
    await this.run('retire', (signal) => rowsOf(this.exec, q.retireStatement(this.tables, name), signal));
  }

  // --- append ---

  async append(inputs: readonly AppendInput[], options?: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    if (inputs.length === 0) return { events: [], claimed: [], unclaimed: 0 };
    let result: AppendCallResult;
    const ambient = options?.tx === undefined ? this.extra.currentTransaction?.() : undefined;
    if (options?.tx !== undefined || (ambient !== undefined && ambient !== null)) {
      const tx = this.inTransaction(options?.tx ?? ambient);
      // Inside the caller's transaction: no retry, and errors must reach the caller's rollback.
      result = (await this.run('publish', (signal) => this.appendMany(tx, [inputs], signal), false))[0]!;
    } else if (inputs.some((input) => input.idempotencyKey !== undefined)) {
      // Alone: inserting a key that another open transaction holds waits for that transaction,
      // and a publish coalesced with this one must not wait for a lock it never asked about.
      result = (await this.run('publish', (signal) => this.appendMany(this.exec, [inputs], signal), false))[0]!;
    } else {
      result = await this.run('publish', (signal) => this.appends.add(inputs, signal), false);
    }
    // `options.claim` is not used: an event becomes readable only once every older
    // transaction has ended, so handing it out from its own statement could let an
    // older event that commits later fall behind the head.
    if (result.conflict) {
      throw new EventBusError(
        'IDEMPOTENCY_CONFLICT',
        'This idempotency key was already used for an event of another type or organization; nothing was stored',
      );
    }
    return { events: result.events, claimed: [], unclaimed: result.due };
  }

  private async appendMany(
    executor: Executor,
    calls: (readonly AppendInput[])[],
    signal: AbortSignal | undefined,
  ): Promise<AppendCallResult[]> {
    const rows: q.AppendRow[] = [];
    calls.forEach((inputs, call) => {
      for (const input of inputs) rows.push(toAppendRow(input, rows.length, call));
    });
    if (rows.every((r) => r.idempotency_key === null)) return this.appendUnkeyed(executor, calls, rows, signal);
    const result = await rowsOf(executor, q.appendStatement(this.tables, rows, this.ttlMs), signal);
    const inserted = new Map<string, Row>();
    const byKey = new Map<string, BaseEvent>();
    const refused = new Set<number>();
    for (const r of result) {
      if (r.kind === 'i') inserted.set(r.event_id as string, r);
      else if (r.kind === 'c') refused.add(Number(r.due));
      else if (r.idempotency_key != null) byKey.set(r.idempotency_key as string, eventOfRow(r));
    }
    // A key first seen in this statement: the input that was inserted with it.
    const firstWithKey = new Map<string, BaseEvent>();
    const missing = new Set<string>();
    const keysInserted = new Set([...inserted.values()].map((r) => r.idempotency_key));
    for (const row of rows) {
      const key = row.idempotency_key;
      if (key !== null && !keysInserted.has(key) && !byKey.has(key)) missing.add(key);
    }
    if (missing.size > 0) {
      // Stored by a transaction that committed after this statement's snapshot.
      for (const r of await rowsOf(executor, q.eventsByIdempotencyKey(this.tables, [...missing]), signal)) {
        byKey.set(r.idempotency_key as string, eventOfRow(r));
      }
    }
    const out: AppendCallResult[] = [];
    let offset = 0;
    for (const [call, inputs] of calls.entries()) {
      const events: BaseEvent[] = [];
      let due = 0;
      let conflict = refused.has(call);
      for (const input of inputs) {
        const row = rows[offset++]!;
        const key = row.idempotency_key;
        const ins = inserted.get(row.event_id);
        if (ins && (key === null || !firstWithKey.has(key))) {
          const event: BaseEvent = { ...input.event, processed: ins.processed === true, retryCount: 0 };
          if (key !== null) firstWithKey.set(key, event);
          due += Number(ins.due ?? 0);
          events.push(event);
        } else {
          const stored = (key !== null ? byKey.get(key) ?? firstWithKey.get(key) : undefined) ?? input.event;
          // A key another transaction stored after this statement's snapshot, for another tenant or type.
          if (stored.eventType !== input.event.eventType || stored.organizationId !== input.event.organizationId) {
            conflict = true;
          }
          events.push(stored);
        }
      }
      out.push(conflict ? { events: [], due: 0, conflict: true } : { events, due });
    }
    return out;
  }

  /**
   * {@link appendMany} for rows without idempotency keys (every coalesced
   * publish): nothing can be refused or found stored, so a leaner statement
   * of fixed text does, with one event in plain parameters.
   */
  private async appendUnkeyed(
    executor: Executor,
    calls: (readonly AppendInput[])[],
    rows: q.AppendRow[],
    signal: AbortSignal | undefined,
  ): Promise<AppendCallResult[]> {
    if (rows.length === 1) {
      const { text, params } = this.appendOne;
      const r = (await rowsOfText(executor, text, params(rows[0]!), signal))[0];
      // One call (an append has at least one event): the one event.
      const event: BaseEvent = { ...calls[0]![0]!.event, processed: r?.processed === true, retryCount: 0 };
      return [{ events: [event], due: Number(r?.due ?? 0) }];
    }
    const { text, params } = this.appendSeveral;
    const inserted = new Map<string, Row>();
    for (const r of await rowsOfText(executor, text, params(rows), signal)) inserted.set(r.event_id as string, r);
    return calls.map((inputs) => {
      let due = 0;
      const events = inputs.map((input): BaseEvent => {
        const r = inserted.get(input.event.eventId);
        due += Number(r?.due ?? 0);
        return { ...input.event, processed: r?.processed === true, retryCount: 0 };
      });
      return { events, due };
    });
  }

  // --- claims and settling ---

  async claim(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    this.assertOpen();
    // What each subscriber may still take, starting with a different one each
    // claim, so a total limit smaller than the number of subscribers starves none.
    const wants = rotate(
      options.subscribers.filter((s) => s.limit > 0).map((s) => ({ name: s.name, left: Math.floor(s.limit) })),
      this.claims++,
    );
    // A completion statement still running holds back the log's visible horizon: events
    // committed after it started could not be read yet (most claims of a busy dispatcher
    // came back short for it). It ends within a few milliseconds; wait for it first.
    const completing = this.completes.sent();
    if (completing) await completing;
    let left = Math.floor(options.limit);
    const claimed: ClaimedDelivery[] = [];
    let lagging = false;
    let waited = false;
    for (let round = 0; round < CLAIM_ROUNDS && left > 0; round++) {
      const shares = shareOut(wants, left);
      if (shares.length === 0) break;
      const rows = await this.claimRows(options, shares);
      const again = new Set<string>();
      let spilled = false;
      let behind = false;
      for (const r of rows) {
        if (r.kind === 'x') again.add(r.subscriber as string);
        else if (r.kind === 'h') {
          lagging = true;
          spilled = Number(r.attempts) > 0;
        } else if (r.kind === 'g') {
          behind = true;
        } else {
          claimed.push({
            deliveryId: r.delivery_id as string,
            token: r.token as string,
            subscriber: r.subscriber as string,
            attempt: Number(r.attempts),
            leaseExpiresAt: new Date(Number(r.lease_expires_ms)),
            event: eventOfRow(r),
          });
          const want = wants.find((w) => w.name === r.subscriber)!;
          want.left -= 1;
          left -= 1;
        }
      }
      // A subscriber that had its share is done for this claim, unless another claimer
      // moved its head first (look again after it) or ranges whose lease ran out were
      // just spilled into rows (those are due now). Subscribers without a share yet stay.
      for (const share of shares) {
        if (!spilled && !again.has(share.name)) wants.find((w) => w.name === share.name)!.left = 0;
      }
      if (behind) {
        lagging = true;
        // Committed events wait for an older transaction, most often one about to commit: wait
        // a moment and read again, once, rather than hand back nothing. With something claimed,
        // hand it back now (its handlers need not wait); the watchers are woken again shortly.
        if (claimed.length === 0 && !waited) {
          waited = true;
          await sleep(HORIZON_WAIT_MS);
          for (const share of shares) wants.find((w) => w.name === share.name)!.left = share.lim - countFor(claimed, share.name);
          round = -1;
        }
      }
    }
    this.afterClaim(lagging);
    return claimed;
  }

  /**
   * One round of a claim: the lean statement for the subscribers it may serve,
   * the full one for the others and for those the lean one sent back (kind
   * `'f'`). A subscriber sent back goes straight to the full statement for its
   * next {@link LEAN_BACKOFF} claims (its off-path work is likely not done in one).
   */
  private async claimRows(options: ClaimOptions, shares: ClaimShare[]): Promise<Row[]> {
    const asyncCommit = !this.synchronousAcks;
    const full = (list: ClaimShare[]) =>
      this.run('claim', (signal) =>
        rowsOf(this.exec, q.claimStatement(this.tables, options.owner, list, options.leaseMs, asyncCommit, scanWindow(list)), signal),
      );
    const lean: ClaimShare[] = [];
    const rest: ClaimShare[] = [];
    for (const share of shares) {
      const skip = this.fullClaims.get(share.name);
      if (skip === undefined) lean.push(share);
      else {
        rest.push(share);
        if (skip <= 1) this.fullClaims.delete(share.name);
        else this.fullClaims.set(share.name, skip - 1);
      }
    }
    const [leanRows, restRows] = await Promise.all([
      lean.length === 0
        ? ([] as Row[])
        : this.run('claim', (signal) =>
            rowsOf(this.exec, q.leanClaimStatement(this.tables, options.owner, lean, options.leaseMs, asyncCommit, scanWindow(lean)), signal),
          ),
      rest.length === 0 ? ([] as Row[]) : full(rest),
    ]);
    const back = new Set<string>();
    for (const r of leanRows) if (r.kind === 'f') back.add(r.subscriber as string);
    if (back.size === 0) return restRows.length === 0 ? leanRows : [...leanRows, ...restRows];
    for (const name of back) this.fullClaims.set(name, LEAN_BACKOFF);
    const fullRows = await full(lean.filter((share) => back.has(share.name)));
    return [...leanRows.filter((r) => r.kind !== 'f'), ...restRows, ...fullRows];
  }

  /**
   * When more may be due at once (events committed behind an older
   * transaction, or deliveries a claim just moved to rows), wakes the watchers
   * again shortly, waiting longer while the horizon stays pinned.
   */
  private afterClaim(lagging: boolean): void {
    if (!lagging) {
      this.lagWaitMs = LAG_WAIT_MS[0];
      return;
    }
    if (this.lagTimer || this.closed || this.watchers.size === 0) return;
    const wait = this.lagWaitMs;
    this.lagWaitMs = Math.min(LAG_WAIT_MS[1], wait * 2);
    this.lagTimer = setTimeout(() => {
      this.lagTimer = undefined;
      for (const w of this.watchers) w();
    }, wait);
    this.lagTimer.unref();
  }

  async extend(leases: readonly Lease[], leaseMs: number): Promise<string[]> {
    const rowLeases: RowLease[] = [];
    const byRange = new Map<string, { token: string; deliveries: string[] }>();
    for (const lease of leases) {
      const parsed = parseLease(lease);
      if (!parsed) continue;
      if (parsed.kind === 'row') {
        rowLeases.push(parsed.lease);
        continue;
      }
      const key = `${parsed.lease.range}.${parsed.lease.token}`;
      const entry = byRange.get(key) ?? { token: parsed.lease.token, deliveries: [] };
      entry.deliveries.push(lease.deliveryId);
      byRange.set(key, entry);
    }
    const extended: string[] = [];
    const asyncCommit = !this.synchronousAcks;
    if (rowLeases.length > 0) {
      const rows = await this.run('extend', (signal) =>
        rowsOf(this.exec, q.extendRowsStatement(this.tables, rowLeases, leaseMs, asyncCommit), signal),
      );
      for (const r of rows) extended.push(r.id as string);
    }
    if (byRange.size > 0) {
      const ranges = [...byRange.keys()].map((key) => ({ id: key.split('.')[0]!, token: byRange.get(key)!.token }));
      const rows = await this.run('extend', (signal) =>
        rowsOf(this.exec, q.extendRangesStatement(this.tables, ranges, leaseMs, asyncCommit), signal),
      );
      const held = new Set(rows.map((r) => String(r.id)));
      for (const [key, entry] of byRange) if (held.has(key.split('.')[0]!)) extended.push(...entry.deliveries);
    }
    return extended;
  }

  async complete(lease: Lease, options?: { tx?: unknown }): Promise<boolean> {
    const parsed = parseLease(lease);
    if (!parsed) return false;
    if (options?.tx !== undefined) {
      const tx = this.inTransaction(options.tx);
      return (await this.run('complete', (signal) => this.completeMany(tx, [parsed], signal), false))[0]!;
    }
    return this.completes.add(parsed);
  }

  private async completeMany(executor: Executor, leases: ParsedLease[], signal: AbortSignal | undefined): Promise<boolean[]> {
    // In a caller's transaction the commit is theirs: its durability is not ours to change.
    const asyncCommit = executor === this.exec && !this.synchronousAcks;
    const rowLeases = leases.flatMap((l) => (l.kind === 'row' ? [l.lease] : []));
    const ranges = new Map<string, { id: string; token: string; add: string[] }>();
    for (const l of leases) {
      if (l.kind !== 'range') continue;
      const key = `${l.lease.range}.${l.lease.token}`;
      const entry = ranges.get(key) ?? { id: l.lease.range, token: l.lease.token, add: [] };
      entry.add.push(l.lease.pos);
      ranges.set(key, entry);
    }
    const [rowsDone, rangesDone] = await Promise.all([
      rowLeases.length === 0
        ? Promise.resolve([] as Row[])
        : rowsOf(executor, q.completeRowsStatement(this.tables, rowLeases, asyncCommit), signal),
      ranges.size === 0
        ? Promise.resolve([] as Row[])
        : rowsOf(executor, q.completeRangesStatement(this.tables, [...ranges.values()], asyncCommit), signal),
    ]);
    const done = new Set(rowsDone.map((r) => r.id as string));
    for (const r of rangesDone) done.add(`${r.range_id as string}.${r.position as string}`);
    return leases.map((l) => done.has(l.kind === 'row' ? l.lease.id : `${l.lease.range}.${l.lease.pos}`));
  }

  async fail(lease: Lease, outcome: FailOutcome): Promise<boolean> {
    const lastError = `${outcome.error.name}: ${outcome.error.message}`;
    return this.settle(
      'fail',
      lease,
      outcome.retryAt === null
        ? { kind: 'dead', error: outcome.error, lastError }
        : { kind: 'retry', retryAt: outcome.retryAt, error: outcome.error, lastError },
    );
  }

  async release(lease: Lease): Promise<boolean> {
    return this.settle('release', lease, { kind: 'release' });
  }

  private async settle(what: string, lease: Lease, outcome: q.Outcome): Promise<boolean> {
    const parsed = parseLease(lease);
    if (!parsed) return false;
    const asyncCommit = !this.synchronousAcks;
    const statement =
      parsed.kind === 'row'
        ? q.settleRowStatement(this.tables, parsed.lease, outcome, asyncCommit)
        : q.settleRangeEventStatement(this.tables, parsed.lease, outcome, asyncCommit);
    const rows = await this.run(what, (signal) => rowsOf(this.exec, statement, signal));
    return rows.length > 0;
  }

  // --- queries ---

  async nextDueAt(subscribers: readonly string[]): Promise<Date | null> {
    if (subscribers.length === 0) return null;
    const rows = await this.run('nextDueAt', (signal) => rowsOf(this.exec, q.nextDueStatement(this.tables, [...subscribers]), signal));
    const at = rows[0]?.at;
    return at == null ? null : new Date(Number(at));
  }

  async backlog(subscribers: readonly string[]): Promise<Backlog> {
    if (subscribers.length === 0) return { due: 0, leased: 0, retrying: 0, scheduled: 0 };
    const rows = await this.run('backlog', (signal) => rowsOf(this.exec, q.backlogStatement(this.tables, [...subscribers]), signal));
    const r = rows[0] ?? {};
    return {
      due: Number(r.due ?? 0),
      leased: Number(r.leased ?? 0),
      retrying: Number(r.retrying ?? 0),
      scheduled: Number(r.scheduled ?? 0),
    };
  }

  async backlogBySubscriber(subscribers?: readonly string[]): Promise<SubscriberBacklog[]> {
    if (subscribers && subscribers.length === 0) return [];
    const names = subscribers ? [...subscribers] : null;
    const rows = await this.run('backlog', (signal) => rowsOf(this.exec, q.backlogBySubscriberStatement(this.tables, names), signal));
    return rows.map((r) => ({
      subscriber: r.subscriber as string,
      due: Number(r.due),
      leased: Number(r.leased),
      retrying: Number(r.retrying),
      scheduled: Number(r.scheduled),
      oldestPendingAgeMs: r.oldest_ms == null ? null : Math.max(0, Number(r.oldest_ms)),
      lastSeenAt: new Date(Number(r.last_seen_ms)),
    }));
  }

  async timeline(query: TimelineQuery): Promise<TimelinePage> {
    const limit = query.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidOptionError('limit', 'must be an integer from 1 to 1000');
    }
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    const rows = await this.run('timeline', (signal) =>
      rowsOf(this.exec, q.timelineStatement(this.tables, query, limit, after, this.ttlMs), signal),
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
    const rows = await this.run('replay', (signal) =>
      rowsOf(this.exec, q.replayStatement(this.tables, query, query.subscribers, this.ttlMs), signal),
    );
    return Number(rows[0]?.scheduled ?? 0);
  }

  async listDeadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    const where = deadLetterWhere(filter);
    if (!where) return [];
    const limit = filter.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidOptionError('limit', 'must be a positive integer');
    const rows = await this.run('listDeadLetters', (signal) =>
      rowsOf(this.exec, q.listDeadLettersStatement(this.tables, where, limit), signal),
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
    const rows = await this.run('redrive', (signal) => rowsOf(this.exec, q.redriveStatement(this.tables, where, limit), signal));
    return Number(rows[0]?.redriven ?? 0);
  }

  async discard(id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const rows = await this.run('discard', (signal) => rowsOf(this.exec, q.discardStatement(this.tables, id), signal));
    return rows.length > 0;
  }

  // --- outbox relay (with a cross-process transport) ---

  async startRelay(transport: Transport, options: RelayOptions): Promise<RelayHandle> {
    this.assertOpen();
    const deps = {
      exec: this.exec,
      tables: this.tables,
      transport,
      logger: this.logger,
      ttlMs: this.ttlMs,
      watch: (onWork: () => void) => this.watch(onWork),
    };
    return this.run('start the relay', () => startOutboxRelay(deps, options, this.extra.relay));
  }

  async relayBacklog(): Promise<number> {
    const rows = await this.run('relay backlog', () => rowsOf(this.exec, relayBacklogStatement(this.tables, this.extra.relay.name, 1000)));
    return Number(rows[0]?.unsent ?? 0);
  }

  async recordDeadLetter(record: DeadLetterRecord): Promise<void> {
    await this.run('record a dead letter', () => rowsOf(this.exec, q.recordDeadLetterStatement(this.tables, record)));
  }

  async health(): Promise<StorageHealth> {
    const rows = await this.run('health', (signal) => rowsOf(this.exec, q.healthStatement(this.tables, this.ttlMs), signal));
    const r = rows[0] ?? {};
    return {
      unprocessed: Number(r.unprocessed ?? 0),
      deadLetters: Number(r.dead_letters ?? 0),
      oldestPendingAgeMs: r.oldest_ms == null ? null : Math.max(0, Number(r.oldest_ms)),
    };
  }

  async warnings(): Promise<HealthWarning[]> {
    const { maxTransactionAgeMs, maxDeadTuples } = this.extra.warnAt;
    const rows = await this.run('warnings', (signal) =>
      rowsOf(this.exec, q.warningsStatement(this.tables, maxTransactionAgeMs, maxDeadTuples), signal),
    );
    const out: HealthWarning[] = rows.map((r) => warningOfRow(r, this.extra.warnAt));
    if (!this.notify || this.listenFailed) {
      out.push({
        code: 'LISTEN_UNAVAILABLE',
        message: this.notify
          ? 'LISTEN failed: dispatchers poll for work (see the logged error); new events wait up to dispatch.pollIntervalMs'
          : 'LISTEN is off (notify: false): dispatchers poll for work; new events wait up to dispatch.pollIntervalMs',
      });
    }
    return out;
  }

  async purge(options: PurgeOptions): Promise<number> {
    if (!(options?.olderThan instanceof Date) || Number.isNaN(options.olderThan.getTime())) {
      throw new InvalidOptionError('olderThan', 'must be a Date');
    }
    const batch = options.batchSize ?? 1000;
    if (!Number.isInteger(batch) || batch < 1) throw new InvalidOptionError('batchSize', 'must be a positive integer');
    let total = 0;
    for (;;) {
      const rows = await this.run('purge', (signal) =>
        rowsOf(this.exec, q.purgeStatement(this.tables, options.olderThan, batch, this.ttlMs), signal),
      );
      total += rows.length;
      if (rows.length < batch) return total;
    }
  }

  retentionStats(): RetentionStats {
    return this.retention?.stats() ?? { runs: 0, skipped: 0, purged: 0, lastRunAt: null, lastPurged: 0 };
  }

  /** One batch of retention, the lock and the purge in one statement; `null` when another process holds the lock. */
  private async retentionBatch(olderThan: Date, batchSize: number): Promise<number | null> {
    const [r] = await this.run('retention', (signal) =>
      rowsOf(this.exec, q.retentionPurgeStatement(this.tables, this.tables.lockKey, olderThan, batchSize, this.ttlMs), signal),
    );
    return r?.locked === true ? Number(r.n) : null;
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
    // Registered even without LISTEN: the storage itself wakes watchers when a claim saw more coming.
    this.watchers.add(onWork);
    // A watcher is a running bus: retention runs while there is one.
    this.retention?.start();
    let stopped = false;
    const unwatch = async () => {
      if (stopped) return;
      stopped = true;
      this.watchers.delete(onWork);
      if (this.watchers.size === 0) await Promise.all([this.stopListening(), this.retention?.stop()]);
    };
    if (!this.notify) return unwatch;
    if (!this.listening) {
      const wake = () => {
        for (const w of this.watchers) w();
      };
      const reconnected = () => {
        void this.listenerRow.refresh();
        wake();
      };
      // The row first, LISTEN second: an event whose publish saw no listener yet is found by the
      // watcher's first claim, which follows watch().
      this.listening = this.listenerRow
        .start()
        .then(() => listen(this.db, this.tables.channel, wake, reconnected, this.logger))
        .then(async (unlisten) => {
          if (unlisten) this.listenFailed = false;
          else await this.listenerRow.stop(); // a client that cannot LISTEN: nobody to notify
          return unlisten;
        })
        .catch(async (err: unknown) => {
          this.logger.warn({ err }, 'event-bus: LISTEN failed; dispatchers will poll');
          this.listenFailed = true;
          await this.listenerRow.stop();
          return null;
        });
    }
    await this.listening;
    return unwatch;
  }

  private async stopListening(): Promise<void> {
    const listening = this.listening;
    this.listening = null;
    const unlisten = await listening;
    if (unlisten) await Promise.all([unlisten().catch(() => {}), this.listenerRow.stop()]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.appends.drain(), this.completes.drain()]);
    if (this.lagTimer) clearTimeout(this.lagTimer);
    this.watchers.clear();
    await Promise.all([this.stopListening(), this.retention?.stop()]);
  }

  // --- helpers ---

  /** The executor of a caller's transaction (a bad `tx` is an `INVALID_OPTION`). */
  private inTransaction(tx: unknown): Executor {
    return transactionExecutor(asExecutor(tx), this.preparesInTransactions);
  }

  private assertOpen(): void {
    if (this.closed) throw new EventBusError('BUS_STOPPED', 'The postgres storage is closed');
  }

  /**
   * Runs one storage operation within `operationTimeoutMs`: connection
   * failures and no answer in time become `STORAGE_UNAVAILABLE`; a deadlock
   * or serialization failure (possible when two statements lock the same
   * events in another order) is retried within the same bound, since each
   * operation is one statement that rolled back as a whole. `fn` gets the
   * deadline's signal for its statements.
   */
  private async run<T>(what: string, fn: (signal: AbortSignal | undefined) => Promise<T>, retry = true): Promise<T> {
    try {
      return await withDeadline(this.extra.operationTimeoutMs, async (signal) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await fn(signal);
          } catch (err) {
            if (retry && attempt < 4 && isTransient(err) && !signal?.aborted) continue;
            throw err;
          }
        }
      });
    } catch (err) {
      throw notMigratedError(err, what) ?? wrapError(err, what);
    }
  }
}

/** One row of the warnings statement as a {@link HealthWarning}. */
function warningOfRow(r: Row, limits: Required<PostgresWarningOptions>): HealthWarning {
  const table = r.tbl == null ? undefined : String(r.tbl);
  switch (r.kind) {
    case 'autovacuum':
      return table
        ? {
            code: 'AUTOVACUUM_DISABLED',
            table,
            message: `autovacuum is disabled on ${table} (autovacuum_enabled = false): dead rows pile up and the log's scans slow down; run ALTER TABLE ... RESET (autovacuum_enabled)`,
          }
        : {
            code: 'AUTOVACUUM_DISABLED',
            message:
              "autovacuum is off on this server (autovacuum or track_counts): the bus's tables are never vacuumed; turn it on, or VACUUM them on a schedule",
          };
    case 'dead_tuples':
      return {
        code: 'DEAD_TUPLES_HIGH',
        table,
        count: Number(r.n),
        message: `${table} has ${Number(r.n)} dead tuples (threshold ${limits.maxDeadTuples}): VACUUM it, and check that autovacuum keeps up`,
      };
    default:
      return {
        code: 'XMIN_HORIZON_PINNED',
        count: Number(r.n),
        ageMs: Number(r.age_ms),
        message: `a transaction has been open for ${Math.round(Number(r.age_ms) / 1000)} s (${Number(r.n)} over ${limits.maxTransactionAgeMs} ms): it holds back vacuum, and events committed after it began are not delivered until it ends; find it in pg_stat_activity (or pg_prepared_xacts) and end it`,
      };
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

/**
 * Reads a lease back: a delivery row's token is a UUID; an event of a range
 * has `L.<range id>.<range token>.<tx_id>.<position>` (so settling it needs no
 * lookup). Anything else cannot be a lease of this storage.
 */
function parseLease(lease: Lease): ParsedLease | null {
  const { deliveryId, token } = lease;
  if (typeof deliveryId !== 'string' || typeof token !== 'string' || !isUuid(deliveryId)) return null;
  if (isUuid(token)) return { kind: 'row', lease: { id: deliveryId, token } };
  const parts = token.split('.');
  if (parts.length !== 5 || parts[0] !== 'L') return null;
  const [, range, rangeToken, tx, pos] = parts as [string, string, string, string, string];
  if (!DIGITS.test(range) || !isUuid(rangeToken) || !DIGITS.test(tx) || !DIGITS.test(pos)) return null;
  return { kind: 'range', lease: { range, token: rangeToken, tx, pos } };
}

const DIGITS = /^\d{1,20}$/;

/**
 * Splits what is left of a claim's total limit over the subscribers that
 * still want some, in turn, each up to what it wants.
 */
function shareOut(wants: readonly { name: string; left: number }[], total: number): ClaimShare[] {
  const shares = wants.filter((w) => w.left > 0).map((w) => ({ name: w.name, want: w.left, lim: 0 }));
  let left = total;
  while (left > 0) {
    const open = shares.filter((s) => s.lim < s.want);
    if (open.length === 0) break;
    const each = Math.max(1, Math.floor(left / open.length));
    for (const s of open) {
      const give = Math.min(each, s.want - s.lim, left);
      s.lim += give;
      left -= give;
      if (left === 0) break;
    }
  }
  return shares.filter((s) => s.lim > 0).map(({ name, lim }) => ({ name, lim }));
}

/** How many of `claimed` are for `subscriber`. */
function countFor(claimed: readonly ClaimedDelivery[], subscriber: string): number {
  let n = 0;
  for (const d of claimed) if (d.subscriber === subscriber) n += 1;
  return n;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The list started at `offset` (modulo its length). */
function rotate<T>(list: T[], offset: number): T[] {
  if (list.length < 2) return list;
  const at = offset % list.length;
  return [...list.slice(at), ...list.slice(0, at)];
}

function toAppendRow(input: AppendInput, ord: number, call: number): q.AppendRow {
  const e = input.event;
  return {
    ord,
    call,
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
  const refuse = () => new InvalidOptionError('cursor', 'not a cursor returned by this storage');
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw refuse();
  const text = Buffer.from(cursor, 'base64url').toString();
  // Base64url decoding ignores what it cannot read: only the exact encoding of a cursor counts.
  if (Buffer.from(text).toString('base64url') !== cursor) throw refuse();
  const parts = text.split('|');
  const [tag, createdAt, id] = parts;
  if (parts.length !== 3 || tag !== 'p1' || !createdAt || !id || !isUuid(id) || !isRealTimestamp(createdAt)) {
    throw refuse();
  }
  return { createdAt, id };
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff]` naming a moment that exists (year 1 to 9999, no 30 February, no 25:61). */
function isRealTimestamp(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?$/.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
