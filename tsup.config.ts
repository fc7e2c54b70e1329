/**
 * Build: ESM + CommonJS + declarations (.d.ts and .d.cts) for every entry
 * point that exists (scripts/package-entries.mjs reads them from the file
 * system, so no placeholder entry is ever built; scripts/check-package.mjs
 * fails when `exports` and dist/ drift apart).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, type Options } from 'tsup';
import { packageEntries } from './scripts/package-entries.mjs';

/** esbuild's plugin type, as tsup re-exposes it (esbuild is not a direct dependency). */
type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number];

interface Manifest {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const root = process.cwd();
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const entries = packageEntries(root);

const escape = (name: string) => name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** `name` and any of its subpaths (`drizzle-orm/pg-core`). */
const withSubpaths = (name: string) => new RegExp(`^${escape(name)}(?:/.*)?$`);

/**
 * Runtime dependencies that ship only as ESM. Node 20 below 20.19 cannot
 * `require()` them, so the CommonJS build carries its own copy while the ESM
 * build imports the installed package.
 */
const ESM_ONLY = ['p-retry', 'is-network-error'];
const esmOnly = new RegExp(`^(?:${ESM_ONLY.map(escape).join('|')})$`);

/** Keeps {@link ESM_ONLY} packages external in the ESM build (tsup's `noExternal` applies to both formats). */
const esmOnlyExternalInEsm: EsbuildPlugin = {
  name: 'esm-only-external-in-esm',
  setup(build) {
    // tsup defines TSUP_FORMAT per output format; esbuild itself always builds ESM here (treeshake runs rollup after).
    const format = JSON.parse(build.initialOptions.define?.['TSUP_FORMAT'] ?? '"esm"') as string;
    if (format !== 'esm') return;
    build.onResolve({ filter: esmOnly }, (args) => ({ path: args.path, external: true }));
  },
};

/** Externals of every build: dependencies, peers and the package's own subpaths. */
const external = [
  ...Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })
    .filter((name) => !ESM_ONLY.includes(name))
    .map(withSubpaths),
  withSubpaths('@blawby/event-bus'),
];

export default defineConfig([
  {
    entry: Object.fromEntries(entries.map((e) => [e.name, e.source])),
    outDir: 'dist',
    format: ['esm', 'cjs'],
    platform: 'node',
    target: 'node20',
    dts: true,
    sourcemap: true,
    // dist/bin is the CLI build's own (below); both builds run at once.
    clean: ['!bin/**'],
    treeshake: true,
    splitting: true,
    // Dependencies and optional peers are the user's to install; the package's own
    // subpaths (an adapter importing '@blawby/event-bus') stay imports of the one copy.
    external,
    noExternal: ESM_ONLY.map((name) => new RegExp(`^${escape(name)}$`)),
    esbuildPlugins: [esmOnlyExternalInEsm],
  },
  {
    // The `event-bus` binary (package.json "bin"): one ESM file that keeps the
    // shebang of adapters/cli/main.ts and reaches the core and the PostgreSQL
    // storage through the package's own subpaths, like any other user.
    entry: { 'event-bus': 'adapters/cli/main.ts' },
    outDir: 'dist/bin',
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: true,
    clean: true,
    splitting: false,
    external,
  },
]);
