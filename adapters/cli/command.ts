/**
 * What a command is: its words (`['dlq', 'redrive']`), its options, and a
 * `run` that gets a {@link CommandContext}. The command table
 * (`commands/index.ts`) is a plain list of these; adding a command is one
 * file in `commands/` plus one line there.
 */
import type { Catalog, EventBus } from '@blawby/event-bus';
import type { PostgresStorage } from '@blawby/event-bus/postgres';
import type { Connection } from './connect';
import type { ExitCodeValue } from './exit-codes';

/** One option of a command, as `node:util` `parseArgs` takes it, plus what `--help` prints. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One-letter alias (`-j`). */
  short?: string;
  /** May be given several times (collected into an array). */
  multiple?: boolean;
  /** What `--help` says about it (the default included, in words). */
  description: string;
  /** Placeholder of the value in `--help` (`<duration>`). */
  value?: string;
}

/** Option groups several commands share (see `options.ts`). */
export type OptionGroup = 'database' | 'catalog';

/** Where output goes: the process's streams in the binary, anything with `write` in tests. */
export interface CliIo {
  stdout: { write(chunk: string): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  /** The working directory relative paths (`--catalog`, `--out`, `--pglite`) are resolved against. */
  cwd: string;
  /** Aborted on SIGINT/SIGTERM: long-running commands (`tail`) stop cleanly. */
  signal: AbortSignal;
}

/** A bus opened on the database named by the command line, and how to close it. */
export interface OpenedBus {
  bus: EventBus<Catalog>;
  storage: PostgresStorage;
  connection: Connection;
  /** The catalog given with `--catalog`, if any (the bus itself may hold a stand-in; see `bus.ts`). */
  catalog: Catalog | undefined;
}

/** What a command's `run` gets. */
export interface CommandContext {
  /** Parsed option values, by long name. */
  values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  /** Words after the command's own. */
  positionals: readonly string[];
  io: CliIo;
  /** Writes one line to stdout. */
  print(line?: string): void;
  /** Writes a value to stdout as JSON (two-space indent). */
  printJson(value: unknown): void;
  /** Writes one line to stderr (progress, notes). */
  note(line: string): void;
  /** The catalog of `--catalog` / `EVENT_BUS_CATALOG`; `undefined` when neither is given (a CliError when `required`). */
  loadCatalog(options?: { required?: boolean }): Promise<Catalog | undefined>;
  /** Connects to `--database-url` / `DATABASE_URL` or `--pglite DIR`; the context closes it after `run`. */
  connect(): Promise<Connection>;
  /**
   * A bus over the PostgreSQL storage of that database (not started: it runs
   * no subscriber); checks first that the tables exist. `eventTypes` are types
   * named on the command line, accepted as given when no catalog is loaded.
   * The context stops it after `run`.
   */
  openBus(options?: { eventTypes?: readonly string[] }): Promise<OpenedBus>;
}

/** One command of the table. */
export interface Command {
  /** The words that name it: `['health']`, `['dlq', 'list']`. */
  path: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** Positional arguments as `--help` shows them (`[<id>]`). */
  usage?: string;
  /** Paragraphs `--help` prints after the usage line. */
  description?: string;
  /** Shared option groups the command takes. */
  uses?: readonly OptionGroup[];
  /** The command's own options, by long name. */
  options?: Readonly<Record<string, OptionSpec>>;
  /** How many positional arguments it takes (default none). */
  positionals?: { min: number; max: number };
  /** Example command lines for `--help`. */
  examples?: readonly string[];
  /** Does the work; resolves with the exit code (default 0). */
  run(ctx: CommandContext): Promise<ExitCodeValue | void>;
}
