/**
 * Runs the `event-bus` CLI as a child process, from its source through tsx
 * (`node --import tsx adapters/cli/main.ts`, what `npx tsx adapters/cli/main.ts`
 * runs), or any other entry (the built bin) given as `entry`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (the CLI's working directory in the tests). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI's source entry. */
export const SOURCE_ENTRY = fileURLToPath(new URL('../../adapters/cli/main.ts', import.meta.url));

/** What one run produced. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCli}. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** The script to run with node (default: the source entry, through tsx). */
  entry?: string;
  timeoutMs?: number;
}

function nodeArgs(entry: string): string[] {
  return entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry];
}

/** The environment of a run: this process's, without DATABASE_URL unless given (a test names its database). */
function envOf(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: undefined, EVENT_BUS_CATALOG: undefined, ...extra };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return env;
}

/** Starts the CLI and leaves it running (for `tail`). */
export function startCli(args: readonly string[], options: RunOptions = {}): { child: ChildProcess; result: Promise<CliResult>; stderr(): string; stdout(): string } {
  const child = spawn(process.execPath, [...nodeArgs(options.entry ?? SOURCE_ENTRY), ...args], {
    cwd: options.cwd ?? ROOT,
    env: envOf(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const result = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, result, stderr: () => stderr, stdout: () => stdout };
}

/** Runs the CLI to its end. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** Resolves once `read()` contains `text` (or rejects after `timeoutMs`). */
export async function waitFor(read: () => string, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!read().includes(text)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}"; got:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
