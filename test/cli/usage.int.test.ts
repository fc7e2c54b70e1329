/**
 * The CLI's command line itself, run as a child process: `--help` on every
 * command of the table, usage errors (exit 2) and database errors (exit 3)
 * with messages a person can act on, and docs/cli.md naming every command
 * and option (so a new command is documented).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../adapters/cli/commands';
import { optionsOf } from '../../adapters/cli/help';
import { OPTION_GROUPS } from '../../adapters/cli/options';
import { ROOT, runCli } from './run-cli';

// Every test starts CLI processes (about a second each, far more on a loaded machine).
vi.setConfig({ testTimeout: 240_000 });

describe('event-bus --help', () => {
  it('lists every command; --version prints the package version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const c of COMMANDS) expect(help.stdout).toContain(`  ${c.path.join(' ')}  `);
    const version = await runCli(['--version']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version.stdout).toBe(`${pkg.version}\n`);
    const bare = await runCli([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: event-bus <command>');
  });

  it.each(COMMANDS.map((c) => [c.path.join(' '), c] as const))('%s --help shows its usage and every option', async (_, command) => {
    const run = await runCli([...command.path, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Usage: event-bus ${command.path.join(' ')}`);
    for (const name of Object.keys(optionsOf(command))) expect(run.stdout).toContain(`--${name}`);
  });

  it('lists a group\'s commands for `dlq --help`', async () => {
    const run = await runCli(['dlq', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: event-bus dlq <command>');
    expect(run.stdout).toContain('  dlq redrive  ');
  });
});

describe('usage and database errors', () => {
  it('exits 2 for an unknown command, an unknown option, a bad value or missing arguments', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('event-bus: unknown command "frobnicate"');
    const option = await runCli(['health', '--colour']);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/Unknown option '--colour'/);
    const duration = await runCli(['purge', '--older-than', 'soon', '--pglite', '/nonexistent']);
    expect(duration.code).toBe(2);
    expect(duration.stderr).toContain('--older-than must be a duration such as 90s, 15m, 12h, 30d or 1h30m, not "soon"');
    const show = await runCli(['dlq', 'show']);
    expect(show.code).toBe(2);
    expect(show.stderr).toContain('dlq show takes 1 argument(s), got 0');
    const pattern = await runCli(['tail', '--type', 'billing.*', '--pglite', '/nonexistent']);
    expect(pattern.code).toBe(2);
    expect(pattern.stderr).toContain('--type billing.*: patterns need the catalog');
  });

  it('exits 2 without a database, 3 for a malformed URL, a wrong scheme or an unreachable server', async () => {
    const none = await runCli(['health']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no database given');
    expect(none.stderr).toContain('--database-url');
    const both = await runCli(['health', '--database-url', 'postgres://x/y', '--pglite', 'dir']);
    expect(both.code).toBe(2);
    const malformed = await runCli(['health', '--database-url', 'not a url']);
    expect(malformed.code).toBe(3);
    expect(malformed.stderr).toContain('the database URL is not a valid URL');
    const scheme = await runCli(['health', '--database-url', 'mysql://root@localhost/app']);
    expect(scheme.code).toBe(3);
    expect(scheme.stderr).toContain('must start with postgres:// or postgresql://, not mysql://');
    const down = await runCli(['stats'], { env: { DATABASE_URL: 'postgres://eb:secret-pw@127.0.0.1:9/app' } });
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/cannot connect to postgres:\/\/eb:\*\*\*@127\.0\.0\.1:9\/app/);
    expect(down.stderr).not.toContain('secret-pw');
  });
});

describe('docs/cli.md', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
  /** The section of one command: from its heading to the next command's. */
  const section = (path: readonly string[]) => {
    const start = doc.indexOf(`### \`${path.join(' ')}`);
    const end = doc.indexOf('\n### ', start + 1);
    return start < 0 ? '' : doc.slice(start, end < 0 ? undefined : end);
  };

  it.each(COMMANDS.map((c) => [c.path.join(' '), c] as const))('documents %s and each of its own options', (_, command) => {
    const text = section(command.path);
    expect(text, `docs/cli.md has no "### \`${command.path.join(' ')}" section`).not.toBe('');
    for (const name of Object.keys(command.options ?? {})) expect(text, `--${name}`).toContain(`--${name}`);
  });

  it('documents the shared options and every exit code', () => {
    for (const group of Object.values(OPTION_GROUPS)) for (const name of Object.keys(group)) expect(doc).toContain(`| \`--${name}`);
    for (const code of [0, 1, 2, 3, 4, 5, 6]) expect(doc).toContain(`| ${code} |`);
  });
});
