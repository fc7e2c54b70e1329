#!/usr/bin/env node
/**
 * Build guard: fails when package.json and the built files drift apart.
 *
 *   node scripts/check-package.mjs           check (run after `npm run build`, and in CI)
 *   node scripts/check-package.mjs --write   rewrite `exports`, `typesVersions`, `main`,
 *                                            `module`, `types` and typedoc.json's
 *                                            `entryPoints` from the entry list
 *
 * Checks:
 * 1. `exports` (and `typesVersions`, `main`, `module`, `types`, and typedoc.json's
 *    `entryPoints`) are exactly what the entry points on disk call for
 *    (scripts/package-entries.mjs): no placeholder subpath, none missing.
 * 2. Every file those fields name exists in dist/, and every entry file in dist/ has
 *    a subpath (a stale build of a removed adapter fails).
 * 3. No third-party code is bundled (source maps name no node_modules file), except
 *    the ESM-only dependencies the CommonJS build must carry (see tsup.config.ts).
 * 4. Every bare import left in dist/ is a dependency, a peer dependency, a Node
 *    built-in or the package itself; and the core and testing entries (JS and
 *    declarations, followed through shared chunks) import no adapter's client, so a
 *    user who never imports an adapter never needs its peer dependency.
 * 5. No adapter carries core code: an adapter's entry files, and every chunk they
 *    reach through relative imports, have no source under src/ in their source
 *    maps and no copy of the error classes' brand. Adapters import the core as
 *    '@blawby/event-bus' (eslint.config.js enforces it in the source), so one copy
 *    of the core runs and `instanceof` holds across core and adapter errors.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { expectedExports, expectedTypesVersions, packageEntries } from './package-entries.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifestPath = join(root, 'package.json');
const manifestText = readFileSync(manifestPath, 'utf8');
const manifest = JSON.parse(manifestText);
const entries = packageEntries(root);
const dist = join(root, 'dist');

/** ESM-only runtime dependencies that the CommonJS build bundles on purpose (tsup.config.ts). */
const BUNDLED_IN_CJS = ['p-retry', 'is-network-error'];
/** Packages the core and testing entries may import at run time or in their types. */
const CORE_ALLOWED = new Set([...Object.keys(manifest.dependencies ?? {}), 'zod']);
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** The key of the `Symbol.for` brand in src/errors.ts: a file holding it holds a copy of the error classes. */
const CORE_ERROR_BRAND = '@blawby/event-bus/error';

const expected = {
  main: './dist/index.cjs',
  module: './dist/index.js',
  types: './dist/index.d.cts',
  exports: expectedExports(entries),
  typesVersions: expectedTypesVersions(entries),
};

const typedocPath = join(root, 'typedoc.json');
const typedocText = readFileSync(typedocPath, 'utf8');
const typedoc = JSON.parse(typedocText);
const expectedEntryPoints = entries.map((e) => e.source);

if (process.argv.includes('--write')) {
  const next = { ...manifest };
  for (const [field, value] of Object.entries(expected)) next[field] = value;
  writeIfChanged(manifestPath, manifestText, next, 'package.json exports');
  const nextTypedoc = { ...typedoc, entryPoints: expectedEntryPoints };
  writeIfChanged(typedocPath, typedocText, nextTypedoc, 'typedoc.json entryPoints');
  process.exit(0);
}

function writeIfChanged(path, before, value, what) {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (text === before) return console.log(`${what}: already match ${entries.map((e) => e.subpath).join(', ')}`);
  writeFileSync(path, text);
  console.log(`${what}: rewritten for ${entries.map((e) => e.subpath).join(', ')}`);
}

const problems = [];
const fail = (message) => problems.push(message);

