/**
 * Shared option groups and the readers that turn option strings into values
 * (a malformed value is a usage error, exit code 2, naming the option).
 */
import type { CommandContext, OptionGroup, OptionSpec } from './command';
import { usageError } from './cli-error';

/** Options every command takes. */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', description: 'Show this help.' },
};

/** The option groups of `Command.uses`. */
export const OPTION_GROUPS: Readonly<Record<OptionGroup, Readonly<Record<string, OptionSpec>>>> = {
  database: {
    'database-url': {
      type: 'string',
      value: '<url>',
      description: 'PostgreSQL connection string (postgres.js). Default: $DATABASE_URL.',
    },
    pglite: { type: 'string', value: '<dir>', description: 'Use the embedded PGlite database in this directory instead.' },
    schema: { type: 'string', value: '<name>', description: "Schema of the bus's tables (default public)." },
    'table-prefix': { type: 'string', value: '<prefix>', description: "Prefix of the bus's table names (default none)." },
  },
  catalog: {
    catalog: {
      type: 'string',
      value: '<module>',
      description:
        'Catalog module (.ts through tsx, or .js/.mjs/.cjs): its default export or its "catalog" export; ' +
        '<module>#name picks another export. Default: $EVENT_BUS_CATALOG.',
    },
  },
};

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `'90s'`, `'15m'`, `'1h30m'`, `'30d'`, `'2w'`, `'500ms'` in milliseconds; `null` when malformed. */
export function parseDuration(text: string): number | null {
  const match = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/.test(text);
  if (!match) return null;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) total += Number(n) * DURATION_UNITS[unit!]!;
  return total;
}

/** A string option, or `undefined`. */
export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw usageError(`--${name} needs a value`);
  return v;
}

/** A repeatable string option (`--type a --type b`, also `--type a,b`), or `[]`. */
export function listOption(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  if (v === undefined) return [];
  const items = (Array.isArray(v) ? v : [String(v)]).flatMap((s) => s.split(',')).map((s) => s.trim());
  if (items.some((s) => s.length === 0)) throw usageError(`--${name} has an empty value`);
  return items;
}

/** A boolean option (absent is `false`). */
export function flagOption(ctx: CommandContext, name: string): boolean {
  return ctx.values[name] === true;
}

/** A whole number option within `[min, max]`, or `fallback`. */
export function intOption(ctx: CommandContext, name: string, fallback: number, min = 1, max = 1_000_000): number {
  const v = stringOption(ctx, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${name} must be a whole number from ${min} to ${max}, not "${v}"`);
  }
  return n;
}

/** A duration option (`30d`, `1h30m`) in milliseconds, or `fallback`. */
export function durationOption(ctx: CommandContext, name: string, fallback?: number): number | undefined {
  const v = stringOption(ctx, name);
  if (v === undefined) return fallback;
  const ms = parseDuration(v);
  if (ms === null) throw usageError(`--${name} must be a duration such as 90s, 15m, 12h, 30d or 1h30m, not "${v}"`);
  return ms;
}

/** A time option: an ISO 8601 date-time, or a duration meaning that long ago (`--from 2h`). */
export function timeOption(ctx: CommandContext, name: string, now = Date.now()): Date | undefined {
  const v = stringOption(ctx, name);
  if (v === undefined) return undefined;
  const ago = parseDuration(v);
  if (ago !== null) return new Date(now - ago);
  const date = /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw usageError(`--${name} must be an ISO 8601 time (2026-01-31T12:00:00Z) or a duration ago (2h), not "${v}"`);
  }
  return date;
}

/** One of a fixed set of string values, or `fallback`. */
export function choiceOption<T extends string>(ctx: CommandContext, name: string, choices: readonly T[], fallback?: T): T {
  const v = stringOption(ctx, name) ?? fallback;
  if (v === undefined) throw usageError(`--${name} is required (one of ${choices.join(', ')})`);
  if (!choices.includes(v as T)) throw usageError(`--${name} must be one of ${choices.join(', ')}, not "${v}"`);
  return v as T;
}
