import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signStripePayload, StripeSignatureError, verifyStripeSignature } from './signature';

const secret = 'whsec_test_secret';
const body = JSON.stringify({ id: 'evt_1', type: 'account.updated', data: { object: { id: 'acct_1' } } });
const now = new Date('2026-01-01T00:00:00Z');
const t = Math.floor(now.getTime() / 1000);

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StripeSignatureError);
    return (err as StripeSignatureError).reason;
  }
  return undefined;
}

describe('verifyStripeSignature', () => {
  it('accepts a signature computed as Stripe documents it (HMAC-SHA256 of "t.body")', () => {
    const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(verifyStripeSignature(body, `t=${t},v1=${v1}`, secret, { now })).toBe(t);
    expect(signStripePayload(body, secret, t)).toBe(`t=${t},v1=${v1}`);
  });

  it('accepts a Buffer body and any one of several v1 signatures (secret rotation)', () => {
    const good = signStripePayload(body, secret, t).split(',v1=')[1];
    const header = `t=${t},v1=${'ab'.repeat(32)},v1=${good},v0=ignored`;
    expect(verifyStripeSignature(Buffer.from(body), header, secret, { now })).toBe(t);
  });

  it('refuses a signature made with another secret', () => {
    const header = signStripePayload(body, 'whsec_other', t);
    expect(reasonOf(() => verifyStripeSignature(body, header, secret, { now }))).toBe('no_matching_signature');
  });

  it('refuses a body changed after signing (even by whitespace)', () => {
    const header = signStripePayload(body, secret, t);
    const reformatted = JSON.stringify(JSON.parse(body), null, 2);
    expect(reasonOf(() => verifyStripeSignature(reformatted, header, secret, { now }))).toBe('no_matching_signature');
  });

  it('refuses a timestamp older or newer than the tolerance, and accepts one at its edge', () => {
    const stale = signStripePayload(body, secret, t - 301);
    expect(reasonOf(() => verifyStripeSignature(body, stale, secret, { now }))).toBe('timestamp_outside_tolerance');
    const future = signStripePayload(body, secret, t + 301);
    expect(reasonOf(() => verifyStripeSignature(body, future, secret, { now }))).toBe('timestamp_outside_tolerance');
    const edge = signStripePayload(body, secret, t - 300);
    expect(verifyStripeSignature(body, edge, secret, { now })).toBe(t - 300);
    expect(verifyStripeSignature(body, stale, secret, { now, toleranceSeconds: 600 })).toBe(t - 301);
  });

  it('refuses a missing or malformed header', () => {
    expect(reasonOf(() => verifyStripeSignature(body, undefined, secret, { now }))).toBe('missing_header');
    expect(reasonOf(() => verifyStripeSignature(body, 'garbage', secret, { now }))).toBe('malformed_header');
    expect(reasonOf(() => verifyStripeSignature(body, `t=${t}`, secret, { now }))).toBe('malformed_header');
    expect(reasonOf(() => verifyStripeSignature(body, `v1=${'a'.repeat(64)}`, secret, { now }))).toBe(
      'malformed_header',
    );
    expect(reasonOf(() => verifyStripeSignature(body, `t=${t},v1=abc`, secret, { now }))).toBe('malformed_header');
  });
});
