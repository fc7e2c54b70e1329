/**
 * Drift check: docs/catalog/ must be what `npm run catalog:docs` writes from
 * examples/blawby/catalog.ts today. A catalog change without a re-export
 * fails here (and so in CI) with the command that fixes it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ROOT } from './run-cli';

// Every test starts CLI processes (about a second each, far more on a loaded machine).
vi.setConfig({ testTimeout: 240_000 });

const fresh = mkdtempSync(join(tmpdir(), 'event-bus-catalog-docs-'));
afterAll(() => rmSync(fresh, { recursive: true, force: true }));

describe('docs/catalog', () => {
  it('is in step with examples/blawby/catalog.ts (else run npm run catalog:docs)', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/catalog-docs.ts', '--out', fresh], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const committed = join(ROOT, 'docs', 'catalog');
    expect(readdirSync(committed).sort()).toEqual(['asyncapi.json', 'catalog.md']);
    for (const file of readdirSync(fresh)) {
      const want = readFileSync(join(fresh, file), 'utf8');
      const have = readFileSync(join(committed, file), 'utf8');
      expect(have === want, `docs/catalog/${file} is out of date: run \`npm run catalog:docs\` and commit the result`).toBe(true);
    }
  });
});
