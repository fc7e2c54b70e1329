import { describe, expectTypeOf, it } from 'vitest';
import { catalog } from './fixtures';
import { z } from 'zod';
import {
  defineEvent,
  eventTypes,
  type DomainOf,
  type EventPattern,
  type EventTypeOf,
  type MatchedTypes,
  type PayloadInput,
  type PayloadOf,
} from '../../src/catalog';

type C = typeof catalog;

describe('catalog types', () => {
  it('lists the event types as a union of literals (what publish and subscribe autocomplete)', () => {
    expectTypeOf<EventTypeOf<C>>().toEqualTypeOf<
      'auth.user_signed_up' | 'auth.user_logged_in' | 'billing.invoice_paid' | 'org.created'
    >();
    expectTypeOf<DomainOf<C>>().toEqualTypeOf<'auth' | 'billing' | 'org'>();
    expectTypeOf<EventPattern<C>>().toEqualTypeOf<
      | 'auth.user_signed_up'
      | 'auth.user_logged_in'
      | 'billing.invoice_paid'
      | 'org.created'
      | 'auth.*'
      | 'billing.*'
      | 'org.*'
      | '*'
    >();
  });

  it('types a payload as the schema input for publishers and the output for handlers', () => {
    expectTypeOf<PayloadInput<C, 'billing.invoice_paid'>>().toEqualTypeOf<{
      invoiceId: string;
      amountCents: number;
      currency?: string | undefined;
      paidAt: string;
    }>();
    expectTypeOf<PayloadOf<C, 'billing.invoice_paid'>>().toEqualTypeOf<{
      invoiceId: string;
      amountCents: number;
      currency: string;
      paidAt: number;
    }>();
    expectTypeOf<PayloadOf<C, 'auth.user_signed_up'>>().toEqualTypeOf<{ email: string; name: string }>();
    // @ts-expect-error not an event type of the catalog
    type _Unknown = PayloadOf<C, 'auth.user_deleted'>;
  });

  it('matches patterns to the event types they cover', () => {
    expectTypeOf<MatchedTypes<C, '*'>>().toEqualTypeOf<EventTypeOf<C>>();
    expectTypeOf<MatchedTypes<C, 'auth.*'>>().toEqualTypeOf<'auth.user_signed_up' | 'auth.user_logged_in'>();
    expectTypeOf<MatchedTypes<C, 'org.created'>>().toEqualTypeOf<'org.created'>();
    expectTypeOf<MatchedTypes<C, 'org.created' | 'billing.*'>>().toEqualTypeOf<
      'org.created' | 'billing.invoice_paid'
    >();
    expectTypeOf<MatchedTypes<C, 'nope.*'>>().toBeNever();
  });

  it('makes eventTypes(catalog) an enum-like object of literal constants', () => {
    const EventType = eventTypes(catalog);
    expectTypeOf(EventType.AUTH_USER_SIGNED_UP).toEqualTypeOf<'auth.user_signed_up'>();
    expectTypeOf(EventType.BILLING_INVOICE_PAID).toEqualTypeOf<'billing.invoice_paid'>();
    expectTypeOf(EventType.ORG_CREATED).toEqualTypeOf<'org.created'>();
    expectTypeOf(EventType).toEqualTypeOf<{
      readonly AUTH_USER_SIGNED_UP: 'auth.user_signed_up';
      readonly AUTH_USER_LOGGED_IN: 'auth.user_logged_in';
      readonly BILLING_INVOICE_PAID: 'billing.invoice_paid';
      readonly ORG_CREATED: 'org.created';
    }>();
    // @ts-expect-error no such constant
    void EventType.AUTH_USER_DELETED;
  });

  it('keeps the catalog readonly', () => {
    // @ts-expect-error a defined catalog cannot be changed
    catalog['org.created'] = catalog['auth.user_logged_in'];
  });

  it('requires a zod schema whose output is an object', () => {
    // @ts-expect-error a payload must be an object schema
    defineEvent({ version: '1.0.0', payload: z.string() });
    // @ts-expect-error a version is required
    defineEvent({ payload: z.object({}) });
  });
});
