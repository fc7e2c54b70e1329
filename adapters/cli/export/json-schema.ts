/**
 * Payload JSON Schemas from a catalog's zod schemas, through zod 4's own
 * `toJSONSchema` (never a hand-written converter). What zod cannot express
 * in JSON Schema (a `.refine()`, a `.transform()`'s output) becomes an
 * unconstrained schema rather than an error, so one odd field does not stop
 * an export.
 */
import { toJSONSchema } from 'zod';
import type { Catalog, EventDefinition } from '@blawby/event-bus';

/** A JSON Schema object, as zod writes it. */
export type JsonSchema = Record<string, unknown>;

/** The JSON Schema dialects the exports use. */
export type SchemaTarget = 'draft-07' | 'draft-2020-12';

/** The payload schema of one event definition (without `$schema`: the caller says which dialect it embeds). */
export function payloadSchema(definition: EventDefinition, target: SchemaTarget): JsonSchema {
  const schema = toJSONSchema(definition.payload, { target, unrepresentable: 'any', io: 'output' }) as JsonSchema;
  delete schema.$schema;
  return schema;
}

/** The older versions a definition upcasts from, in the order it lists them. */
export function upcastVersions(definition: EventDefinition): string[] {
  return Object.keys(definition.upcast ?? {});
}

/**
 * One standalone schema per event type (JSON Schema 2020-12): title, the
 * definition's description, and `x-event-version` with its version.
 */
export function catalogJsonSchemas(catalog: Catalog): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [type, definition] of Object.entries(catalog)) {
    out[type] = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: type,
      ...(definition.description ? { description: definition.description } : {}),
      'x-event-version': definition.version,
      ...payloadSchema(definition, 'draft-2020-12'),
    };
  }
  return out;
}
