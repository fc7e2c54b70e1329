/**
 * `POST {prefix}/ingest`: CloudEvents 1.0 over HTTP (structured, binary and
 * batch mode) validated against the catalog and stored once per CloudEvents
 * `id`, as a plain function returning `{ status, body }`. The framework
 * adapters only hand it the headers and the body, and enforce the body limit.
 */
import { EventBusError, fromCloudEvent, uuidv7 } from '@blawby/event-bus';
import type { BaseEvent, Catalog, EventBus, EventDefinition, EventMetadata, Logger } from '@blawby/event-bus';
import type { RequestMetadata } from './request-events';
import type { HttpResult, Identity } from './routes';
import type { QueryIssue } from './timeline-query';

/** Media type of one CloudEvent in the structured JSON format. */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json';
/** Media type of a JSON array of structured CloudEvents (batch mode). */
export const CLOUDEVENTS_BATCH_JSON = 'application/cloudevents-batch+json';
/** Default largest ingest body, in bytes (1 MiB). */
export const INGEST_DEFAULT_BODY_LIMIT = 1_048_576;
/** Default most events in one batch. */
export const INGEST_DEFAULT_MAX_BATCH = 100;
/** Longest CloudEvents `id` the route accepts: it becomes the event's idempotency key. */
export const INGEST_MAX_ID_LENGTH = 200;
/** Metadata key under which the route records how an event was ingested ({@link IngestMetadata}). */
export const INGEST_METADATA_KEY = 'ingest';

/** Options of the ingest route (`ingest: true` takes the defaults). */
export interface IngestOptions {
  /** Largest request body in bytes (default 1 MiB, 1048576); larger is a 413. */
  bodyLimit?: number;
  /** Most events in one batch (default 100); more is a 400. */
  maxBatchSize?: number;
}

/** What the route records under `metadata.ingest` of each event it stores. */
export interface IngestMetadata {
  /** The CloudEvents `id` (also the event's idempotency key). */
  cloudEventId: string;
  /** The CloudEvents `time`, when it had one (the event's `timestamp` is when it was stored). */
  time?: string;
  /** The ingest request's id (`X-Request-Id`, ...), when it had one. */
  requestId?: string;
  /** Random id of the ingest request that stored the event: a repeat is told apart by another receipt. */
  receipt: string;
}

/** Stable codes of the ingest route's error bodies. */
export type IngestErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_CLOUD_EVENT'
  | 'UNKNOWN_EVENT_TYPE'
  | 'EVENT_VALIDATION_FAILED'
  | 'IDEMPOTENCY_CONFLICT'
  | 'STORAGE_UNAVAILABLE'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

/** The body of every 4xx/5xx answer of the ingest route. */
export interface IngestErrorBody {
  error: { code: IngestErrorCode; message: string; issues?: QueryIssue[] };
}

/** Answer to one CloudEvent (structured or binary mode): 201 when stored now, 200 for a repeat. */
export interface IngestedBody {
  /** The stored event (for a repeat, the one stored first). */
  event: BaseEvent;
  /** True when an event with this `id` was already stored. */
  duplicate: boolean;
}

/** Answer to a batch: 201 when at least one event was stored now, else 200. */
export interface IngestedBatchBody {
  /** One per CloudEvent of the batch, in order (repeats give the event stored first). */
  events: BaseEvent[];
  /** The `id`s of the batch that were already stored (or repeated within the batch). */
  duplicates: string[];
}

/** The request body as the framework has it: its text, or what a JSON body parser already made of it. */
export type IngestBody = { text: string } | { value: unknown };

/** Input of {@link ingestRoute}. */
export interface IngestRouteInput {
  /** Request headers, names in lower case (as Node and the Fetch API give them). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: IngestBody;
  /** What `authorize` returned; `null` means no identity (401). */
  identity: Identity | null;
  /** The ingest request's metadata (its `requestId` is recorded in `metadata.ingest`). */
  metadata: RequestMetadata;
  /** Where a 5xx answer's cause is logged. */
  logger?: Logger;
}

