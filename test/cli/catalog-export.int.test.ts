/**
 * `event-bus catalog export` as a user runs it (a child process): the
 * AsyncAPI document validates with @asyncapi/parser and has a channel,
 * message and operation per event type with the zod schemas' JSON Schemas;
 * the Markdown page and the JSON Schemas say what the catalog says; a
 * TypeScript catalog (through tsx) and a compiled one both load; a missing
 * module or a module without a catalog fails with exit code 4.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCli } from './run-cli';

// Every test starts CLI processes (about a second each, far more on a loaded machine).
vi.setConfig({ testTimeout: 240_000 });

// The parser's ESM build does not load under plain Node (extensionless imports): use its CommonJS build.
const { Parser, DiagnosticSeverity } = createRequire(import.meta.url)('@asyncapi/parser') as typeof import('@asyncapi/parser');

const SHOP = 'test/cli/fixtures/shop-catalog.ts';
const work = mkdtempSync(join(tmpdir(), 'event-bus-export-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function exported(...args: string[]): Promise<string> {
  const run = await runCli(['catalog', 'export', ...args]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return run.stdout;
}

describe('catalog export --format asyncapi', () => {
  it('writes an AsyncAPI 3.0 document the parser accepts without errors or warnings', async () => {
    const text = await exported('--catalog', SHOP, '--format', 'asyncapi', '--title', 'Shop', '--doc-version', '2.1.0');
    const { document, diagnostics } = await new Parser().parse(text);
    const problems = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning);
    expect(problems.map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([]);
    expect(document).toBeDefined();
    expect(document!.version()).toBe('3.0.0');
    expect(document!.info().title()).toBe('Shop');
    expect(document!.info().version()).toBe('2.1.0');
    expect(document!.channels().all().map((c) => c.address()).sort()).toEqual(['shop.order_cancelled', 'shop.order_placed']);
    expect(document!.messages().all().map((m) => m.name()).sort()).toEqual(['shop.order_cancelled', 'shop.order_placed']);
    expect(document!.operations().all().map((o) => o.action())).toEqual(['send', 'send']);
  });

  it('carries versions, descriptions, upcasts and the payload schemas zod writes', async () => {
    const doc = JSON.parse(await exported('--catalog', SHOP, '-f', 'asyncapi')) as Json;
    const placed = doc.components.messages['shop.order_placed'];
    expect(placed).toMatchObject({
      name: 'shop.order_placed',
      title: 'shop.order_placed v2.0.0',
      summary: 'A customer placed an order',
      'x-event-version': '2.0.0',
      'x-upcast-from': ['1.0.0'],
    });
    expect(placed.payload.properties.eventType).toEqual({ type: 'string', const: 'shop.order_placed' });
    expect(placed.payload.properties.eventVersion.const).toBe('2.0.0');
    expect(placed.payload.properties.payload).toEqual({ $ref: '#/components/schemas/shop.order_placed' });
    const schema = doc.components.schemas['shop.order_placed'];
    expect(schema.required).toEqual(['orderId', 'totalCents', 'items']);
    expect(schema.properties.totalCents).toMatchObject({ type: 'integer', minimum: 0 });
    expect(schema.properties.items.items.properties.quantity).toMatchObject({ type: 'integer', minimum: 1 });
    expect(schema.$schema).toBeUndefined();
    expect(doc.channels['shop.order_cancelled'].description).toBe('An order was cancelled');
  });

  it('loads a named export (#name) and a compiled JavaScript catalog', async () => {
    const named = JSON.parse(await exported('--catalog', `${SHOP}#cancellations`, '-f', 'asyncapi')) as Json;
    expect(Object.keys(named.channels)).toEqual(['shop.order_cancelled']);
    const compiled = JSON.parse(await exported('--catalog', 'test/cli/fixtures/compiled-catalog.mjs', '-f', 'asyncapi')) as Json;
    expect(Object.keys(compiled.channels)).toEqual(['ledger.entry_posted']);
  });
});

describe('catalog export --format markdown and json-schema', () => {
  it('writes a readable page: contents, a section per type with version, description and field table', async () => {
    const page = await exported('--catalog', SHOP, '--format', 'markdown', '--title', 'Shop events');
    expect(page.startsWith('# Shop events\n')).toBe(true);
    expect(page).toContain('- **shop**: [`shop.order_placed`](#shoporder_placed), [`shop.order_cancelled`](#shoporder_cancelled)');
    expect(page).toContain('### shop.order_placed\n\nA customer placed an order\n\nVersion `2.0.0` (older versions upcast: `1.0.0`).');
    expect(page).toContain('| `totalCents` | integer | yes | >= 0 |');
    expect(page).toContain('| `items[].quantity` | integer | yes | >= 1 |');
    expect(page).toContain('| `reason` | "customer" or "fraud" | no |  |');
  });

  it('writes one JSON Schema per event type, to stdout or as files', async () => {
    const all = JSON.parse(await exported('--catalog', SHOP, '--format', 'json-schema')) as Json;
    expect(Object.keys(all)).toEqual(['shop.order_placed', 'shop.order_cancelled']);
    expect(all['shop.order_cancelled']).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'shop.order_cancelled',
      description: 'An order was cancelled',
      'x-event-version': '1.0.0',
      type: 'object',
      required: ['orderId'],
    });
    const dir = join(work, 'schemas');
    const run = await runCli(['catalog', 'export', '--catalog', SHOP, '--format', 'json-schema', '--out', dir]);
    expect(run.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['shop.order_cancelled.json', 'shop.order_placed.json']);
    expect(JSON.parse(readFileSync(join(dir, 'shop.order_placed.json'), 'utf8'))).toEqual(all['shop.order_placed']);
  });
});

describe('catalog export failures', () => {
  it('exits 4 for a missing module or one without a catalog, 2 for a bad format or no catalog', async () => {
    const missing = await runCli(['catalog', 'export', '--catalog', 'nowhere/catalog.ts', '-f', 'asyncapi']);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/catalog module not found: .*nowhere\/catalog\.ts/);
    const none = await runCli(['catalog', 'export', '--catalog', 'test/cli/fixtures/not-a-catalog.mjs', '-f', 'asyncapi']);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/no default export or "catalog" export that is a catalog/);
    const noExport = await runCli(['catalog', 'export', '--catalog', `${SHOP}#nope`, '-f', 'asyncapi']);
    expect(noExport.code).toBe(4);
    expect(noExport.stderr).toMatch(/no export "nope" that is a catalog/);
    const format = await runCli(['catalog', 'export', '--catalog', SHOP, '-f', 'yaml']);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/--format must be one of asyncapi, markdown, json-schema, not "yaml"/);
    const noCatalog = await runCli(['catalog', 'export', '-f', 'markdown']);
    expect(noCatalog.code).toBe(2);
    expect(noCatalog.stderr).toMatch(/no catalog given/);
    const fromEnv = await runCli(['catalog', 'export', '-f', 'json-schema'], { env: { EVENT_BUS_CATALOG: SHOP } });
    expect(fromEnv.code).toBe(0);
  });
});
