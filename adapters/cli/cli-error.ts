/** The one error type commands throw on purpose: a message for a person, a hint, and the exit code. */
import { ExitCode, type ExitCodeValue } from './exit-codes';

/** An error the CLI reports as `event-bus: <message>` (plus its hint) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  override get name(): string {
    return 'CliError';
  }
}

/** A usage error (exit code 2): the command line itself is wrong. */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(ExitCode.USAGE, message, hint);
}
