/** The catalog the type tests check the typed API against. */
import { z } from 'zod';
import { defineCatalog, defineEvent } from '../../src/catalog';

export const catalog = defineCatalog({
  'auth.user_signed_up': defineEvent({
    version: '1.0.0',
    payload: z.object({ email: z.string().email(), name: z.string() }),
  }),
  'auth.user_logged_in': defineEvent({ version: '1.0.0', payload: z.object({ userId: z.string() }) }),
  'billing.invoice_paid': defineEvent({
    version: '2.0.0',
    // Input and output differ: a default on the way in, a transform on the way out.
    payload: z.object({
      invoiceId: z.string(),
      amountCents: z.number().int(),
      currency: z.string().default('usd'),
      // Output in epoch milliseconds: payloads stay JSON-safe (a Date would not survive storage).
      paidAt: z.string().transform((s) => Date.parse(s)),
    }),
  }),
  'org.created': defineEvent({ version: '1.0.0', payload: z.object({ orgId: z.string() }) }),
});
