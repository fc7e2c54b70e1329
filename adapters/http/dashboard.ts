/**
 * The dashboard's routes as plain functions, so that each framework adapter
 * only translates requests and replies:
 *
 * - `GET {prefix}/dashboard`: the page (HTML with its script and styles
 *   inline, no data, so it is served without `authorize`; everything it shows
 *   comes from the routes below);
 * - `GET {prefix}/dashboard/api/overview | dead-letters | timeline | events/:eventId`
 *   and `POST {prefix}/dashboard/api/dead-letters/redrive | discard`: JSON,
 *   behind `authorize`; the POST routes refused in read-only mode;
 * - `GET {prefix}/dashboard/api/stream`: server-sent events, a `change` event
 *   when this process published or settled something (at most twice a second).
 *
 * The dashboard shows every organization's events and dead letters: mount it
 * where `authorize` admits operators only.
 */
import { InvalidOptionError } from '@blawby/event-bus';
import type { Catalog, DeadLetterFilter, EventBus, EventTypeOf, Logger } from '@blawby/event-bus';
import { dashboardMonitor, throttle, type DashboardMonitor } from './dashboard-monitor';
import { DASHBOARD_HTML } from './dashboard-page';
import type { TextResult } from './metrics-route';
import { errorResult, fail, type HttpResult } from './route-errors';
import type { Identity } from './routes';
import { parseTimelineQuery, type RawQuery } from './timeline-query';

/** The `dashboard` route option of the framework adapters: `true`, or these options. */
export interface DashboardOptions {
  /** Show everything, change nothing: no redrive or discard (default `false`). */
  readOnly?: boolean;
}

/** A request to one of the dashboard's JSON routes, as the framework adapter read it. */
export interface DashboardApiRequest {
  method: string;
  /** The path after `{prefix}/dashboard/api/`, e.g. `overview` or `events/123`. */
  path: string;
  query: RawQuery;
  /** The `Content-Type` header (POST bodies must be JSON). */
  contentType?: string | undefined;
  /** The parsed JSON body of a POST. */
  body?: unknown;
  /** What `authorize` returned; `null`: 401. */
  identity: Identity | null;
  logger?: Logger | undefined;
}

/** Most dead letters a dry run counts, and a redrive by filter moves, in one request. */
export const DASHBOARD_MAX_REDRIVE = 10_000;
const MAX_STRING = 255;

/** The dashboard of one bus: its page, JSON routes and live stream. */
export interface Dashboard {
  readonly readOnly: boolean;
  /** `GET {prefix}/dashboard`. */
  page(): TextResult;
  /**
   * Whether `identity` may open the live stream: `null` when it may, else the
   * answer to send (401, or 500 for an identity that is not one).
   */
  refuse(identity: Identity | null, logger?: Logger): HttpResult | null;
  /** The JSON routes (never throws). */
  api(request: DashboardApiRequest): Promise<HttpResult>;
  /**
   * Starts a live stream for one client: `write` is called with SSE text
   * (a first `ready` event, `change` events, a comment every 15 s to keep
   * proxies from closing it). Returns the function that ends it.
   */
  stream(write: (chunk: string) => void): () => void;
}

/** `true` or an options object turned into options; `undefined` when the dashboard is off. */
export function resolveDashboardOptions(value: boolean | DashboardOptions | undefined): Required<DashboardOptions> | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { readOnly: false };
  if (typeof value !== 'object' || value === null) {
    throw new InvalidOptionError('dashboard', 'must be true or { readOnly?: boolean }');
  }
  if (value.readOnly !== undefined && typeof value.readOnly !== 'boolean') {
    throw new InvalidOptionError('dashboard.readOnly', 'must be a boolean');
  }
  return { readOnly: value.readOnly ?? false };
}

/**
 * Other news for the live stream than what this process observes. The
 * standalone dashboard of the CLI publishes and handles nothing itself, so it
 * passes the storage's notifications (another process published).
 */
export interface DashboardSignals {
  /** Calls `listener` when something may have changed; returns what stops it. */
  changes?(listener: () => void): () => void;
}

/** Creates the dashboard of `bus` (its counters start now, shared by every dashboard of the bus). */
export function createDashboard<C extends Catalog>(
  bus: EventBus<C>,
  options: DashboardOptions = {},
  signals: DashboardSignals = {},
): Dashboard {
  const monitor = dashboardMonitor(bus);
  const readOnly = options.readOnly ?? false;
  return {
    readOnly,
    page: () => ({ status: 200, contentType: 'text/html; charset=utf-8', body: DASHBOARD_HTML }),
    refuse: (identity, logger) => refusal(identity, logger),
    api: async (request) => {
      try {
        return await answer(bus, monitor, readOnly, request);
      } catch (err) {
        return errorResult(err, request.logger, 'dashboard request');
      }
    },
    stream: (write) => {
      write('retry: 2000\nevent: ready\ndata: {}\n\n');
      const changed = () => write(`event: change\ndata: ${JSON.stringify({ at: Date.now() })}\n\n`);
      const stopMonitor = monitor.onChange(changed);
      const signalled = throttle(changed, 500);
      const stopSignals = signals.changes?.(signalled.call);
      const ping = setInterval(() => write(': ping\n\n'), 15_000);
      ping.unref?.();
      return () => {
        stopMonitor();
        stopSignals?.();
        signalled.cancel();
        clearInterval(ping);
      };
    },
  };
}

