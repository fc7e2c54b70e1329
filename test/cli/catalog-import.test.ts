/**
 * `catalog import --from-classes`: the fixture classes (shaped like the
 * Blawby backend's event classes) become a catalog module that compiles
 * under the repository's strict settings, whose schemas accept the payloads
 * the classes describe and refuse others, and whose report names every class
 * it could not convert, with the reason.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, EventBusError, type Catalog } from '@blawby/event-bus';
import { formatCatalogImportReport, importCatalogFromClasses, type CatalogImportResult } from '../../adapters/cli/commands/catalog-import';
import { runCli } from '../../adapters/cli/run';

const repo = resolve(import.meta.dirname, '../..');
const fixtures = join(repo, 'test/cli/fixtures/classes');
// Inside the repository, so that the module resolves zod and @blawby/event-bus as a user's would.
const outDir = join(repo, '.tmp', `catalog-import-${process.pid}-${Date.now()}`);
const outFile = join(outDir, 'catalog.ts');

interface GeneratedModule {
  catalog: Catalog;
  eventClasses: Record<string, string>;
  EventType: Record<string, string>;
}

let result: CatalogImportResult;
let generated: GeneratedModule;

beforeAll(async () => {
  await mkdir(outDir, { recursive: true });
  result = await importCatalogFromClasses({ fromClasses: fixtures, out: outFile });
  generated = (await import(pathToFileURL(outFile).href)) as GeneratedModule;
});

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
});

const schemaOf = (type: string) => {
  const definition = generated.catalog[type];
  if (!definition) throw new Error(`no ${type} in the generated catalog`);
  return definition.payload;
};

const party = { id: 'usr_1', name: 'Ada' };

describe('catalog import --from-classes', () => {
  it('writes the module it returns', async () => {
    expect(result.written).toBe(outFile);
    expect(await readFile(outFile, 'utf8')).toBe(result.module);
  });

  it('generates a module that type-checks under the strict repository settings', () => {
    const config = ts.getParsedCommandLineOfConfigFile(join(repo, 'tsconfig.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    });
    const program = ts.createProgram([outFile], { ...config!.options, noEmit: true });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  });

  it('makes one catalog entry per convertible class, keeping the event types and class names', () => {
    expect(Object.keys(generated.catalog).sort()).toEqual([
      'billing.invoice_paid',
      'matter.archived',
      'matter.closed',
      'matter.created',
      'matter.updated',
    ]);
    expect(generated.eventClasses).toEqual({
      InvoicePaid: 'billing.invoice_paid',
      MatterArchived: 'matter.archived',
      MatterClosed: 'matter.closed',
      MatterCreated: 'matter.created',
      MatterUpdated: 'matter.updated',
    });
    expect(generated.EventType.MATTER_CREATED).toBe('matter.created');
    expect(generated.catalog['matter.updated']!.version).toBe('2.0.0'); // static version
    expect(generated.catalog['matter.created']!.version).toBe('1.0.0');
    expect(generated.catalog['matter.created']!.description).toBe('A new matter was opened for a client.');
  });

  it('keeps named interfaces and type aliases as schema constants of the same name', () => {
    for (const name of ['PartyRef', 'MatterStatus', 'MatterUpdatedPayload', 'MatterClosedPayload', 'InvoiceLine', 'Currency']) {
      expect(result.module).toContain(`export const ${name} = `);
    }
    expect(result.module).toMatch(/updatedBy: PartyRef,/);
    expect(result.module).toMatch(/status: MatterStatus\.optional\(\),/);
    // Members in the order the source writes them.
    expect(result.module).toContain("export const MatterStatus = z.enum(['open', 'pending', 'closed']);");
  });

  it('matter.created: the inline payload, with its optional field, enum, nested object and Date', () => {
    const schema = schemaOf('matter.created');
    const valid = {
      matterId: 'mat_1',
      status: 'open',
      client: { id: 'cli_1', name: 'Acme' },
      openedAt: '2026-12-01T09:00:00.000Z',
    };
    expect(schema.safeParse(valid).success).toBe(true);
    expect(schema.safeParse({ ...valid, title: 'Acme v. Widget' }).success).toBe(true);
    expect(schema.safeParse({ ...valid, status: 'archived' }).success).toBe(false);
    expect(schema.safeParse({ ...valid, client: { id: 'cli_1' } }).success).toBe(false);
    expect(schema.safeParse({ ...valid, title: 42 }).success).toBe(false);
    // Payloads are JSON: a Date field is an ISO 8601 string, not a Date object.
    expect(schema.safeParse({ ...valid, openedAt: new Date() }).success).toBe(false);
    expect(schema.safeParse({ ...valid, openedAt: 'yesterday' }).success).toBe(false);
  });

  it('matter.updated: arrays of literals, a named alias, a nullable optional field', () => {
    const schema = schemaOf('matter.updated');
    const valid = { matterId: 'mat_1', changes: ['title', 'status'], updatedBy: party };
    expect(schema.safeParse(valid).success).toBe(true);
    expect(schema.safeParse({ ...valid, status: 'pending', note: null }).success).toBe(true);
    expect(schema.safeParse({ ...valid, changes: ['colour'] }).success).toBe(false);
    expect(schema.safeParse({ ...valid, status: 'archived' }).success).toBe(false);
  });

  it('matter.closed: a discriminated union of objects', () => {
    const schema = schemaOf('matter.closed');
    const base = { matterId: 'mat_1', closedAt: '2026-12-01T09:00:00Z', closedBy: party };
    expect(schema.safeParse({ ...base, outcome: { kind: 'won', amount: 100 } }).success).toBe(true);
    expect(schema.safeParse({ ...base, outcome: { kind: 'dropped' } }).success).toBe(true);
    expect(schema.safeParse({ ...base, outcome: { kind: 'settled', amount: 5 } }).success).toBe(false); // confidential missing
    expect(schema.safeParse({ ...base, outcome: { kind: 'lost' } }).success).toBe(false);
  });

  it('matter.archived: a payload inherited through an intermediate generic class', () => {
    const schema = schemaOf('matter.archived');
    expect(schema.safeParse({ matterId: 'mat_1', archivedBy: party }).success).toBe(true);
    expect(schema.safeParse({ archivedBy: party }).success).toBe(false);
  });

  it('billing.invoice_paid: a TS enum, arrays, a record, a tuple, literal numbers, booleans, unknown', () => {
    const schema = schemaOf('billing.invoice_paid');
    const valid = {
      invoiceId: 'in_1',
      currency: 'usd',
      lines: [{ sku: 'consult', quantity: 2, unitAmount: 15_000 }],
      tags: ['retainer'],
      metadata: { source: 'portal' },
      paidBy: party,
      paidAt: '2026-12-01T09:00:00Z',
      refundedAt: null,
      attempt: 2,
      livemode: false,
      coordinates: [51.5, -0.12],
      extra: { anything: true },
    };
    expect(schema.safeParse(valid).success).toBe(true);
    expect(schema.safeParse({ ...valid, currency: 'gbp' }).success).toBe(false);
    expect(schema.safeParse({ ...valid, attempt: 4 }).success).toBe(false);
    expect(schema.safeParse({ ...valid, metadata: { n: 1 } }).success).toBe(false);
    expect(schema.safeParse({ ...valid, coordinates: [1] }).success).toBe(false);
    expect(schema.safeParse({ ...valid, lines: [{ sku: 'x' }] }).success).toBe(false);
  });

  it('reports every class it could not convert, with the reason, and leaves them out of the catalog', () => {
    const byClass = Object.fromEntries(result.unconverted.map((u) => [u.className, u]));
    expect(Object.keys(byClass).sort()).toEqual([
      'BadlyNamed',
      'LedgerPosted',
      'LegacyImported',
      'RefundIssued',
      'ReminderScheduled',
      'Untyped',
      'Wrapped',
    ]);
    expect(byClass.ReminderScheduled).toMatchObject({
      eventType: 'reminder.scheduled',
      source: 'unconvertible.ts:4',
      reason: expect.stringMatching(/^payload\.onDone: a function is not JSON/),
    });
    expect(byClass.Wrapped!.reason).toMatch(/^payload\.value: depends on the generic type parameter T/);
    expect(byClass.BadlyNamed!.reason).toMatch(/"Matter-Created" is not a valid event name/);
    expect(byClass.Untyped!.reason).toMatch(/no `static type/);
    // What the compiler cannot resolve is reported, not guessed (an unresolved type is not `any`).
    expect(byClass.RefundIssued!.reason).toMatch(/^payload\.amount: a type the compiler could not resolve/);
    expect(byClass.LegacyImported!.reason).toMatch(/extends BaseEvent, which the compiler could not resolve/);
    // Every failing field is named, not only the first.
    expect(byClass.LedgerPosted!.reason).toMatch(/payload\.amountMinor: a bigint is not JSON.*payload\.balances: a Map is not JSON/);
    const reportedTypes = result.unconverted.flatMap((u) => (u.eventType ? [u.eventType] : []));
    expect(reportedTypes).toHaveLength(6);
    expect(reportedTypes.filter((type) => type in generated.catalog)).toEqual([]);
    // The abstract intermediate class is no event type, and is not reported as one.
    expect(result.unconverted.map((u) => u.className)).not.toContain('MatterEvent');
  });

  it('writes the unconverted classes into the module header and the report, with the Date notes', () => {
    expect(result.module).toMatch(/\/\/ {3}ReminderScheduled \("reminder\.scheduled"\), unconvertible\.ts:4: payload\.onDone/);
    const report = formatCatalogImportReport(result);
    expect(report).toMatch(/^5 event types converted into .*; 7 not converted/);
    expect(report).toContain('matter.created (MatterCreated): payload.openedAt: Date becomes z.iso.datetime()');
    expect(report).toContain('Wrapped ("generic.wrapped") at unconvertible.ts:9: payload.value: depends on the generic type parameter T');
  });

  it('publishes through a bus on the generated catalog', async () => {
    const bus = createEventBus({ catalog: generated.catalog });
    try {
      const event = await bus.publish('matter.created', {
        matterId: 'mat_1',
        status: 'open',
        client: { id: 'cli_1', name: 'Acme' },
        openedAt: new Date('2026-12-01T09:00:00Z').toISOString(),
      });
      expect(event.payload).toMatchObject({ openedAt: '2026-12-01T09:00:00.000Z' });
      const refused = await bus.publish('matter.created', { matterId: 'mat_1' }).catch((e: unknown) => e);
      expect(EventBusError.is(refused, 'EVENT_VALIDATION_FAILED')).toBe(true);
    } finally {
      await bus.stop();
    }
  });
});

describe('event-bus catalog import', () => {
  const cli = async (...argv: string[]) => {
    const out = { stdout: '', stderr: '' };
    const code = await runCli(argv, {
      stdout: { write: (chunk: string) => (out.stdout += chunk) },
      stderr: { write: (chunk: string) => (out.stderr += chunk) },
      env: {},
      cwd: repo,
      signal: new AbortController().signal,
    });
    return { code, ...out };
  };

  it('prints the module without --out and the report on stderr; --strict fails on unconverted classes', async () => {
    const plain = await cli('catalog', 'import', '--from-classes', 'test/cli/fixtures/classes');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(result.module); // deterministic: the same classes give the same module
    expect(plain.stderr).toMatch(/Not converted \(add them by hand\):\n {2}ReminderScheduled/);
    const strict = await cli('catalog', 'import', '--from-classes', 'test/cli/fixtures/classes', '--strict');
    expect(strict.code).toBe(1);
  });

  it('answers usage errors with exit code 2', async () => {
    const missing = await cli('catalog', 'import');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--from-classes is required/);
    const noDir = await cli('catalog', 'import', '--from-classes', 'test/cli/fixtures/nope');
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/fromClasses.*is not a directory \(INVALID_OPTION\)/);
    expect((await cli('catalog', 'import', '--from-classes', fixtures, '--bogus')).code).toBe(2);
    const badConfig = await cli('catalog', 'import', '--from-classes', fixtures, '--tsconfig', 'test/cli/fixtures/none.json');
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(/Invalid option "tsconfig"/);
  });

  it('is listed in --help', async () => {
    const help = await cli('catalog', '--help');
    expect(help.stdout).toMatch(/catalog import/);
  });

  it('refuses a folder that does not exist with INVALID_OPTION', async () => {
    const err = await importCatalogFromClasses({ fromClasses: join(fixtures, 'nope') }).catch((e: unknown) => e);
    expect(EventBusError.is(err, 'INVALID_OPTION')).toBe(true);
  });
});
