/**
 * Prometheus metrics of an event bus, on prom-client, built on the bus's
 * public observation seam (`bus.observe`): counters and histograms per event
 * type and subscriber as deliveries happen, and gauges of the backlog read
 * from the storage when Prometheus scrapes.
 *
 * @example
 * ```ts
 * import { createEventBus } from '@blawby/event-bus';
 * import { eventBusMetrics } from '@blawby/event-bus/prometheus';
 * import { eventBusPlugin } from '@blawby/event-bus/fastify';
 *
 * const bus = createEventBus({ catalog, storage });
 * const metrics = eventBusMetrics(bus);               // or eventBusMetrics(bus, { registry: myRegistry })
 * await app.register(eventBusPlugin, { bus, routes: { health: true, metrics } }); // GET /events/metrics
 * ```
 *
 * @module @blawby/event-bus/prometheus
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Backlog, BusObserver, Catalog, EventBus, HealthReport, Logger } from '@blawby/event-bus';

/** Default buckets of the handler duration histogram, in seconds. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Default buckets of the delivery lag histogram, in seconds (up to an hour). */
export const DEFAULT_LAG_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** How long one scrape's storage reads are reused by the gauges of the same scrape. */
const SNAPSHOT_TTL_MS = 1000;

/** Options of {@link eventBusMetrics}. */
export interface EventBusMetricsOptions {
  /** Where the metrics are registered (default: a new `Registry`). */
  registry?: Registry;
  /** Prefix of every metric name (default `'event_bus_'`). Use another one for a second bus on the same registry. */
  prefix?: string;
  /**
   * Subscribers whose pending deliveries are reported from the first scrape,
   * even before they ran anything in this process. Every subscriber that runs
   * a delivery here is added on its own.
   */
  subscribers?: readonly string[];
  /** Buckets of `handler_duration_seconds` (default {@link DEFAULT_DURATION_BUCKETS}). */
  durationBuckets?: readonly number[];
  /** Buckets of `delivery_lag_seconds` (default {@link DEFAULT_LAG_BUCKETS}). */
  lagBuckets?: readonly number[];
  /** Where a scrape whose storage reads failed is logged (warn); silent when absent. */
  logger?: Logger;
}

/** The metrics of one bus; pass it as the adapters' `metrics` route option. */
export interface EventBusMetrics {
  /** The registry holding the metrics. */
  readonly registry: Registry;
  /** The `Content-Type` of {@link metrics}' text. */
  readonly contentType: string;
  /** Every metric of the registry in the Prometheus text format (this reads the storage for the gauges). */
  metrics(): Promise<string>;
  /** Stops observing the bus and removes this bus's metrics from the registry (idempotent). */
  close(): void;
}

type Labels = 'event_type' | 'subscriber';

/**
 * Registers the bus's metrics (names shown with the default prefix `event_bus_`):
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `events_published_total` | counter | `event_type` |
 * | `deliveries_succeeded_total` | counter | `event_type`, `subscriber` |
 * | `delivery_failures_total` (attempts that threw, retried or dead-lettered) | counter | `event_type`, `subscriber` |
 * | `delivery_retries_total` | counter | `event_type`, `subscriber` |
 * | `dead_letters_total` | counter | `event_type`, `subscriber` |
 * | `leases_lost_total` | counter | `event_type`, `subscriber` |
 * | `handler_duration_seconds` | histogram | `event_type`, `subscriber`, `outcome` |
 * | `delivery_lag_seconds` (event timestamp to its first attempt's start) | histogram | `event_type`, `subscriber` |
 * | `deliveries_pending` (from `storage.backlog`) | gauge | `subscriber`, `state`: due, leased, retrying, scheduled |
 * | `unprocessed_events`, `dead_letters_waiting`, `oldest_pending_age_seconds` (from `bus.health()`) | gauge | |
 * | `deliveries_in_flight` (this process, `bus.stats()`) | gauge | |
 * | `storage_up` (1 when the storage answered the last scrape) | gauge | |
 *
 * The counters and histograms count what this process published and ran;
 * the backlog gauges are read from the storage, so they cover every process
 * (they read `NaN`, and `storage_up` 0, when the storage did not answer).
 * Pending counts cover the subscribers named in `subscribers` and those that
 * ran a delivery in this process; the oldest pending age is over all subscribers.
 */
