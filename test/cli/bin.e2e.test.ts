/**
 * The built binary (`dist/bin/event-bus.js`, package.json's `bin`), as a
 * user's shell runs it: executed through its shebang, it reaches the core
 * through the package's own exports, migrates and checks a PGlite database,
 * and loads both a TypeScript catalog (through tsx) and a compiled one.
 * Builds first when the build is missing or older than the sources.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BIN, ensureBuilt } from './built-bin';
import { ROOT, runCli } from './run-cli';

// Every test starts CLI processes (about a second each, far more on a loaded machine).
vi.setConfig({ testTimeout: 240_000 });

const work = mkdtempSync(join(tmpdir(), 'event-bus-bin-'));

beforeAll(ensureBuilt, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('dist/bin/event-bus.js', () => {
  it('is the package bin, executable, starting with a node shebang', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual({ 'event-bus': './dist/bin/event-bus.js' });
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(() => accessSync(BIN, constants.X_OK)).not.toThrow();
    const version = execFileSync(BIN, ['--version'], { cwd: ROOT, encoding: 'utf8' });
    expect(version.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('migrates and checks a PGlite database', async () => {
    const db = join(work, 'db');
    const migrate = await runCli(['migrate', '--pglite', db], { entry: BIN });
    expect(migrate.stderr).toBe('');
    expect(migrate.stdout).toMatch(/applied migration\(s\) 1/);
    const health = await runCli(['health', '--pglite', db, '--json'], { entry: BIN });
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout)).toMatchObject({ status: 'healthy', unprocessed: 0, deadLetters: 0 });
  });

  it('exports a TypeScript catalog through tsx and a compiled one', async () => {
    const ts = await runCli(['catalog', 'export', '--catalog', 'test/cli/fixtures/shop-catalog.ts', '-f', 'json-schema'], { entry: BIN });
    expect(ts.stderr).toBe('');
    expect(Object.keys(JSON.parse(ts.stdout) as object)).toEqual(['shop.order_placed', 'shop.order_cancelled']);
    const js = await runCli(['catalog', 'export', '--catalog', 'test/cli/fixtures/compiled-catalog.mjs', '-f', 'markdown'], { entry: BIN });
    expect(js.code).toBe(0);
    expect(js.stdout).toContain('### ledger.entry_posted');
  });
});
