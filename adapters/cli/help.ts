/** The `--help` texts, built from the command table so they never drift from the options. */
import type { Command, OptionSpec } from './command';
import { COMMON_OPTIONS, OPTION_GROUPS } from './options';

/** Every option a command accepts: its own, its groups', and `--help`. */
export function optionsOf(command: Command): Record<string, OptionSpec> {
  const groups = (command.uses ?? []).map((g) => OPTION_GROUPS[g]);
  return Object.assign({}, command.options ?? {}, ...groups, COMMON_OPTIONS) as Record<string, OptionSpec>;
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const heads = Object.entries(options).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = spec.type === 'string' ? ` ${spec.value ?? '<value>'}` : '';
    return [`  ${short}--${name}${value}`, spec.description + (spec.multiple ? ' Repeatable.' : '')] as const;
  });
  const width = Math.max(...heads.map(([h]) => h.length)) + 2;
  return heads.map(([h, d]) => `${h.padEnd(width)}${d}`);
}

/** `event-bus <words> --help`. */
export function commandHelp(command: Command): string {
  const lines = [
    `Usage: event-bus ${command.path.join(' ')}${command.usage ? ` ${command.usage}` : ''} [options]`,
    '',
    command.summary,
  ];
  if (command.description) lines.push('', command.description);
  lines.push('', 'Options:', ...optionLines(optionsOf(command)));
  if (command.examples?.length) lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  lines.push('', 'Exit codes: 0 ok, 1 failure, 2 usage error, 3 database unavailable, 4 catalog error, 5 not found, 6 unhealthy.');
  return `${lines.join('\n')}\n`;
}

/** The list of commands (all of them, or those under `prefix`). */
export function commandList(commands: readonly Command[], prefix: readonly string[] = []): string {
  const shown = commands.filter((c) => prefix.every((w, i) => c.path[i] === w));
  const names = shown.map((c) => c.path.join(' '));
  const width = Math.max(...names.map((n) => n.length)) + 2;
  const head = prefix.length
    ? `Usage: event-bus ${prefix.join(' ')} <command> [options]`
    : 'Usage: event-bus <command> [options]\n\nOperate an @blawby/event-bus deployment: migrations, health, the timeline, replay, dead letters, retention and catalog docs.';
  return [
    head,
    '',
    'Commands:',
    ...shown.map((c, i) => `  ${names[i]!.padEnd(width)}${c.summary}`),
    '',
    `Run \`event-bus ${prefix.length ? prefix.join(' ') + ' ' : ''}<command> --help\` for a command's options. Documentation: docs/cli.md.`,
    '',
  ].join('\n');
}
