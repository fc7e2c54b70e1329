/**
 * The CLI without the process: parses `argv` against the command table,
 * runs the command with a {@link CommandContext}, and turns every failure
 * into a message on stderr and an exit code (see `exit-codes.ts`).
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { EventBusError, type Catalog } from '@blawby/event-bus';
import { CliError, usageError } from './cli-error';
import type { CliIo, Command, CommandContext, OpenedBus } from './command';
import { COMMANDS } from './commands';
import { connect, type Connection } from './connect';
import { ExitCode, type ExitCodeValue } from './exit-codes';
import { commandHelp, commandList, optionsOf } from './help';
import { loadCatalogModule } from './load-catalog';
import { openBus } from './open-bus';

/** The package version (package.json sits two folders up both from adapters/cli/ and from dist/bin/). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The command whose words start `words` (the longest such path). */
function findCommand(commands: readonly Command[], words: readonly string[]): Command | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= words.length && c.path.every((w, i) => words[i] === w)) {
      if (!best || c.path.length > best.path.length) best = c;
    }
  }
  return best;
}

/** Runs one command line; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, commands: readonly Command[] = COMMANDS): Promise<ExitCodeValue> {
  const write = (s: string) => io.stderr.write(s);
  try {
    return await dispatch(argv, io, commands);
  } catch (err) {
    const { code, message, hint, cause } = describeFailure(err);
    write(`event-bus: ${message}\n`);
    if (cause) write(`  cause: ${cause}\n`);
    if (hint) write(`  hint: ${hint}\n`);
    if (io.env.EVENT_BUS_DEBUG && err instanceof Error && err.stack) write(`${err.stack}\n`);
    return code;
  }
}

async function dispatch(argv: readonly string[], io: CliIo, commands: readonly Command[]): Promise<ExitCodeValue> {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  if (words.length === 0) {
    if (argv[0] === '--version' || argv[0] === '-v') {
      io.stdout.write(`${packageVersion()}\n`);
      return ExitCode.OK;
    }
    const asked = argv[0] === '--help' || argv[0] === '-h';
    (asked ? io.stdout : io.stderr).write(commandList(commands));
    return asked ? ExitCode.OK : ExitCode.USAGE;
  }
  if (words[0] === 'help') return dispatch([...argv.slice(1), '--help'], io, commands);
  const command = findCommand(commands, words);
  if (!command) {
    const group = commands.some((c) => c.path.length > 1 && words.every((w, i) => c.path[i] === w));
    if (group) {
      const asked = argv.includes('--help') || argv.includes('-h');
      (asked ? io.stdout : io.stderr).write(commandList(commands, words));
      return asked ? ExitCode.OK : ExitCode.USAGE;
    }
    throw usageError(`unknown command "${words.join(' ')}"`, 'run `event-bus --help` for the list of commands');
  }
  const rest = argv.slice(command.path.length);
  const options = optionsOf(command);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: Object.fromEntries(
        Object.entries(options).map(([name, o]) => [
          name,
          { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageError(`${(err as Error).message}`, `run \`event-bus ${command.path.join(' ')} --help\``);
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(command));
    return ExitCode.OK;
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const wanted = min === max ? `${min}` : `${min} to ${max}`;
    throw usageError(
      `${command.path.join(' ')} takes ${wanted} argument(s), got ${parsed.positionals.length}` +
        (parsed.positionals.length ? ` (${parsed.positionals.join(' ')})` : ''),
      `usage: event-bus ${command.path.join(' ')}${command.usage ? ` ${command.usage}` : ''} [options]`,
    );
  }
  const context = new Context(io, parsed.values as CommandContext['values'], parsed.positionals);
  try {
    return (await command.run(context)) ?? ExitCode.OK;
  } finally {
    await context.dispose();
  }
}

/** The context one command runs with; closes what it opened. */
class Context implements CommandContext {
  private connection: Promise<Connection> | undefined;
  private catalog: Promise<Catalog | undefined> | undefined;
  private readonly buses: OpenedBus[] = [];

  constructor(
    readonly io: CliIo,
    readonly values: CommandContext['values'],
    readonly positionals: readonly string[],
  ) {}

  print(line = ''): void {
    this.io.stdout.write(`${line}\n`);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  note(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  loadCatalog(options?: { required?: boolean }): Promise<Catalog | undefined> {
    const spec = (this.values.catalog as string | undefined) ?? (this.io.env.EVENT_BUS_CATALOG || undefined);
    if (spec === undefined) {
      if (options?.required) {
        return Promise.reject(usageError('no catalog given', 'pass --catalog <module> (or set EVENT_BUS_CATALOG)'));
      }
      return Promise.resolve(undefined);
    }
    this.catalog ??= loadCatalogModule(spec, this.io.cwd);
    return this.catalog;
  }

  connect(): Promise<Connection> {
    this.connection ??= connect({
      databaseUrl: this.values['database-url'] as string | undefined,
      pglite: this.values.pglite as string | undefined,
      env: this.io.env,
      cwd: this.io.cwd,
    });
    return this.connection;
  }

  async openBus(options?: { eventTypes?: readonly string[] }): Promise<OpenedBus> {
    const catalog = await this.loadCatalog();
    const connection = await this.connect();
    const opened = await openBus(
      connection,
      { schema: this.values.schema as string | undefined, tablePrefix: this.values['table-prefix'] as string | undefined },
      catalog,
      options?.eventTypes,
    );
    this.buses.push(opened);
    return opened;
  }

  async dispose(): Promise<void> {
    for (const { bus } of this.buses.splice(0)) await bus.stop({ timeoutMs: 5000 }).catch(() => {});
    const connection = await this.connection?.catch(() => undefined);
    await connection?.close().catch(() => {});
  }
}

/** The exit code, message, hint and cause of a failure. */
function describeFailure(err: unknown): { code: ExitCodeValue; message: string; hint?: string; cause?: string } {
  if (err instanceof CliError) return { code: err.exitCode, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  if (EventBusError.is(err)) {
    const cause = err.cause instanceof Error ? err.cause.message : undefined;
    const base = { message: `${err.message} (${err.code})`, ...(cause ? { cause } : {}) };
    switch (err.code) {
      case 'INVALID_OPTION':
      case 'UNKNOWN_EVENT_TYPE':
      case 'INVALID_EVENT_NAME':
        return { code: ExitCode.USAGE, ...base };
      case 'STORAGE_UNAVAILABLE':
        return { code: ExitCode.DATABASE, ...base, hint: 'check that the database is reachable' };
      default:
        return { code: ExitCode.FAILURE, ...base };
    }
  }
  return { code: ExitCode.FAILURE, message: err instanceof Error ? err.message : String(err) };
}
