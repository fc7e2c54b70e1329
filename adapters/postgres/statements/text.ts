/**
 * Statements built once per storage as plain text with numbered parameters:
 * the hot paths skip assembling drizzle SQL on every call, and their fixed
 * text is what a driver prepares once per connection.
 */

/** A statement's text and how to turn a call's arguments into its parameters. */
export interface TextStatement<A extends unknown[]> {
  /** SQL with parameters `$1`, `$2`...; constant for the storage. */
  readonly text: string;
  /** The parameter values of one call, in order. */
  params(...args: A): unknown[];
}
