/** `event-bus catalog export`: the catalog as AsyncAPI 3.0, a Markdown page, or one JSON Schema per event type. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from '../command';
import { catalogAsyncApi } from '../export/asyncapi';
import { catalogJsonSchemas } from '../export/json-schema';
import { catalogMarkdown } from '../export/markdown';
import { choiceOption, stringOption } from '../options';

const FORMATS = ['asyncapi', 'markdown', 'json-schema'] as const;

/** The `catalog export` command. */
export const catalogExport: Command = {
  path: ['catalog', 'export'],
  summary: 'Write the catalog as an AsyncAPI 3.0 document, a Markdown page, or JSON Schemas.',
  description:
    'Payload schemas come from the zod schemas through zod\'s own JSON Schema conversion. Without --out the result goes to ' +
    'stdout (json-schema: one object keyed by event type); with --out, asyncapi and markdown write that file and ' +
    'json-schema writes <dir>/<event type>.json per type.',
  uses: ['catalog'],
  options: {
    format: { type: 'string', short: 'f', value: '<format>', description: 'asyncapi, markdown or json-schema (required).' },
    out: { type: 'string', short: 'o', value: '<path>', description: 'File to write (a directory for json-schema). Default: stdout.' },
    title: { type: 'string', value: '<text>', description: "Document title (default 'Event catalog')." },
    'doc-version': { type: 'string', value: '<version>', description: "AsyncAPI info.version (default '1.0.0')." },
    description: { type: 'string', value: '<text>', description: 'A paragraph describing the catalog.' },
  },
  examples: [
    'event-bus catalog export --catalog ./src/events/catalog.ts --format asyncapi --out docs/asyncapi.json',
    'event-bus catalog export --catalog ./dist/catalog.js --format json-schema --out schemas/',
  ],
  async run(ctx) {
    const format = choiceOption(ctx, 'format', FORMATS);
    const catalog = (await ctx.loadCatalog({ required: true }))!;
    const title = stringOption(ctx, 'title');
    const description = stringOption(ctx, 'description');
    const out = stringOption(ctx, 'out');
    const write = (file: string, text: string) => {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
    };
    if (format === 'json-schema') {
      const schemas = catalogJsonSchemas(catalog);
      if (out === undefined) return ctx.printJson(schemas);
      const dir = resolve(ctx.io.cwd, out);
      for (const [type, schema] of Object.entries(schemas)) write(join(dir, `${type}.json`), `${JSON.stringify(schema, null, 2)}\n`);
      ctx.note(`wrote ${Object.keys(schemas).length} schemas to ${dir}`);
      return;
    }
    const text =
      format === 'asyncapi'
        ? `${JSON.stringify(catalogAsyncApi(catalog, { title, version: stringOption(ctx, 'doc-version'), description }), null, 2)}\n`
        : catalogMarkdown(catalog, { title, description });
    if (out === undefined) return void ctx.io.stdout.write(text);
    const file = resolve(ctx.io.cwd, out);
    write(file, text);
    ctx.note(`wrote ${file}`);
  },
};