function isIdentity(value: unknown): value is Identity {
  if (typeof value !== 'object' || value === null) return false;
  const { actor, organizationIds } = value as Record<string, unknown>;
  return typeof actor === 'string' && actor.length > 0 && Array.isArray(organizationIds);
}

function refusal(identity: Identity | null | undefined, logger: Logger | undefined): HttpResult | null {
  if (identity === null || identity === undefined) return fail(401, 'UNAUTHORIZED', 'Authentication required');
  if (!isIdentity(identity)) {
    logger?.error({ route: 'dashboard' }, 'authorize returned an invalid identity');
    return fail(500, 'INTERNAL_ERROR', 'Internal error');
  }
  return null;
}

/** SSE response headers of the live stream. */
export const DASHBOARD_STREAM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
});

/** A short query or body string, or `undefined`; `null` when it is present but unusable. */
function text(value: unknown): string | undefined | null {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > MAX_STRING || value.includes('\u0000')) return null;
  return value;
}

function invalid(path: string): HttpResult {
  return fail(400, 'INVALID_QUERY', 'Invalid dashboard request', [
    { path: [path], code: 'invalid_value', message: `must be a string of at most ${MAX_STRING} characters` },
  ]);
}

/** The dead-letter filter of a query or body (`subscriber`, `eventType`, `eventId`). */
function deadLetterFilter(source: Record<string, unknown>): DeadLetterFilter | HttpResult {
  const filter: DeadLetterFilter = {};
  for (const key of ['subscriber', 'eventType', 'eventId'] as const) {
    const value = text(source[key]);
    if (value === null) return invalid(key);
    if (value !== undefined) filter[key] = value;
  }
  return filter;
}

const isResult = (value: unknown): value is HttpResult =>
  typeof value === 'object' && value !== null && 'status' in value && 'body' in value;

async function answer<C extends Catalog>(
  bus: EventBus<C>,
  monitor: DashboardMonitor,
  readOnly: boolean,
  request: DashboardApiRequest,
): Promise<HttpResult> {
  const refused = refusal(request.identity, request.logger);
  if (refused) return refused;
  const path = request.path.replace(/^\/+|\/+$/g, '');
  const notFound = () => ({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'No such dashboard route' } } });

  if (request.method === 'GET') {
    if (path === 'overview') {
      const [health, subscribers] = await Promise.all([bus.health(), bus.storage.backlogBySubscriber()]);
      return {
        status: 200,
        body: {
          readOnly,
          storage: bus.storage.name,
          generatedAt: new Date().toISOString(),
          countingSince: monitor.countingSince.toISOString(),
          health,
          subscribers,
          stats: bus.stats(),
          catalogTypes: Object.keys(bus.catalog).sort(),
          minutes: monitor.series(),
          eventTypes: monitor.eventTypes(),
        },
      };
    }
    if (path === 'dead-letters') {
      const filter = deadLetterFilter(request.query);
      if (isResult(filter)) return filter;
      return { status: 200, body: { deadLetters: await bus.deadLetters.list({ ...filter, limit: 200 }) } };
    }
    if (path === 'timeline') {
      const parsed = parseTimelineQuery(bus.catalog, request.query);
      if (!parsed.success) return fail(400, 'INVALID_QUERY', 'Invalid timeline query', parsed.issues);
      const query = parsed.query;
      const page = await bus.timeline({ ...query, eventTypes: query.eventTypes as EventTypeOf<C>[] | undefined });
      return { status: 200, body: page };
    }
    const detail = /^events\/([^/]+)$/.exec(path);
    if (detail) {
      const eventId = text(decodeURIComponent(detail[1]!));
      if (!eventId) return invalid('eventId');
      const deadLetters = await bus.deadLetters.list({ eventId, limit: 200 });
      return { status: 200, body: { eventId, deadLetters, attempts: monitor.attemptsOf(eventId) } };
    }
    return notFound();
  }

  if (request.method === 'POST' && (path === 'dead-letters/redrive' || path === 'dead-letters/discard')) {
    if (readOnly) return fail(403, 'FORBIDDEN', 'The dashboard is read-only');
    // JSON only: a cross-site form cannot send it without the browser asking first.
    if (!/^application\/json\b/i.test(request.contentType ?? '')) {
      return { status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send application/json' } } };
    }
    const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
    if (path === 'dead-letters/discard') {
      const id = text(body.id);
      if (!id) return invalid('id');
      return { status: 200, body: { discarded: await bus.deadLetters.discard(id) } };
    }
    // One dead letter is named by its event and subscriber, so the dry run and the redrive match the same ones.
    const filter = deadLetterFilter(body);
    if (isResult(filter)) return filter;
    const target: DeadLetterFilter = { ...filter, limit: DASHBOARD_MAX_REDRIVE };
    if (body.dryRun === true) {
      const matching = await bus.deadLetters.list(target);
      return { status: 200, body: { dryRun: true, count: matching.length } };
    }
    return { status: 200, body: { dryRun: false, redriven: await bus.deadLetters.redrive(target) } };
  }
  return notFound();
}