// 1. Manifest fields against the entry points on disk.
const sources = entries.map((e) => e.source).join(', ');
if (!entries.some((e) => e.subpath === '.')) fail('src/index.ts is missing: the package has no main entry');
for (const [field, value] of Object.entries(expected)) {
  if (!isDeepStrictEqual(manifest[field], value)) {
    fail(
      `package.json "${field}" does not match the entry points on disk (${sources}).\n` +
        `    expected: ${JSON.stringify(value)}\n    actual:   ${JSON.stringify(manifest[field])}\n` +
        '    fix: npm run sync:exports',
    );
  }
}
if (!isDeepStrictEqual(typedoc.entryPoints, expectedEntryPoints)) {
  fail(
    `typedoc.json "entryPoints" should be ${JSON.stringify(expectedEntryPoints)}, ` +
      `not ${JSON.stringify(typedoc.entryPoints)}\n` +
      '    fix: npm run sync:exports',
  );
}
if (manifest.sideEffects !== false) fail('package.json "sideEffects" must be false');
if (!manifest.files?.includes('dist')) fail('package.json "files" must include "dist"');

// 2. Named files exist; every built entry has a subpath.
if (!existsSync(dist)) {
  fail('dist/ does not exist: run `npm run build` first');
} else {
  const named = new Set();
  const collect = (value) => {
    if (typeof value === 'string') named.add(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(expected.exports);
  collect(expected.typesVersions);
  for (const file of named) {
    if (!existsSync(join(root, file))) fail(`${file} is named in package.json but was not built`);
    if (/\.c?js$/.test(file) && !existsSync(join(root, `${file}.map`))) fail(`${file}.map is missing`);
  }
  const entryNames = new Set(entries.map((e) => e.name));
  for (const file of readdirSync(dist)) {
    const base = file.replace(/\.(?:d\.ts|d\.cts|js|cjs)(?:\.map)?$/, '');
    // Shared chunks: esbuild's `chunk-HASH.js`, rollup-plugin-dts's `name-HASH.d.ts`.
    if (base === file || base.startsWith('chunk-') || /-[\w-]{8}$/.test(base)) continue;
    if (!entryNames.has(base)) fail(`dist/${file} belongs to no entry point (stale build? run \`npm run build\`)`);
  }

  // 3. No third-party code bundled.
  for (const file of listFiles(dist).filter((f) => f.endsWith('.map'))) {
    const map = JSON.parse(readFileSync(file, 'utf8'));
    const bundled = new Set();
    for (const source of map.sources ?? []) {
      const pkg = packageOfPath(source);
      if (pkg && !(file.endsWith('.cjs.map') && BUNDLED_IN_CJS.includes(pkg))) bundled.add(pkg);
    }
    for (const pkg of bundled) {
      const where = relative(root, file);
      fail(`${where} bundles code of "${pkg}": make it a dependency or peer dependency (then it stays external)`);
    }
  }

  // 4. Bare imports.
  const deps = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  const codeFiles = listFiles(dist).filter((f) => /\.(?:c?js|d\.c?ts)$/.test(f));
  const importsOf = new Map(codeFiles.map((f) => [f, specifiers(readFileSync(f, 'utf8'))]));
  for (const [file, specs] of importsOf) {
    for (const spec of specs) {
      if (spec.startsWith('.') || builtins.has(spec)) continue;
      const pkg = packageName(spec);
      if (pkg === manifest.name || deps.has(pkg)) continue;
      if (file.endsWith('.cjs') && BUNDLED_IN_CJS.includes(pkg)) continue;
      fail(`${relative(root, file)} imports "${spec}", which is neither a dependency nor a peer dependency`);
    }
  }
  for (const entry of entries.filter((e) => e.subpath === '.' || e.subpath === './testing')) {
    for (const ext of ['js', 'cjs', 'd.ts', 'd.cts']) {
      const start = join(dist, `${entry.name}.${ext}`);
      if (!importsOf.has(start)) continue;
      for (const [spec, via] of reachableBareImports(start, importsOf)) {
        if (builtins.has(spec)) continue;
        const pkg = packageName(spec);
        if (pkg === manifest.name && entry.subpath === './testing') continue;
        if (CORE_ALLOWED.has(pkg) || (ext === 'cjs' && BUNDLED_IN_CJS.includes(pkg))) continue;
        fail(`entry "${entry.subpath}" (dist/${entry.name}.${ext}) reaches "${spec}" via ${relative(root, via)}`);
      }
    }
  }

  // 5. No core code in adapter chunks.
  const srcDir = join(root, 'src') + sep;
  for (const entry of entries.filter((e) => e.source.startsWith('adapters/'))) {
    for (const ext of ['js', 'cjs']) {
      const start = join(dist, `${entry.name}.${ext}`);
      if (!importsOf.has(start)) continue;
      for (const file of reachableFiles(start, importsOf)) {
        const mapPath = `${file}.map`;
        const sources = existsSync(mapPath) ? (JSON.parse(readFileSync(mapPath, 'utf8')).sources ?? []) : [];
        const core = sources.map((source) => resolve(dirname(file), source)).filter((path) => path.startsWith(srcDir));
        const where = `${relative(root, file)} (reached from dist/${entry.name}.${ext})`;
        for (const path of core) {
          fail(`${where} bundles core code from ${relative(root, path)}: import it as '${manifest.name}' instead`);
        }
        if (core.length === 0 && readFileSync(file, 'utf8').includes(CORE_ERROR_BRAND)) {
          fail(`${where} contains a copy of the core's error classes: import them as '${manifest.name}'`);
        }
      }
    }
  }
}

if (problems.length) {
  console.error(`check-package: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`check-package: ok (${entries.map((e) => e.subpath).join(', ')})`);

/** Every file under `dir`, recursively. */
function listFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? listFiles(join(dir, d.name)) : [join(dir, d.name)],
  );
}

/** `@scope/name` or `name` of a bare specifier. */
function packageName(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The package a source-map path lies in, if it is under node_modules. */
function packageOfPath(source) {
  const at = source.lastIndexOf('node_modules/');
  if (at === -1) return null;
  return packageName(source.slice(at + 'node_modules/'.length));
}

/** Module specifiers of static/dynamic imports, re-exports and requires in JS or declaration text. */
function specifiers(text) {
  const out = new Set();
  const patterns = [
    /\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  // Text that only looks like an import (a CLI's generated source, a command named "import") is no
  // specifier: one with whitespace or a template placeholder cannot name a module.
  for (const re of patterns) for (const m of text.matchAll(re)) if (!/[\s${}]/.test(m[1])) out.add(m[1]);
  return out;
}

/** Bare specifiers reachable from `start` through relative imports, each with the file that imports it. */
function reachableBareImports(start, importsOf) {
  const found = new Map();
  const seen = new Set();
  const queue = [start];
  while (queue.length) {
    const file = queue.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importsOf.get(file) ?? []) {
      if (!spec.startsWith('.')) {
        if (!found.has(spec)) found.set(spec, file);
        continue;
      }
      const target = resolveRelative(file, spec);
      if (target) queue.push(target);
    }
  }
  return found;
}

/** `start` and every dist file it reaches through relative imports. */
function reachableFiles(start, importsOf) {
  const seen = new Set();
  const queue = [start];
  while (queue.length) {
    const file = queue.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importsOf.get(file) ?? []) {
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(file, spec);
      if (target) queue.push(target);
    }
  }
  return seen;
}

/** The dist file a relative specifier names (declarations import `./chunk-x.js` for `chunk-x.d.ts`). */
function resolveRelative(from, spec) {
  const base = join(dirname(from), spec);
  const isDecl = /\.d\.c?ts$/.test(from);
  const candidates = isDecl
    ? [base.replace(/\.c?js$/, (m) => (m === '.cjs' ? '.d.cts' : '.d.ts')), `${base}.d.ts`, `${base}.d.cts`, base]
    : [base, `${base}.js`, `${base}.cjs`];
  return candidates.find((c) => existsSync(c) && !c.endsWith(posix.sep));
}
