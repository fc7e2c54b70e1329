/**
 * A catalog as a page people read: event types grouped by domain, each with
 * its version, description, a table of payload fields (from the JSON Schema
 * zod writes) and the full schema folded away underneath. Deterministic, so
 * the committed page can be checked for drift.
 */
import type { Catalog } from '@blawby/event-bus';
import { payloadSchema, upcastVersions, type JsonSchema } from './json-schema';

/** What the page says about itself. */
export interface MarkdownOptions {
  /** The page title (default `'Event catalog'`). */
  title?: string;
  /** A paragraph under the title. */
  description?: string;
}

interface Field {
  path: string;
  type: string;
  required: boolean;
  notes: string;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string) => `\`${text}\``;

/** GitHub's heading anchor of a heading text. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

/** A short type description of a schema: `string (email)`, `"a" or "b"`, `array of string`. */
function typeOf(schema: JsonSchema): string {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' or ');
  if ('const' in schema) return JSON.stringify(schema.const);
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alternatives)) return alternatives.map(typeOf).join(' or ');
  const type = Array.isArray(schema.type) ? schema.type.join(' or ') : (schema.type as string | undefined);
  if (type === 'array') {
    const items = schema.items as JsonSchema | undefined;
    return items && typeof items === 'object' ? `array of ${typeOf(items)}` : 'array';
  }
  if (type === 'string' && typeof schema.format === 'string') return `string (${schema.format})`;
  return type ?? 'any';
}

/** Constraints worth a reader's eye: bounds, lengths, patterns, defaults, the description. */
function notesOf(schema: JsonSchema): string {
  const notes: string[] = [];
  if (typeof schema.description === 'string') notes.push(schema.description);
  const bound = (key: string, label: string) => {
    const n = schema[key];
    // zod's .int() states the safe-integer range; that is no constraint a reader needs to see.
    if (typeof n === 'number' && Math.abs(n) !== Number.MAX_SAFE_INTEGER) notes.push(`${label} ${n}`);
  };
  bound('minimum', '>=');
  bound('exclusiveMinimum', '>');
  bound('maximum', '<=');
  bound('exclusiveMaximum', '<');
  bound('minLength', 'min length');
  bound('maxLength', 'max length');
  bound('minItems', 'min items');
  bound('maxItems', 'max items');
  if (typeof schema.pattern === 'string' && typeof schema.format !== 'string') notes.push(`pattern ${code(schema.pattern)}`);
  if ('default' in schema) notes.push(`default ${code(JSON.stringify(schema.default))}`);
  return notes.join('; ');
}

/** The fields of an object schema, nested objects flattened to dotted paths. */
function fieldsOf(schema: JsonSchema, prefix = ''): Field[] {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const out: Field[] = [];
  for (const [name, property] of Object.entries(properties)) {
    const path = `${prefix}${name}`;
    out.push({ path, type: typeOf(property), required: required.has(name), notes: notesOf(property) });
    if (property.type === 'object' && property.properties) out.push(...fieldsOf(property, `${path}.`));
    const items = property.items as JsonSchema | undefined;
    if (property.type === 'array' && items?.type === 'object' && items.properties) out.push(...fieldsOf(items, `${path}[].`));
  }
  return out;
}

/** The Markdown page of `catalog`. */
export function catalogMarkdown(catalog: Catalog, options: MarkdownOptions = {}): string {
  const types = Object.keys(catalog);
  const domains = new Map<string, string[]>();
  for (const type of types) {
    const domain = type.slice(0, type.indexOf('.'));
    domains.set(domain, [...(domains.get(domain) ?? []), type]);
  }
  const lines: string[] = [`# ${options.title ?? 'Event catalog'}`, ''];
  if (options.description) lines.push(options.description, '');
  lines.push(
    `${types.length} event types in ${domains.size} domains. Written by \`event-bus catalog export --format markdown\`: ` +
      'change the catalog and export again rather than editing this page.',
    '',
    '## Contents',
    '',
  );
  for (const [domain, list] of domains) {
    lines.push(`- **${domain}**: ${list.map((t) => `[${code(t)}](#${anchor(t)})`).join(', ')}`);
  }
  for (const [domain, list] of domains) {
    lines.push('', `## ${domain}`);
    for (const type of list) {
      const definition = catalog[type]!;
      const schema = payloadSchema(definition, 'draft-2020-12');
      const upcasts = upcastVersions(definition);
      lines.push('', `### ${type}`, '');
      if (definition.description) lines.push(definition.description, '');
      lines.push(`Version ${code(definition.version)}${upcasts.length ? ` (older versions upcast: ${upcasts.map(code).join(', ')})` : ''}.`, '');
      const fields = fieldsOf(schema);
      if (fields.length === 0) {
        lines.push('No payload fields.');
      } else {
        lines.push('| field | type | required | notes |', '| --- | --- | --- | --- |');
        for (const f of fields) {
          lines.push(`| ${code(f.path)} | ${cell(f.type)} | ${f.required ? 'yes' : 'no'} | ${cell(f.notes)} |`);
        }
      }
      lines.push(
        '',
        '<details><summary>JSON Schema</summary>',
        '',
        '```json',
        JSON.stringify(schema, null, 2),
        '```',
        '',
        '</details>',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
