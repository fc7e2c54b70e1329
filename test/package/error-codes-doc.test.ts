/**
 * docs/errors.md documents exactly the codes of `ErrorCode` in src/errors.ts:
 * a code added without its documentation (or documented but gone) fails here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

/** The string literals of the `ErrorCode` union, read from the source. */
function errorCodes(): string[] {
  const union = /export type ErrorCode =([^;]+);/.exec(read('src/errors.ts'))?.[1];
  if (!union) throw new Error('src/errors.ts has no `export type ErrorCode = ...;`');
  return [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
}

describe('docs/errors.md', () => {
  const doc = read('docs/errors.md');
  const codes = errorCodes();

  it('has a section and a table row for every ErrorCode', () => {
    expect(codes.length).toBeGreaterThan(0);
    for (const code of codes) {
      expect(doc, `section for ${code}`).toContain(`\n## ${code}\n`);
      expect(doc, `table row for ${code}`).toContain(`| [\`${code}\`](#${code.toLowerCase()}) |`);
    }
  });

  it('documents no code that ErrorCode lacks', () => {
    const documented = [...doc.matchAll(/^## ([A-Z_]+)$/gm)].map((m) => m[1]!);
    expect(documented.sort()).toEqual([...codes].sort());
  });
});
