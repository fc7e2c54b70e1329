/**
 * The exit codes of `event-bus` (docs/cli.md lists them): scripts and
 * monitoring tell a usage mistake from an unreachable database or an
 * unhealthy bus without reading the message.
 */
export const ExitCode = {
  /** The command did what was asked. */
  OK: 0,
  /** The command ran and failed (a storage error, an unexpected error). */
  FAILURE: 1,
  /** Unknown command or option, a missing or malformed value. */
  USAGE: 2,
  /** No database: a malformed URL, the server unreachable, or the bus's tables missing (run `migrate`). */
  DATABASE: 3,
  /** The catalog module was not found, failed to load, or exports no catalog. */
  CATALOG: 4,
  /** The dead letter (or other id) asked for does not exist. */
  NOT_FOUND: 5,
  /** `health` found the bus unhealthy. */
  UNHEALTHY: 6,
} as const;

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
