/**
 * Stripe webhook signatures, as Stripe documents them: the `Stripe-Signature`
 * header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, each `v1` an
 * HMAC-SHA256 of `${t}.${rawBody}` under the endpoint's signing secret. The
 * raw body must be the exact bytes received (parsing and re-serialising JSON
 * changes them). Written with node:crypto so the example needs no Stripe SDK.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a signature was refused. */
export type StripeSignatureFailure =
  | 'missing_header'
  | 'malformed_header'
  | 'no_matching_signature'
  | 'timestamp_outside_tolerance';

/** A webhook whose signature could not be verified (answer 400; Stripe will retry). */
export class StripeSignatureError extends Error {
  /** The reason, stable for tests and logs. */
  readonly reason: StripeSignatureFailure;

  constructor(reason: StripeSignatureFailure, message: string) {
    super(message);
    this.reason = reason;
  }

  override get name(): string {
    return 'StripeSignatureError';
  }
}

/** Stripe's default tolerance: 5 minutes between the signature's timestamp and now. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

function hmac(secret: string, timestamp: number, rawBody: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
}

/** Options of {@link verifyStripeSignature}. */
export interface VerifyOptions {
  /** Seconds of clock difference accepted (default 300). */
  toleranceSeconds?: number;
  /** The current time (tests). */
  now?: Date;
}

/**
 * Verifies a `Stripe-Signature` header against the raw body; throws a
 * {@link StripeSignatureError} when it does not match or is too old. Returns
 * the signature's timestamp.
 */
export function verifyStripeSignature(
  rawBody: string | Buffer,
  header: string | undefined,
  secret: string,
  options: VerifyOptions = {},
): number {
  if (!header) throw new StripeSignatureError('missing_header', 'No Stripe-Signature header');
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d+$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || signatures.length === 0) {
    throw new StripeSignatureError(
      'malformed_header',
      'Stripe-Signature needs a timestamp and at least one v1 signature',
    );
  }
  const expected = hmac(secret, timestamp, rawBody);
  if (!signatures.some((s) => s.length === expected.length && timingSafeEqual(s, expected))) {
    throw new StripeSignatureError('no_matching_signature', 'No signature matches the payload');
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > tolerance) {
    throw new StripeSignatureError('timestamp_outside_tolerance', 'Signature timestamp is outside the tolerance');
  }
  return timestamp;
}

/**
 * Builds a `Stripe-Signature` header for a payload, as Stripe does (and as
 * `stripe.webhooks.generateTestHeaderString` does): for tests and the demo.
 */
export function signStripePayload(
  rawBody: string | Buffer,
  secret: string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, rawBody).toString('hex')}`;
}
