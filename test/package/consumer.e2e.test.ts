/**
 * The packed package as a user gets it: `npm pack`, `npm install` of the
 * tarball into a fresh project, then every subpath loaded with `import` and
 * with `require`, one event published and handled through each, and a small
 * TypeScript consumer type-checked under `module: nodenext` as ESM and as
 * CommonJS. Runs against the built output (it builds first when dist/ is
 * missing or older than the sources).
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageEntries } from '../../scripts/package-entries.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entries = packageEntries(root);
/** `'.'` is `@blawby/event-bus`, `'./postgres'` is `@blawby/event-bus/postgres`. */
const specifierOf = (subpath: string) => `@blawby/event-bus${subpath.slice(1)}`;
const subpaths = entries.map((e) => specifierOf(e.subpath));
const PKG_DIR = ['node_modules', '@blawby', 'event-bus'];

let work = '';

/** Runs a command; on failure the error carries its output. */
function run(command: string, args: readonly string[], cwd: string): string {
  try {
    return execFileSync(command, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}\n${output}\n${e.message}`);
  }
}

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true }).reduce((max, d) => {
    const path = join(dir, d.name);
    return Math.max(max, d.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }, 0);
}

/** Builds unless every entry's outputs exist and are newer than the sources and the build config. */
function ensureBuilt(): void {
  const outputs = entries.flatMap((e) =>
    ['js', 'cjs', 'd.ts', 'd.cts'].map((ext) => join(root, 'dist', `${e.name}.${ext}`)),
  );
  const sources = Math.max(
    newest(join(root, 'src')),
    newest(join(root, 'adapters')),
    statSync(join(root, 'tsup.config.ts')).mtimeMs,
    statSync(join(root, 'package.json')).mtimeMs,
  );
  const stale = outputs.find((f) => !existsSync(f) || statSync(f).mtimeMs < sources);
  if (!stale) return;
  process.stderr.write(`[package test] ${stale} is missing or older than the sources: running npm run build\n`);
  run('npm', ['run', 'build'], root);
}

/** A peer dependency (or @types/node) taken from the repository instead of the registry, to keep the install fast. */
function linkFromRepo(name: string): void {
  const target = join(work, 'node_modules', name);
  if (existsSync(target)) return;
  const source = join(root, 'node_modules', name);
  if (!existsSync(source)) throw new Error(`${name} is not installed in the repository (npm ci)`);
  mkdirSync(dirname(target), { recursive: true });
  symlinkSync(source, target, 'dir');
}

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), 'event-bus-consumer-'));
  const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root)) as {
    filename: string;
  }[];
  const tarball = join(work, packed[0]!.filename);
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }));
  // Installs the tarball with its dependencies and the required peer (zod), from npm's cache when it can.
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], work);
  const installed = JSON.parse(readFileSync(join(work, ...PKG_DIR, 'package.json'), 'utf8')) as {
    peerDependencies?: Record<string, string>;
  };
  // Optional peers (the adapters' clients) are not installed by npm: the user adds the ones they use.
  for (const peer of Object.keys(installed.peerDependencies ?? {})) linkFromRepo(peer);
  linkFromRepo('@types/node');
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** What the runtime scripts below print. */
interface RuntimeReport {
  exports: Record<string, string[]>;
  handled: string[];
  eventId: string;
  eventType: string;
  refusedCode: string | null;
  crossCopyBrand?: boolean;
}

/** The same flow in both module systems: load every subpath, publish one event, see it handled. */
const flow = `
  const exportsOf = {};
  for (const spec of subpaths) exportsOf[spec] = Object.keys(await load(spec)).sort();
  const core = await load('@blawby/event-bus');
  const catalog = core.defineCatalog({
    'auth.user_signed_up': core.defineEvent({ version: '1.0.0', payload: z.object({ email: z.string() }) }),
  });
  const bus = core.createEventBus({ catalog });
  const handled = [];
  const record = async (event) => { handled.push(event.payload.email); };
  bus.subscribe('auth.user_signed_up', record, { name: 'consumer.record' });
  await bus.start();
  const event = await bus.publish('auth.user_signed_up', { email: 'ada@example.com' });
  let refusedCode = null;
  try { await bus.publish('auth.user_signed_up', { email: 42 }); } catch (err) { refusedCode = err.code; }
  await bus.idle({ timeoutMs: 10000 });
  await bus.stop();
  const report = { exports: exportsOf, handled, eventId: event.eventId, eventType: event.eventType, refusedCode };
`;

describe('packed tarball', () => {
  it('loads every subpath with import (ESM) and publishes an event', () => {
    writeFileSync(
      join(work, 'esm.mjs'),
      `import { createRequire } from 'node:module';
import { z } from 'zod';
const subpaths = ${JSON.stringify(subpaths)};
const load = (spec) => import(spec);
${flow}
// An error from the CommonJS copy is still recognised by the ESM copy's EventBusError.is.
const cjs = createRequire(import.meta.url)('@blawby/event-bus');
report.crossCopyBrand = core.EventBusError.is(new cjs.UnknownEventTypeError('a.b_created'), 'UNKNOWN_EVENT_TYPE');
console.log(JSON.stringify(report));
`,
    );
    const report = JSON.parse(run(process.execPath, ['esm.mjs'], work)) as RuntimeReport;
    expectWorking(report);
    expect(report.crossCopyBrand).toBe(true);
  }, 60_000);

  it('loads every subpath with require (CommonJS), with the same exports as ESM', () => {
    writeFileSync(
      join(work, 'cjs.cjs'),
      `const { z } = require('zod');
const subpaths = ${JSON.stringify(subpaths)};
const load = async (spec) => require(spec);
(async () => {
${flow}
console.log(JSON.stringify(report));
})().catch((err) => { console.error(err); process.exit(1); });
`,
    );
    // As on Node 20 before 20.19, where require() cannot load an ES module: the CommonJS build must not need it.
    const noRequireEsm = '--no-experimental-require-module';
    const flags = process.allowedNodeEnvironmentFlags.has(noRequireEsm) ? [noRequireEsm] : [];
    const cjs = JSON.parse(run(process.execPath, [...flags, 'cjs.cjs'], work)) as RuntimeReport;
    expectWorking(cjs);
    const esm = JSON.parse(
      run(process.execPath, ['--input-type=module', '-e', esmExportsScript()], work),
    ) as RuntimeReport['exports'];
    expect(cjs.exports).toEqual(esm);
  }, 60_000);

  for (const kind of ['module', 'commonjs'] as const) {
    it(`type-checks a TypeScript consumer as ${kind === 'module' ? 'ESM' : 'CommonJS'} under module nodenext`, () => {
      const dir = join(work, `ts-${kind}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `ts-${kind}`, private: true, type: kind }));
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            target: 'es2022',
            lib: ['es2023'],
            types: ['node'],
            strict: true,
            noEmit: true,
            skipLibCheck: true,
          },
          files: ['consumer.ts'],
        }),
      );
      writeFileSync(join(dir, 'consumer.ts'), typedConsumer());
      const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const files = run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFilesOnly'], dir);
      // Each module system must get its own declarations: .d.ts for import, .d.cts for require.
      const ownDecl = kind === 'module' ? 'index.d.ts' : 'index.d.cts';
      const otherDecl = kind === 'module' ? 'index.d.cts' : 'index.d.ts';
      expect(files).toContain(`event-bus/dist/${ownDecl}`);
      expect(files).not.toContain(`event-bus/dist/${otherDecl}`);
      run(process.execPath, [tsc, '-p', 'tsconfig.json'], dir);
    }, 120_000);
  }
});