/** The ingest options with every field set; `undefined` when the route is off. */
export function resolveIngestOptions(option: boolean | IngestOptions | undefined): Required<IngestOptions> | undefined {
  if (option === undefined || option === false) return undefined;
  const given = option === true ? {} : option;
  return {
    bodyLimit: given.bodyLimit ?? INGEST_DEFAULT_BODY_LIMIT,
    maxBatchSize: given.maxBatchSize ?? INGEST_DEFAULT_MAX_BATCH,
  };
}

/** The answer for a body over the limit (the adapters detect it). */
export function payloadTooLarge(): HttpResult<IngestErrorBody> {
  return fail(413, 'PAYLOAD_TOO_LARGE', 'The request body is too large');
}

/** The answer for a body the framework could not read (aborted, bad charset, ...). */
export function unreadableBody(): HttpResult<IngestErrorBody> {
  return fail(400, 'INVALID_CLOUD_EVENT', 'The request body could not be read');
}

function fail(
  status: number,
  code: IngestErrorCode,
  message: string,
  issues?: QueryIssue[],
): HttpResult<IngestErrorBody> {
  return { status, body: { error: issues ? { code, message, issues } : { code, message } } };
}

/** An event ready to publish, or the reasons it is refused. */
interface Candidate {
  id: string;
  type: string;
  payload: unknown;
  organizationId: string | undefined;
  options: { actor?: string; actorType?: string; organizationId?: string; metadata: Partial<EventMetadata> };
}

type Mode = 'structured' | 'binary' | 'batch';

function header(headers: IngestRouteInput['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
}

function modeOf(headers: IngestRouteInput['headers']): Mode | undefined {
  const type = mediaType(header(headers, 'content-type'));
  if (type === CLOUDEVENTS_BATCH_JSON) return 'batch';
  if (type === CLOUDEVENTS_JSON) return 'structured';
  // Binary mode is told by its ce-specversion header; another cloudevents format (+xml...) is not supported.
  if (type?.startsWith('application/cloudevents')) return undefined;
  return header(headers, 'ce-specversion') === undefined ? undefined : 'binary';
}

function isJsonMediaType(type: string | undefined): boolean {
  return type === undefined || type === 'application/json' || type === 'text/json' || type.endsWith('+json');
}

class BodyError extends Error {}

function parseJson(body: IngestBody): unknown {
  if ('value' in body) return body.value;
  if (body.text.trim() === '') return undefined;
  try {
    return JSON.parse(body.text);
  } catch {
    throw new BodyError('the body is not JSON');
  }
}

/** The attributes of a binary-mode CloudEvent: `ce-*` headers (percent-decoded), content type and body. */
function binaryEvent(input: IngestRouteInput): Record<string, unknown> {
  const ce: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(input.headers)) {
    if (!name.startsWith('ce-') || raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    try {
      ce[name.slice(3)] = decodeURIComponent(value);
    } catch {
      throw new BodyError(`header ${name} is not percent-encoded UTF-8`);
    }
  }
  const contentType = header(input.headers, 'content-type');
  if (contentType !== undefined) ce.datacontenttype = contentType;
  // A payload that is not JSON is left for fromCloudEvent to refuse by its datacontenttype.
  const data = isJsonMediaType(mediaType(contentType))
    ? parseJson(input.body)
    : 'text' in input.body
    ? input.body.text
    : input.body.value;
  if (data !== undefined) ce.data = data;
  return ce;
}

const at = (prefix: (string | number)[], ...rest: (string | number)[]) => [...prefix, ...rest];

/** Checks one CloudEvent against the catalog; pushes its problems to `issues`. */
function candidateOf(
  catalog: Catalog,
  raw: unknown,
  prefix: (string | number)[],
  issues: QueryIssue[],
  ingest: Omit<IngestMetadata, 'cloudEventId'>,
): Candidate | undefined {
  let event: BaseEvent;
  try {
    event = fromCloudEvent(raw);
  } catch (err) {
    if (!EventBusError.is(err, 'INVALID_CLOUD_EVENT')) throw err;
    issues.push({ path: prefix, code: 'invalid_cloud_event', message: err.message });
    return undefined;
  }
  const ce = raw as Record<string, unknown>;
  if (event.eventId.length > INGEST_MAX_ID_LENGTH) {
    issues.push({ path: at(prefix, 'id'), code: 'id_too_long', message: `at most ${INGEST_MAX_ID_LENGTH} characters` });
    return undefined;
  }
  const definition: EventDefinition | undefined = Object.hasOwn(catalog, event.eventType)
    ? catalog[event.eventType]
    : undefined;
  if (!definition) {
    issues.push({
      path: at(prefix, 'type'),
      code: 'unknown_event_type',
      message: 'unknown event type: not in the catalog',
    });
    return undefined;
  }
  // An older version with an upcaster in the catalog is made current first, as stored events are.
  let payload: unknown = event.payload;
  const upcaster = event.eventVersion === definition.version ? undefined : definition.upcast?.[event.eventVersion];
  if (upcaster) {
    try {
      payload = upcaster(event.payload);
    } catch {
      issues.push({
        path: at(prefix, 'eventversion'),
        code: 'upcast_failed',
        message: 'could not upcast to the current version',
      });
      return undefined;
    }
  }
  const parsed = definition.payload.safeParse(payload);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      issues.push({ path: at(prefix, 'data', ...path), code: issue.code, message: issue.message });
    }
    return undefined;
  }

  // The envelope's metadata as fromCloudEvent maps it; without blawbymetadata the bus's environment applies.
  const { environment, ...carried } = event.metadata;
  const metadata: Partial<EventMetadata> =
    typeof ce.blawbymetadata === 'string' ? { ...carried, environment } : carried;
  const record: IngestMetadata = { cloudEventId: event.eventId, ...ingest };
  if (typeof ce.time === 'string') record.time = ce.time;
  metadata[INGEST_METADATA_KEY] = record;

  const options: Candidate['options'] = { metadata };
  if (event.actor !== undefined) options.actor = event.actor;
  if (event.actorType !== undefined) options.actorType = event.actorType;
  if (event.organizationId !== undefined) options.organizationId = event.organizationId;
  return { id: event.eventId, type: event.eventType, payload, organizationId: event.organizationId, options };
}

