#!/usr/bin/env node
/**
 * The `event-bus` binary: migrations, health, stats, the live tail, replay,
 * dead letters, retention, catalog export and a standalone dashboard for a
 * deployment of `@blawby/event-bus` on PostgreSQL or PGlite. See docs/cli.md, and
 * adapters/cli/README.md for how commands are added.
 *
 * @example
 * ```sh
 * npx event-bus migrate --database-url postgres://localhost/app
 * npx event-bus tail --type 'billing.*' --catalog ./src/events/catalog.ts
 * npx tsx adapters/cli/main.ts health --pglite ./.data/pglite   # from a checkout
 * ```
 *
 * @module
 */
import { runCli } from './run';

const abort = new AbortController();
const stop = () => abort.abort();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
// `event-bus tail | head -3`: the reader went away, which ends the command, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  stop();
  process.exit(process.exitCode ?? 0);
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: abort.signal,
});
process.exitCode = code;
process.off('SIGINT', stop);
process.off('SIGTERM', stop);
// Everything the command opened is closed by now; should a driver still hold the loop, do not hang a script.
setTimeout(() => process.exit(code), 2000).unref();
