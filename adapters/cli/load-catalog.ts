/**
 * Loading a catalog from a module path: compiled JavaScript with a plain
 * `import()`, TypeScript through tsx's `tsImport` (tsx is an optional peer:
 * when it is missing the error says to install it or to point at compiled
 * output). The catalog is the module's default export, its `catalog` export,
 * or the export named after `#` (`./events.ts#billingCatalog`).
 */
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Catalog } from '@blawby/event-bus';
import { CliError } from './cli-error';
import { ExitCode } from './exit-codes';

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** True when `value` has the shape of a catalog: an object of definitions with a version and a zod payload. */
export function isCatalog(value: unknown): value is Catalog {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const defs = Object.values(value as Record<string, unknown>);
  return (
    defs.length > 0 &&
    defs.every((d) => {
      const def = d as { version?: unknown; payload?: { safeParse?: unknown } } | null;
      return typeof def?.version === 'string' && typeof def.payload?.safeParse === 'function';
    })
  );
}

async function importModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  if (!TYPESCRIPT.has(extname(file))) return (await import(url)) as Record<string, unknown>;
  let tsx: { tsImport(specifier: string, parent: string): Promise<unknown> } | undefined;
  try {
    tsx = (await import('tsx/esm/api')) as typeof tsx;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  if (tsx) return (await tsx.tsImport(url, import.meta.url)) as Record<string, unknown>;
  try {
    // Without tsx, a runtime that strips types itself (or a process started under tsx) may still load it.
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new CliError(
        ExitCode.CATALOG,
        `cannot load the TypeScript catalog ${file}: the package "tsx" is not installed`,
        'npm install --save-dev tsx, or point --catalog at the compiled .js file',
        { cause: err },
      );
    }
    throw err;
  }
}

/** Loads the catalog `spec` names (`path` or `path#export`), relative to `cwd`. */
export async function loadCatalogModule(spec: string, cwd: string): Promise<Catalog> {
  const hash = spec.lastIndexOf('#');
  const path = hash > 0 ? spec.slice(0, hash) : spec;
  const exportName = hash > 0 ? spec.slice(hash + 1) : undefined;
  const file = resolve(cwd, path);
  if (!existsSync(file)) {
    throw new CliError(ExitCode.CATALOG, `catalog module not found: ${file}`, 'check the path given with --catalog');
  }
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(file);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(ExitCode.CATALOG, `cannot load the catalog module ${file}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  // A CommonJS module (or tsx's interop) may put its exports under `default`.
  const nested = (mod.default ?? {}) as Record<string, unknown>;
  const candidates = exportName
    ? [mod[exportName], nested[exportName]]
    : [mod.default, mod.catalog, nested.default, nested.catalog];
  const catalog = candidates.find(isCatalog);
  if (!catalog) {
    const which = exportName ? `no export "${exportName}" that is a catalog` : 'no default export or "catalog" export that is a catalog';
    throw new CliError(
      ExitCode.CATALOG,
      `${file} has ${which}`,
      'export the defineCatalog(...) result as default or as "catalog", or name it: --catalog <module>#<export>',
    );
  }
  return catalog;
}
