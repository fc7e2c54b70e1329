/**
 * An AsyncAPI 3.0 document of a catalog: per event type a channel (its
 * address is the type), a message whose payload is the event envelope with
 * the type's payload schema, and a `send` operation. Payload schemas are
 * JSON Schema draft-07 (what AsyncAPI's default schema format builds on).
 * The output depends on the catalog and the options only (no timestamps),
 * so a committed export can be checked for drift.
 */
import type { Catalog } from '@blawby/event-bus';
import { payloadSchema, upcastVersions, type JsonSchema } from './json-schema';

/** What the document says about itself. */
export interface AsyncApiOptions {
  /** `info.title` (default `'Event catalog'`). */
  title?: string;
  /** `info.version`: the version of the document (default `'1.0.0'`). */
  version?: string;
  /** `info.description`. */
  description?: string;
}

const ref = (path: string) => ({ $ref: `#/${path}` });
/** A JSON Pointer segment (`~` and `/` escaped). */
const pointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

const METADATA_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'Context of an event: where it came from and how it links to others.',
  required: ['source', 'environment'],
  properties: {
    source: { type: 'string', description: "Where the event came from, e.g. 'api', 'webhook'." },
    environment: { type: 'string', description: "'development', 'staging', 'production' or the application's own." },
    correlationId: { type: 'string', description: 'Id shared by every event of one causal chain.' },
    causationId: { type: 'string', description: 'Id of the event whose handler published this one.' },
    traceparent: { type: 'string', description: 'W3C trace context of the publisher.' },
    requestId: { type: 'string', description: 'Request correlation id.' },
    ipAddress: { type: 'string', description: 'Request IP address.' },
    userAgent: { type: 'string', description: 'Browser or client identification.' },
  },
  additionalProperties: true,
};

/** The envelope of events of one type, its payload a reference to the type's schema. */
function envelopeSchema(type: string, version: string): JsonSchema {
  return {
    type: 'object',
    required: ['eventId', 'eventType', 'eventVersion', 'timestamp', 'payload', 'metadata'],
    properties: {
      eventId: { type: 'string', description: 'Unique id, a time-ordered UUIDv7.' },
      eventType: { type: 'string', const: type },
      eventVersion: { type: 'string', const: version, description: 'Version of the payload schema.' },
      timestamp: { type: 'string', format: 'date-time', description: 'When it happened.' },
      actor: { type: 'string', description: "Who or what performed the action (user id, 'system', ...)." },
      actorType: { type: 'string', description: "The kind of actor: 'user', 'system', 'webhook', 'cron', 'api', ..." },
      organizationId: { type: 'string', description: 'The organization in whose context it happened.' },
      payload: ref(`components/schemas/${pointer(type)}`),
      metadata: ref('components/schemas/EventMetadata'),
    },
  };
}

/** The AsyncAPI 3.0 document of `catalog`. */
export function catalogAsyncApi(catalog: Catalog, options: AsyncApiOptions = {}): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = { EventMetadata: METADATA_SCHEMA };
  for (const [type, definition] of Object.entries(catalog)) {
    const key = pointer(type);
    const domain = type.slice(0, type.indexOf('.'));
    const upcasts = upcastVersions(definition);
    schemas[type] = { ...payloadSchema(definition, 'draft-07'), ...(definition.description ? { description: definition.description } : {}) };
    messages[type] = {
      name: type,
      title: `${type} v${definition.version}`,
      ...(definition.description ? { summary: definition.description } : {}),
      contentType: 'application/json',
      payload: envelopeSchema(type, definition.version),
      tags: [{ name: domain }],
      'x-event-version': definition.version,
      ...(upcasts.length ? { 'x-upcast-from': upcasts } : {}),
    };
    channels[type] = {
      address: type,
      title: type,
      ...(definition.description ? { description: definition.description } : {}),
      messages: { [type]: ref(`components/messages/${key}`) },
    };
    operations[`publish.${type}`] = {
      action: 'send',
      title: `Publish ${type}`,
      ...(definition.description ? { summary: definition.description } : {}),
      channel: ref(`channels/${key}`),
      messages: [ref(`channels/${key}/messages/${key}`)],
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: options.title ?? 'Event catalog',
      version: options.version ?? '1.0.0',
      ...(options.description ? { description: options.description } : {}),
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { schemas, messages },
  };
}
