/**
 * The logger the library writes to: a pino logger, or anything with the same
 * methods. None given means silent.
 */

/** A log method in pino's calling style: an object of fields, then a message. */
export type LogFn = (fields: Record<string, unknown>, message?: string) => void;

/** The subset of pino's `Logger` the library uses. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger that adds `bindings` to every line. */
  child?(bindings: Record<string, unknown>): Logger;
}

const noop: LogFn = () => {};

/** A logger that writes nothing. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => silentLogger };

/** `logger.child(bindings)` when the logger has it, else the logger itself. */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child ? logger.child(bindings) : logger;
}