export function eventBusMetrics<C extends Catalog>(bus: EventBus<C>, options: EventBusMetricsOptions = {}): EventBusMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'event_bus_';
  const registers = [registry];
  const names: string[] = [];
  const name = (suffix: string) => {
    names.push(`${prefix}${suffix}`);
    return `${prefix}${suffix}`;
  };
  const perDelivery = (suffix: string, help: string) =>
    new Counter<Labels>({ name: name(suffix), help, labelNames: ['event_type', 'subscriber'], registers });

  const published = new Counter({
    name: name('events_published_total'),
    help: 'Events published by this process.',
    labelNames: ['event_type'],
    registers,
  });
  const succeeded = perDelivery('deliveries_succeeded_total', 'Deliveries whose handler succeeded.');
  const failures = perDelivery('delivery_failures_total', 'Attempts whose handler threw (retried or dead-lettered).');
  const retries = perDelivery('delivery_retries_total', 'Failed attempts scheduled to run again.');
  const deadLetters = perDelivery('dead_letters_total', 'Deliveries moved to the dead letters.');
  const leasesLost = perDelivery('leases_lost_total', 'Leases taken over by another worker.');
  const duration = new Histogram<Labels | 'outcome'>({
    name: name('handler_duration_seconds'),
    help: 'Handler time per attempt (middleware included).',
    labelNames: ['event_type', 'subscriber', 'outcome'],
    buckets: [...(options.durationBuckets ?? DEFAULT_DURATION_BUCKETS)],
    registers,
  });
  const lag = new Histogram<Labels>({
    name: name('delivery_lag_seconds'),
    help: "Time from an event's timestamp to the start of its first attempt, per subscriber.",
    labelNames: ['event_type', 'subscriber'],
    buckets: [...(options.lagBuckets ?? DEFAULT_LAG_BUCKETS)],
    registers,
  });

  const subscribers = new Set(options.subscribers ?? []);
  const snapshot = storageSnapshot(bus, subscribers, options.logger);
  const pending: Gauge<'subscriber' | 'state'> = new Gauge({
    name: name('deliveries_pending'),
    help: 'Unfinished deliveries per subscriber, by state (from the storage).',
    labelNames: ['subscriber', 'state'],
    registers,
    async collect() {
      const read = await snapshot();
      pending.reset();
      const backlogs = read?.backlogs ?? [...subscribers].map((subscriber) => [subscriber, undefined] as const);
      for (const [subscriber, backlog] of backlogs) {
        for (const state of BACKLOG_STATES) pending.set({ subscriber, state }, backlog ? backlog[state] : NaN);
      }
    },
  });
  const fromHealth = (suffix: string, help: string, value: (health: HealthReport) => number) => {
    const gauge: Gauge = new Gauge({
      name: name(suffix),
      help,
      registers,
      async collect() {
        const read = await snapshot();
        gauge.set(read ? value(read.health) : NaN);
      },
    });
  };
  fromHealth('unprocessed_events', 'Events not yet processed by every subscriber (from the storage).', (h) => h.unprocessed);
  fromHealth('dead_letters_waiting', 'Dead letters waiting for redrive or discard (from the storage).', (h) => h.deadLetters);
  fromHealth(
    'oldest_pending_age_seconds',
    'Age of the oldest due, unprocessed event, over all subscribers; 0 when there is none (from the storage).',
    (h) => (h.oldestPendingAgeMs ?? 0) / 1000,
  );
  const inFlight: Gauge = new Gauge({
    name: name('deliveries_in_flight'),
    help: 'Handlers running in this process.',
    registers,
    collect() {
      inFlight.set(bus.stats().inFlight);
    },
  });
  const up: Gauge = new Gauge({
    name: name('storage_up'),
    help: 'Whether the storage answered the reads of the last scrape (1) or not (0).',
    registers,
    async collect() {
      up.set((await snapshot()) ? 1 : 0);
    },
  });

  const observer: BusObserver = {
    published: ({ event }) => published.inc({ event_type: event.eventType }),
    deliveryStarted: ({ event, subscriber, attempt, startedAt }) => {
      subscribers.add(subscriber);
      if (attempt !== 1) return; // later attempts wait for their backoff, not for the bus
      const lagMs = Math.max(0, startedAt.getTime() - event.timestamp.getTime());
      lag.observe({ event_type: event.eventType, subscriber }, lagMs / 1000);
    },
    deliverySettled: ({ event, subscriber, outcome, durationMs }) => {
      const labels = { event_type: event.eventType, subscriber };
      duration.observe({ ...labels, outcome }, durationMs / 1000);
      if (outcome === 'succeeded') succeeded.inc(labels);
      else if (outcome === 'retrying' || outcome === 'dead-lettered') failures.inc(labels);
    },
    retryScheduled: ({ event, subscriber }) => retries.inc({ event_type: event.eventType, subscriber }),
    deadLettered: ({ event, subscriber }) => deadLetters.inc({ event_type: event.eventType, subscriber }),
    leaseLost: ({ event, subscriber }) => leasesLost.inc({ event_type: event.eventType, subscriber }),
  };
  const stopObserving = bus.observe(observer);

  let closed = false;
  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    metrics: () => registry.metrics(),
    close() {
      if (closed) return;
      closed = true;
      stopObserving();
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

const BACKLOG_STATES = ['due', 'leased', 'retrying', 'scheduled'] as const;

interface StorageRead {
  health: HealthReport;
  backlogs: (readonly [string, Backlog])[];
}

/**
 * The storage reads of one scrape, shared by its gauges (each gauge's
 * `collect` asks; the first starts the reads). `undefined` when the storage failed.
 */
function storageSnapshot<C extends Catalog>(
  bus: EventBus<C>,
  subscribers: ReadonlySet<string>,
  logger: Logger | undefined,
): () => Promise<StorageRead | undefined> {
  let last: { at: number; read: Promise<StorageRead | undefined> } | undefined;
  return () => {
    const now = Date.now();
    if (last && now - last.at < SNAPSHOT_TTL_MS) return last.read;
    const read = (async (): Promise<StorageRead | undefined> => {
      try {
        const names = [...subscribers].sort();
        const [health, backlogs] = await Promise.all([
          bus.health(),
          Promise.all(names.map((subscriber) => bus.storage.backlog([subscriber]))),
        ]);
        return { health, backlogs: names.map((subscriber, i) => [subscriber, backlogs[i]!] as const) };
      } catch (err) {
        logger?.warn({ err }, 'event bus metrics: the storage did not answer; storage gauges read NaN');
        return undefined;
      }
    })();
    last = { at: now, read };
    return read;
  };
}
