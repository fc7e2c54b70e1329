/**
 * The package's entry points, read from the file system: the core, the
 * testing helpers, and each adapter whose `index.ts` exists. This one
 * list drives the tsup build (tsup.config.ts), the `exports` map
 * (scripts/check-package.mjs checks it, `--write` rewrites it) and the
 * packed-tarball consumer test, so no subpath can point at a file that does
 * not exist.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every subpath the package may have (ARCHITECTURE.md), in `exports` order.
 * `name` is the output file's base name in dist/. An adapter joins the
 * package when its `index.ts` exists; folders not listed here (such as
 * `adapters/http`, shared by the framework adapters) are internal.
 */
const ALL_ENTRIES = [
  { subpath: '.', name: 'index', source: 'src/index.ts' },
  { subpath: './testing', name: 'testing', source: 'src/testing/index.ts' },
  ...['postgres', 'redis', 'nats', 'fastify', 'express', 'hono', 'prometheus', 'opentelemetry'].map((name) => ({
    subpath: `./${name}`,
    name,
    source: `adapters/${name}/index.ts`,
  })),
];

/**
 * The entries whose source file exists under `root`.
 *
 * @param {string} [root] the repository root (default: the working directory)
 * @returns {{ subpath: string, name: string, source: string }[]}
 */
export function packageEntries(root = process.cwd()) {
  return ALL_ENTRIES.filter((e) => existsSync(join(root, e.source))).map((e) => ({ ...e }));
}

/**
 * The `exports` condition object of one entry: ESM and CommonJS, each with its
 * own declaration file (tsup writes `.d.ts` beside `.js` and `.d.cts` beside
 * `.cjs`), `types` first as TypeScript requires.
 *
 * @param {{ name: string }} entry
 */
export function exportConditions(entry) {
  return {
    import: { types: `./dist/${entry.name}.d.ts`, default: `./dist/${entry.name}.js` },
    require: { types: `./dist/${entry.name}.d.cts`, default: `./dist/${entry.name}.cjs` },
  };
}

/**
 * The whole `exports` map the entries call for, plus `./package.json` for
 * tools that read it.
 *
 * @param {{ subpath: string, name: string }[]} entries
 */
export function expectedExports(entries) {
  /** @type {Record<string, unknown>} */
  const map = {};
  for (const entry of entries) map[entry.subpath] = exportConditions(entry);
  map['./package.json'] = './package.json';
  return map;
}

/**
 * `typesVersions` for TypeScript's legacy `node10` resolution, which ignores
 * `exports`: it maps each subpath to its CommonJS declarations.
 *
 * @param {{ subpath: string, name: string }[]} entries
 */
export function expectedTypesVersions(entries) {
  /** @type {Record<string, string[]>} */
  const paths = {};
  for (const entry of entries) {
    if (entry.subpath !== '.') paths[entry.subpath.slice(2)] = [`./dist/${entry.name}.d.cts`];
  }
  return { '*': paths };
}