function expectWorking(report: RuntimeReport): void {
  for (const spec of subpaths) expect(report.exports[spec], spec).not.toHaveLength(0);
  expect(report.exports['@blawby/event-bus']).toEqual(expect.arrayContaining(['createEventBus', 'defineCatalog']));
  expect(report.eventType).toBe('auth.user_signed_up');
  expect(report.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(report.handled).toEqual(['ada@example.com']);
  expect(report.refusedCode).toBe('EVENT_VALIDATION_FAILED');
}

function esmExportsScript(): string {
  return `const out = {};
for (const spec of ${JSON.stringify(subpaths)}) out[spec] = Object.keys(await import(spec)).sort();
console.log(JSON.stringify(out));`;
}

/**
 * A consumer whose typed calls only compile if the declarations resolve and
 * carry the catalog's types: a wrong payload or an unknown type must be an
 * error (an `any` from a lost declaration would make `@ts-expect-error` fail).
 */
function typedConsumer(): string {
  const adapterImports = entries
    .filter((e) => e.subpath !== '.')
    .map((e, i) => `import * as entry${i} from '${specifierOf(e.subpath)}';`);
  const adapterNames = entries.filter((e) => e.subpath !== '.').map((_, i) => `entry${i}`);
  return `import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, EventBusError } from '@blawby/event-bus';
${adapterImports.join('\n')}

const catalog = defineCatalog({
  'auth.user_signed_up': defineEvent({ version: '1.0.0', payload: z.object({ email: z.string() }) }),
});
const bus = createEventBus({ catalog });

bus.subscribe('auth.user_signed_up', async (event) => {
  const email: string = event.payload.email;
  // @ts-expect-error the payload has no such field
  void event.payload.missing;
  void email;
}, { name: 'consumer.typed' });

export async function main(): Promise<string> {
  const event = await bus.publish('auth.user_signed_up', { email: 'ada@example.com' });
  const type: 'auth.user_signed_up' = event.eventType;
  // @ts-expect-error wrong payload type
  await bus.publish('auth.user_signed_up', { email: 42 });
  // @ts-expect-error unknown event type
  await bus.publish('auth.user_deleted', { email: 'ada@example.com' });
  try {
    await bus.stop();
  } catch (err) {
    if (EventBusError.is(err)) return err.code;
  }
  return type + event.eventId;
}

export const modules: object[] = [${adapterNames.join(', ')}];
`;
}
