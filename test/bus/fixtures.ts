/** A small catalog shared by the bus tests. */
import { z } from 'zod';
import { defineCatalog, defineEvent, type EventBus } from '../../src/index';
import { createTestBus } from '../../src/testing/index';

export const catalog = defineCatalog({
  'auth.user_signed_up': defineEvent({
    version: '1.0.0',
    description: 'New user account created',
    payload: z.object({
      email: z.string().email(),
      name: z.string(),
      signupMethod: z.enum(['email', 'google', 'github']),
    }),
  }),
  'auth.user_logged_in': defineEvent({ version: '1.0.0', payload: z.object({ sessionId: z.string() }) }),
  'billing.payment_received': defineEvent({
    version: '2.0.0',
    payload: z.object({ amountCents: z.number().int(), currency: z.string().length(3) }),
    upcast: { '1.0.0': (p) => ({ amountCents: Math.round(Number(p.amount) * 100), currency: p.currency }) },
  }),
  'billing.payment_failed': defineEvent({ version: '1.0.0', payload: z.object({ amount: z.number(), error: z.string() }) }),
  'org.created': defineEvent({ version: '1.0.0', payload: z.object({ organizationName: z.string() }) }),
});

export const signup = { email: 'ada@example.com', name: 'Ada', signupMethod: 'email' } as const;

/** A test bus over the shared catalog (test/setup/leak-guard.ts fails a test that leaves it running). */
export function testBus(options: Partial<Parameters<typeof createTestBus<typeof catalog>>[0]> = {}): EventBus<typeof catalog> {
  return createTestBus({ catalog, ...options });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
