/** Types of scripts/package-entries.mjs, for tsup.config.ts and the consumer test. */

/** One entry point of the package. */
export interface PackageEntry {
  /** The `exports` key: `'.'`, `'./testing'`, `'./postgres'`, ... */
  subpath: string;
  /** The output file's base name in dist/: `index`, `testing`, `postgres`, ... */
  name: string;
  /** The source file, relative to the repository root. */
  source: string;
}

/** The entries whose source file exists under `root` (default: the working directory). */
export function packageEntries(root?: string): PackageEntry[];

/** The `exports` condition object of one entry. */
export function exportConditions(entry: Pick<PackageEntry, 'name'>): {
  import: { types: string; default: string };
  require: { types: string; default: string };
};

/** The whole `exports` map the entries call for. */
export function expectedExports(entries: readonly PackageEntry[]): Record<string, unknown>;

/** `typesVersions` for TypeScript's legacy `node10` resolution. */
export function expectedTypesVersions(entries: readonly PackageEntry[]): Record<string, Record<string, string[]>>;
