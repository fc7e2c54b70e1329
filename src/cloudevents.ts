/**
 * Conversion between the bus's envelope ({@link BaseEvent}) and CloudEvents
 * 1.0 in the structured JSON format, for exchanging events with systems that
 * speak CloudEvents (brokers, webhooks, other services).
 *
 * Mapping: `id` = `eventId`, `type` = `eventType`, `time` = `timestamp`,
 * `data` = `payload`, `source` = `/blawby/{metadata.source}` (or your own),
 * and extension attributes `eventversion`, `actor`, `actortype`,
 * `organizationid`, `correlationid`, `causationid`, `traceparent` /
 * `tracestate` (the CloudEvents distributed-tracing extension), plus
 * `blawbymetadata`: the rest of the metadata as a JSON string, so that
 * `fromCloudEvent(toCloudEvent(e))` gives back the same event.
 *
 * `processed` and `retryCount` are delivery state of one bus, not facts of the
 * event: they are not sent, and a converted event starts unprocessed with no
 * retries.
 */
import type { BaseEvent, EventMetadata } from './envelope';
import { EventBusError, InvalidOptionError } from './errors';

/** A CloudEvents 1.0 event in the structured JSON format, as {@link toCloudEvent} makes it. */
export interface StructuredCloudEvent {
  /** Always `'1.0'`. */
  specversion: '1.0';
  /** The event's id (`eventId`). */
  id: string;
  /** A URI-reference naming the context in which the event happened. */
  source: string;
  /** The event type (`eventType`). */
  type: string;
  /** RFC 3339 timestamp of the occurrence. */
  time?: string;
  /** `'application/json'`. */
  datacontenttype?: string;
  /** A URI of the payload's schema. */
  dataschema?: string;
  /** The subject of the event within its source. */
  subject?: string;
  /** The payload. */
  data?: Record<string, unknown>;
  /** Extension attributes: lower-case ASCII letters and digits only. */
  [extension: string]: unknown;
}

/** Options of {@link toCloudEvent}. */
export interface ToCloudEventOptions {
  /** The CloudEvent `source` (a URI-reference). Default: `/blawby/{metadata.source}`. */
  source?: string;
  /** The CloudEvent `dataschema` (a URI), e.g. where the event type's JSON schema is published. */
  dataschema?: string;
  /** The CloudEvent `subject`. */
  subject?: string;
}

/** Options of {@link fromCloudEvent}, used for CloudEvents that were not made by {@link toCloudEvent}. */
export interface FromCloudEventOptions {
  /** `eventVersion` when the CloudEvent has no `eventversion` extension (default `'1.0.0'`). */
  eventVersion?: string;
  /** `metadata.environment` when the CloudEvent does not carry one (default `'unknown'`). */
  environment?: string;
}

/**
 * Metadata key under which {@link fromCloudEvent} keeps the attributes of a
 * foreign CloudEvent that have no place in the envelope (`subject`,
 * `dataschema`, a `source` not of the `/blawby/...` form, other extensions),
 * so that {@link toCloudEvent} can send them on unchanged.
 */
export const CLOUD_EVENT_METADATA_KEY = 'cloudEvent';

/** What {@link fromCloudEvent} keeps under `metadata.cloudEvent`. */
export interface CloudEventAttributes {
  /** The original `source`, when it was not `/blawby/{metadata.source}`. */
  source?: string;
  subject?: string;
  dataschema?: string;
  /** Extension attributes the envelope has no field for. */
  extensions?: Record<string, string | number | boolean>;
}

const SOURCE_PREFIX = '/blawby/';
const DATA_CONTENT_TYPE = 'application/json';
const METADATA_EXTENSION = 'blawbymetadata';

/** Envelope fields carried as string extension attributes (CloudEvents names are lower-case letters and digits). */
const ENVELOPE_EXTENSIONS = {
  eventversion: 'eventVersion',
  actor: 'actor',
  actortype: 'actorType',
  organizationid: 'organizationId',
} as const;

/** Metadata fields carried as their own extension attributes (tracing tools read these). */
const METADATA_EXTENSIONS = {
  correlationid: 'correlationId',
  causationid: 'causationId',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

const CONTEXT_ATTRIBUTES = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'time',
  'datacontenttype',
  'dataschema',
  'subject',
  'data',
  'data_base64',
]);
const KNOWN_EXTENSIONS = new Set<string>([
  ...Object.keys(ENVELOPE_EXTENSIONS),
  ...Object.keys(METADATA_EXTENSIONS),
  METADATA_EXTENSION,
]);

const ATTRIBUTE_NAME = /^[a-z0-9]+$/;
// RFC 3339 date-time, as CloudEvents requires for `time`.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const URI_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;
const WHITESPACE = /[\s\p{Cc}]/u;

