/**
 * `npm run catalog:docs`: exports the Blawby example's catalog
 * (examples/blawby/catalog.ts) into docs/catalog/ as an AsyncAPI 3.0
 * document and a Markdown page, through the `event-bus catalog export`
 * command. test/cli/catalog-docs.int.test.ts runs it into a temporary
 * directory and fails when docs/catalog/ differs, so a catalog change without
 * a re-export fails CI.
 *
 *   npm run catalog:docs                  write docs/catalog/
 *   npm run catalog:docs -- --out <dir>   write elsewhere (the drift test)
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCli } from '../adapters/cli/run';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The files of docs/catalog/ and the export options of each. */
const CATALOG_DOCS = [
  {
    file: 'asyncapi.json',
    args: ['--format', 'asyncapi', '--title', 'Blawby events', '--doc-version', '1.0.0', '--description', 'Every event the Blawby backend publishes through @blawby/event-bus.'],
  },
  {
    file: 'catalog.md',
    args: ['--format', 'markdown', '--title', 'Blawby event catalog', '--description', 'Every event the Blawby backend publishes through @blawby/event-bus (examples/blawby/catalog.ts).'],
  },
] as const;

/** Writes every file of {@link CATALOG_DOCS} into `outDir`; rejects when an export fails. */
async function exportCatalogDocs(outDir: string): Promise<void> {
  for (const doc of CATALOG_DOCS) {
    let errors = '';
    const code = await runCli(
      ['catalog', 'export', '--catalog', 'examples/blawby/catalog.ts', ...doc.args, '--out', join(outDir, doc.file)],
      {
        stdout: process.stdout,
        stderr: { write: (s: string) => (errors += s) },
        env: process.env,
        cwd: root,
        signal: new AbortController().signal,
      },
    );
    if (code !== 0) throw new Error(`exporting ${doc.file} failed (exit ${code}):\n${errors}`);
  }
}

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const outDir = resolve(values.out ?? join(root, 'docs', 'catalog'));
await exportCatalogDocs(outDir);
process.stdout.write(`catalog docs written to ${outDir}\n`);
