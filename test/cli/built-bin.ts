/**
 * The built binary (`dist/bin/event-bus.js`) for the tests that run it as a
 * user's shell does: {@link ensureBuilt} builds first when the build is
 * missing or older than the sources (as the packed-package test does); CI
 * builds before testing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './run-cli';

/** The package's `bin`. */
export const BIN = join(ROOT, 'dist', 'bin', 'event-bus.js');

function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true }).reduce((max, d) => {
    const path = join(dir, d.name);
    return Math.max(max, d.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }, 0);
}

/** Runs `npm run build` when the bin or the entries it imports are older than the sources. */
export function ensureBuilt(): void {
  const sources = Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'adapters')), statSync(join(ROOT, 'tsup.config.ts')).mtimeMs);
  const stale = [BIN, join(ROOT, 'dist', 'index.js'), join(ROOT, 'dist', 'postgres.js')].find(
    (f) => !existsSync(f) || statSync(f).mtimeMs < sources,
  );
  if (stale) {
    process.stderr.write(`[bin test] ${stale} is missing or older than the sources: running npm run build\n`);
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
}