/** Issue codes that mean the body is not (a batch of) CloudEvents the route can read. */
const FORMAT_ISSUES = new Set(['invalid_json', 'invalid_cloud_event', 'id_too_long', 'too_many_events']);

/** A 400, whose code is the gravest kind among the issues. */
function invalid(issues: QueryIssue[], batch: boolean): HttpResult<IngestErrorBody> {
  const what = batch ? 'The batch was refused: nothing was stored' : 'The CloudEvent was refused';
  if (issues.some((i) => FORMAT_ISSUES.has(i.code))) return fail(400, 'INVALID_CLOUD_EVENT', what, issues);
  if (issues.some((i) => i.code === 'unknown_event_type')) return fail(400, 'UNKNOWN_EVENT_TYPE', what, issues);
  return fail(400, 'EVENT_VALIDATION_FAILED', what, issues);
}

function storageFailure(err: unknown, logger: Logger | undefined): HttpResult<IngestErrorBody> {
  const code = EventBusError.is(err) ? err.code : undefined;
  if (code === 'IDEMPOTENCY_CONFLICT') {
    return fail(
      409,
      'IDEMPOTENCY_CONFLICT',
      'An event with this id is already stored with another type or organization',
    );
  }
  logger?.error({ err, code }, 'event bus ingest failed');
  if (code === 'STORAGE_UNAVAILABLE') return fail(503, 'STORAGE_UNAVAILABLE', 'The event storage did not answer');
  if (code === 'BUS_STOPPED') return fail(503, 'SERVICE_UNAVAILABLE', 'The event bus is shutting down');
  return fail(500, 'INTERNAL_ERROR', 'Internal error');
}

/**
 * `POST {prefix}/ingest`. Order of checks: identity (401), content type (415),
 * every CloudEvent against the catalog (400, with every issue; for a batch,
 * nothing is stored when one is refused), organization membership (403: an
 * event with an `organizationid` not in the caller's `organizationIds`), then
 * one `publishMany`: each event is stored once by its CloudEvents `id` (the
 * idempotency key). A repeated `id` returns the stored event (200; 409 if it
 * was stored with another type or organization). Never throws: a storage
 * failure is a 503 or 500 with a fixed body, its cause logged.
 */
export async function ingestRoute<C extends Catalog>(
  bus: EventBus<C>,
  input: IngestRouteInput,
  options: Required<IngestOptions>,
): Promise<HttpResult<IngestedBody | IngestedBatchBody | IngestErrorBody>> {
  try {
    return await ingest(bus, input, options);
  } catch (err) {
    return storageFailure(err, input.logger);
  }
}

