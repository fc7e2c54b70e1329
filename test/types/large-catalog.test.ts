/**
 * Typed event SDKs are known to fail with large catalogs ("type instantiation
 * is excessively deep", inngest-js #740) or to make editors crawl. This checks
 * the typed API over a generated catalog of 300 event types with `tsc` alone:
 * it must pass, without TS2589, within a generous time bound.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
/** Seconds; the issue asks for "a few seconds", the bound leaves room for slow CI machines. */
const MAX_CHECK_SECONDS = 20;
/**
 * Prints the tsc process's CPU time when it exits. The bound is checked on CPU
 * time rather than tsc's wall-clock "Check time", which doubles when the other
 * test files run at the same time on a small machine.
 */
const REPORT_CPU = `data:text/javascript,process.on('exit', () => {
  const u = process.cpuUsage();
  process.stderr.write('CPU time: ' + ((u.user + u.system) / 1e6).toFixed(2) + 's\\n');
})`;

describe('a catalog of 300 event types', () => {
  it('is generated from scripts/generate-large-catalog.mjs and up to date', () => {
    const run = spawnSync(process.execPath, ['scripts/generate-large-catalog.mjs', '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it(`type-checks without "excessively deep" errors in under ${MAX_CHECK_SECONDS} s of CPU`, { timeout: 180_000 }, () => {
    const run = spawnSync(
      process.execPath,
      ['--import', REPORT_CPU, tsc, '--noEmit', '--extendedDiagnostics', '-p', 'test/types/tsconfig.large-catalog.json'],
      { cwd: root, encoding: 'utf8' },
    );
    const output = `${run.stdout}\n${run.stderr}`;
    expect(output).not.toMatch(/TS2589|excessively deep/);
    expect(output).not.toMatch(/error TS\d+/);
    expect(run.status).toBe(0);

    const seconds = (name: string) => Number(new RegExp(`^${name}:\\s+([\\d.]+)s$`, 'm').exec(output)?.[1]);
    const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(output)?.[1]);
    const check = seconds('Check time');
    const total = seconds('Total time');
    const cpu = seconds('CPU time');
    const instantiations = count('Instantiations');
    expect(check).toBeGreaterThan(0);
    expect(cpu).toBeGreaterThan(0);
    process.stderr.write(
      `[large catalog] tsc: check ${check}s, total ${total}s (wall clock), CPU ${cpu}s, ` +
        `${instantiations} instantiations, ` +
        `memory ${/^Memory used:\s+(\S+)$/m.exec(output)?.[1]}\n`,
    );
    expect(cpu).toBeLessThan(MAX_CHECK_SECONDS);
  });
});