/**
 * Converts an event into a CloudEvents 1.0 event (structured JSON format).
 * `JSON.stringify` the result to send it with content type
 * `application/cloudevents+json`.
 *
 * @example
 * ```ts
 * const ce = toCloudEvent(event, { source: 'https://api.blawby.com' });
 * await fetch(url, {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/cloudevents+json' },
 *   body: JSON.stringify(ce),
 * });
 * ```
 */
export function toCloudEvent(event: BaseEvent, options: ToCloudEventOptions = {}): StructuredCloudEvent {
  if (!(event.timestamp instanceof Date) || Number.isNaN(event.timestamp.getTime())) {
    throw new EventBusError('INVALID_CLOUD_EVENT', 'Cannot convert the event: its timestamp is not a valid Date');
  }
  if (options.source !== undefined && (options.source.length === 0 || WHITESPACE.test(options.source))) {
    throw new InvalidOptionError('source', 'must be a non-empty URI-reference without whitespace');
  }
  if (options.dataschema !== undefined && !isAbsoluteUri(options.dataschema)) {
    throw new InvalidOptionError('dataschema', 'must be an absolute URI');
  }
  if (options.subject === '') throw new InvalidOptionError('subject', 'must not be empty');
  const { [CLOUD_EVENT_METADATA_KEY]: foreign, ...metadata } = event.metadata;
  const kept = isRecord(foreign) ? (foreign as CloudEventAttributes) : {};

  const ce: StructuredCloudEvent = {
    specversion: '1.0',
    id: event.eventId,
    source: options.source ?? kept.source ?? SOURCE_PREFIX + encodeURIComponent(metadata.source),
    type: event.eventType,
    time: event.timestamp.toISOString(),
    datacontenttype: DATA_CONTENT_TYPE,
  };
  const dataschema = options.dataschema ?? kept.dataschema;
  if (dataschema !== undefined) ce.dataschema = dataschema;
  const subject = options.subject ?? kept.subject;
  if (subject !== undefined) ce.subject = subject;

  // Foreign extensions first, so that the envelope's own always win.
  for (const [name, value] of Object.entries(kept.extensions ?? {})) {
    if (ATTRIBUTE_NAME.test(name) && !CONTEXT_ATTRIBUTES.has(name) && !KNOWN_EXTENSIONS.has(name)) ce[name] = value;
  }
  for (const [name, field] of Object.entries(ENVELOPE_EXTENSIONS)) {
    const value = event[field];
    if (value !== undefined) ce[name] = value;
  }
  const rest: Record<string, unknown> = { ...metadata };
  for (const [name, field] of Object.entries(METADATA_EXTENSIONS)) {
    const value = metadata[field];
    // Only strings fit the attribute; anything else stays in blawbymetadata.
    if (typeof value === 'string') {
      ce[name] = value;
      delete rest[field];
    }
  }
  try {
    ce[METADATA_EXTENSION] = JSON.stringify(rest);
  } catch (cause) {
    throw new EventBusError('INVALID_CLOUD_EVENT', 'Cannot convert the event: its metadata is not JSON-serialisable', {
      cause,
    });
  }
  ce.data = event.payload;
  return ce;
}

/**
 * Converts a CloudEvents 1.0 event in the structured JSON format (an object,
 * e.g. a `CloudEvent` of the `cloudevents` package, or its JSON text) into an
 * event envelope. Events made by {@link toCloudEvent} come back unchanged
 * (with `processed: false` and `retryCount: 0`); attributes of other
 * CloudEvents that the envelope has no field for are kept under
 * `metadata.cloudEvent`.
 *
 * The payload is not checked against a catalog here: the bus does that.
 *
 * @throws {EventBusError} with code `'INVALID_CLOUD_EVENT'` when the input is
 * not a valid CloudEvents 1.0 event with a JSON object (or no) `data`.
 */
