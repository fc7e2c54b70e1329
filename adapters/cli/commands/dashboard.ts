/**
 * `event-bus dashboard`: serves the dashboard page (the one the framework
 * adapters mount at `{prefix}/dashboard`) on its own, against a database,
 * until interrupted. It runs no subscriber: its charts count only what it
 * does itself, while backlog, health, dead letters and the timeline are read
 * from the storage, and the storage's notifications keep the page live.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '@blawby/event-bus';
import { CliError } from '../cli-error';
import type { Command, CommandContext } from '../command';
import { startDashboardServer, type DashboardServer } from '../dashboard-server';
import { ExitCode } from '../exit-codes';
import { flagOption, intOption, stringOption } from '../options';

/** Where request failures go: one line each on stderr. */
function stderrLogger(ctx: CommandContext): Logger {
  const line =
    (level: string) =>
    (fields: Record<string, unknown>, message?: string): void => {
      const err = fields.err instanceof Error ? `: ${fields.err.message}` : '';
      ctx.note(`event-bus dashboard: ${level}: ${message ?? ''}${err}`);
    };
  const ignore = () => {};
  return { debug: ignore, info: ignore, warn: line('warn'), error: line('error') };
}

/** The `dashboard` command. */
export const dashboard: Command = {
  path: ['dashboard'],
  summary: 'Serve the dashboard page against the database (health, backlog, dead letters, timeline), until Ctrl-C.',
  description:
    'Prints the address to open, with a token in its #fragment: the page sends it with every request, and the JSON routes ' +
    'refuse requests without it. The token is new on every start unless --token (or $EVENT_BUS_DASHBOARD_TOKEN) fixes it. ' +
    'The charts count what this process sees; run it next to your workers, not instead of them.',
  uses: ['database', 'catalog'],
  options: {
    port: { type: 'string', short: 'p', value: '<port>', description: 'Port to listen on (default 4000; 0 picks a free one).' },
    host: { type: 'string', value: '<host>', description: 'Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface).' },
    'read-only': { type: 'boolean', description: 'Show everything, change nothing: no redrive or discard.' },
    token: {
      type: 'string',
      value: '<token>',
      description: 'The access token (default: $EVENT_BUS_DASHBOARD_TOKEN, else a new random one).',
    },
  },
  examples: [
    'event-bus dashboard --database-url postgres://localhost/app --catalog ./src/events/catalog.ts',
    'event-bus dashboard --pglite ./.data/pglite --port 0 --read-only',
  ],
  async run(ctx) {
    const port = intOption(ctx, 'port', 4000, 0, 65_535);
    const host = stringOption(ctx, 'host') ?? '127.0.0.1';
    const token = stringOption(ctx, 'token') ?? (ctx.io.env.EVENT_BUS_DASHBOARD_TOKEN || randomBytes(18).toString('base64url'));
    const readOnly = flagOption(ctx, 'read-only');
    const { bus, storage, connection } = await ctx.openBus();

    const listeners = new Set<() => void>();
    const unwatch = storage.watch ? await storage.watch(() => listeners.forEach((l) => l())) : undefined;
    let server: DashboardServer;
    try {
      server = await startDashboardServer(bus, {
        host,
        port,
        token,
        readOnly,
        logger: stderrLogger(ctx),
        signals: {
          changes: (listener) => {
            listeners.add(listener);
            return () => listeners.delete(listener);
          },
        },
      });
    } catch (err) {
      await unwatch?.();
      const code = (err as { code?: string }).code;
      const reason = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (err as Error).message;
      throw new CliError(ExitCode.FAILURE, `cannot listen on ${host}:${port}: ${reason}`, 'pick another with --port (0: any free port)', {
        cause: err,
      });
    }
    // The address on stdout (a script can read it); the rest on stderr.
    ctx.print(`Dashboard: ${server.origin}/dashboard#token=${encodeURIComponent(token)}`);
    ctx.note(`serving the dashboard of ${connection.target}${readOnly ? ' (read-only)' : ''} (Ctrl-C to stop)`);
    try {
      await new Promise<void>((resolve) => {
        if (ctx.io.signal.aborted) return resolve();
        ctx.io.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      await server.close();
      await unwatch?.();
    }
    ctx.note('stopped');
  },
};