async function ingest<C extends Catalog>(
  bus: EventBus<C>,
  input: IngestRouteInput,
  options: Required<IngestOptions>,
): Promise<HttpResult<IngestedBody | IngestedBatchBody | IngestErrorBody>> {
  const { identity } = input;
  if (identity === null || identity === undefined) return fail(401, 'UNAUTHORIZED', 'Authentication required');
  const mode = modeOf(input.headers);
  if (!mode) {
    return fail(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `Expected ${CLOUDEVENTS_JSON}, ${CLOUDEVENTS_BATCH_JSON}, or a binary-mode CloudEvent (ce-* headers)`,
    );
  }
  const batch = mode === 'batch';

  let raws: unknown[];
  try {
    if (mode === 'binary') {
      raws = [binaryEvent(input)];
    } else {
      const parsed = parseJson(input.body);
      if (!batch) raws = [parsed];
      else if (Array.isArray(parsed)) raws = parsed;
      else return invalid([{ path: [], code: 'invalid_cloud_event', message: 'a batch must be a JSON array' }], true);
    }
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    return invalid([{ path: [], code: 'invalid_json', message: err.message }], batch);
  }
  if (raws.length > options.maxBatchSize) {
    return invalid(
      [{ path: [], code: 'too_many_events', message: `at most ${options.maxBatchSize} events per batch` }],
      true,
    );
  }

  const receipt = uuidv7();
  const ingestRecord: Omit<IngestMetadata, 'cloudEventId'> = { receipt };
  if (input.metadata.requestId !== undefined) ingestRecord.requestId = input.metadata.requestId;
  const issues: QueryIssue[] = [];
  const candidates = raws.map((raw, i) => candidateOf(bus.catalog, raw, batch ? [i] : [], issues, ingestRecord));
  if (issues.length > 0) return invalid(issues, batch);
  const valid = candidates as Candidate[];

  if (valid.some((c) => c.organizationId !== undefined && !identity.organizationIds.includes(c.organizationId))) {
    return fail(403, 'FORBIDDEN', 'Not a member of the organization of an event');
  }

  // A repeated id within the batch is a repeat of its first occurrence, so it must mean the same event.
  const first = new Map<string, number>();
  const unique: Candidate[] = [];
  const slot = valid.map((c) => {
    const seen = first.get(c.id);
    if (seen === undefined) {
      first.set(c.id, unique.length);
      unique.push(c);
      return unique.length - 1;
    }
    const earlier = unique[seen]!;
    if (earlier.type !== c.type || earlier.organizationId !== c.organizationId) {
      throw new EventBusError(
        'IDEMPOTENCY_CONFLICT',
        'An id is repeated in the batch with another type or organization',
      );
    }
    return seen;
  });

  const items = unique.map((c) => ({
    type: c.type,
    payload: c.payload,
    options: { ...c.options, idempotencyKey: c.id },
  }));
  const stored: BaseEvent[] = await bus.publishMany(items as Parameters<EventBus<C>['publishMany']>[0]);
  // The storage refuses a key stored with another type or organization (IDEMPOTENCY_CONFLICT); should one
  // hand such an event back anyway, it must not reach this caller.
  if (
    stored.some((event, i) => event.eventType !== unique[i]!.type || event.organizationId !== unique[i]!.organizationId)
  ) {
    throw new EventBusError('IDEMPOTENCY_CONFLICT', 'An id is already stored with another type or organization');
  }
  const isNew = stored.map(
    (event) => (event.metadata[INGEST_METADATA_KEY] as IngestMetadata | undefined)?.receipt === receipt,
  );
  const events = slot.map((s) => stored[s]!);
  // A duplicate: stored before this request, or a later occurrence within the batch.
  const duplicates = valid.flatMap((c, i) => (isNew[slot[i]!] && slot.indexOf(slot[i]!) === i ? [] : [c.id]));

  if (!batch) return { status: isNew[0] ? 201 : 200, body: { event: events[0]!, duplicate: !isNew[0] } };
  return { status: isNew.some(Boolean) ? 201 : 200, body: { events, duplicates } };
}