export function fromCloudEvent(input: unknown, options: FromCloudEventOptions = {}): BaseEvent {
  const ce = parseInput(input);

  if (ce.specversion !== '1.0') {
    invalid(
      ce.specversion === undefined
        ? 'specversion is missing'
        : `specversion must be "1.0" (got ${describe(ce.specversion)})`,
    );
  }
  const id = requiredString(ce, 'id');
  const type = requiredString(ce, 'type');
  const source = requiredString(ce, 'source');
  if (WHITESPACE.test(source)) invalid('source must be a URI-reference (no whitespace or control characters)');

  let timestamp: Date;
  if (ce.time === undefined) {
    // `time` is optional in CloudEvents; an event without it is dated when received.
    timestamp = new Date();
  } else {
    if (typeof ce.time !== 'string' || !RFC3339.test(ce.time)) invalid('time must be an RFC 3339 timestamp');
    timestamp = new Date(ce.time);
    if (Number.isNaN(timestamp.getTime())) invalid('time must be an RFC 3339 timestamp');
  }

  const contentType = optionalString(ce, 'datacontenttype');
  if (contentType !== undefined && !isJsonMediaType(contentType)) {
    invalid(`datacontenttype must be a JSON media type (got "${contentType.slice(0, 100)}")`);
  }
  const dataschema = optionalString(ce, 'dataschema');
  if (dataschema !== undefined && !isAbsoluteUri(dataschema)) {
    invalid('dataschema must be an absolute URI');
  }
  const subject = optionalString(ce, 'subject');
  if (subject === '') invalid('subject must not be empty');
  if (ce.eventversion === '') invalid('eventversion must not be empty');
  if (ce.data_base64 !== undefined) invalid('data_base64 is not supported: the payload must be a JSON object');
  if (ce.data !== undefined && !isRecord(ce.data)) invalid('data must be a JSON object');
  const payload = ce.data === undefined ? {} : (ce.data as Record<string, unknown>);

  // Extension attributes: the envelope's own, then anything else.
  const extensions: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(ce)) {
    if (CONTEXT_ATTRIBUTES.has(name) || value === undefined) continue;
    if (!ATTRIBUTE_NAME.test(name)) invalid(`extension attribute names must be lower-case letters and digits`);
    if (KNOWN_EXTENSIONS.has(name)) {
      if (typeof value !== 'string') invalid(`extension "${name}" must be a string`);
      continue;
    }
    if (typeof value === 'string' || typeof value === 'boolean' || Number.isInteger(value)) {
      extensions[name] = value as string | number | boolean;
    } else {
      invalid(`extension "${name}" must be a string, boolean or integer`);
    }
  }

  let metadata: EventMetadata;
  const carried = ce[METADATA_EXTENSION];
  const kept: CloudEventAttributes = {};
  if (typeof carried === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(carried);
    } catch {
      invalid(`${METADATA_EXTENSION} must be a JSON object`);
    }
    if (!isRecord(parsed) || typeof parsed.source !== 'string' || typeof parsed.environment !== 'string') {
      invalid(`${METADATA_EXTENSION} must be a JSON object with string "source" and "environment"`);
    }
    metadata = parsed as EventMetadata;
    if (source !== SOURCE_PREFIX + encodeURIComponent(metadata.source)) kept.source = source;
  } else {
    const local = source.startsWith(SOURCE_PREFIX) ? decodeSource(source.slice(SOURCE_PREFIX.length)) : undefined;
    if (local === undefined) kept.source = source;
    metadata = { source: local ?? source, environment: options.environment ?? 'unknown' };
  }
  for (const [name, field] of Object.entries(METADATA_EXTENSIONS)) {
    const value = ce[name];
    if (typeof value === 'string') metadata[field] = value;
  }
  if (dataschema !== undefined) kept.dataschema = dataschema;
  if (subject !== undefined) kept.subject = subject;
  if (Object.keys(extensions).length > 0) kept.extensions = extensions;
  if (Object.keys(kept).length > 0) metadata[CLOUD_EVENT_METADATA_KEY] = kept;

  const event: BaseEvent = {
    eventId: id,
    eventType: type,
    eventVersion: (ce.eventversion as string | undefined) ?? options.eventVersion ?? '1.0.0',
    timestamp,
    payload,
    metadata,
    processed: false,
    retryCount: 0,
  };
  for (const [name, field] of Object.entries(ENVELOPE_EXTENSIONS)) {
    if (field === 'eventVersion') continue;
    const value = ce[name];
    if (typeof value === 'string') event[field] = value;
  }
  return event;
}

function parseInput(input: unknown): Record<string, unknown> {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw new EventBusError('INVALID_CLOUD_EVENT', 'Invalid CloudEvent: the text is not JSON', { cause });
    }
  }
  if (!isRecord(value)) invalid('expected an object (structured JSON format)');
  // Own enumerable properties are the attributes (so a `CloudEvent` of the `cloudevents` package works);
  // an attribute set to null counts as absent.
  const out: Record<string, unknown> = {};
  for (const [name, attribute] of Object.entries(value)) if (attribute !== null) out[name] = attribute;
  return out;
}

function requiredString(ce: Record<string, unknown>, name: string): string {
  const value = ce[name];
  if (typeof value !== 'string' || value.length === 0) invalid(`${name} must be a non-empty string`);
  return value;
}

function optionalString(ce: Record<string, unknown>, name: string): string | undefined {
  const value = ce[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') invalid(`${name} must be a string`);
  return value;
}

function isAbsoluteUri(value: string): boolean {
  return URI_SCHEME.test(value) && !WHITESPACE.test(value);
}

function isJsonMediaType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type === 'text/json' || type.endsWith('+json');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function decodeSource(encoded: string): string | undefined {
  if (encoded.length === 0) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `"${value.slice(0, 20)}"` : typeof value;
}

function invalid(reason: string): never {
  throw new EventBusError('INVALID_CLOUD_EVENT', `Invalid CloudEvent: ${reason}`);
}
