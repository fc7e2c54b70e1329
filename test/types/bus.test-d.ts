import { describe, expectTypeOf, it } from 'vitest';
import { catalog } from './fixtures';
import type {
  CatalogEvent,
  EventBus,
  EventFor,
  HandlerContext,
  PublishItem,
  SubscribeOptions,
} from '../../src/bus/types';
import { eventTypes } from '../../src/catalog';
import type { BaseEvent } from '../../src/envelope';

type C = typeof catalog;
type SignedUp = BaseEvent<'auth.user_signed_up', { email: string; name: string }>;
type LoggedIn = BaseEvent<'auth.user_logged_in', { userId: string }>;
type InvoicePaid = BaseEvent<
  'billing.invoice_paid',
  { invoiceId: string; amountCents: number; currency: string; paidAt: number }
>;
type OrgCreated = BaseEvent<'org.created', { orgId: string }>;

// Type tests are only type-checked, never run: a declared bus is enough.
declare const bus: EventBus<C>;
const opts: SubscribeOptions = { name: 'test' };

describe('publish', () => {
  it('accepts a catalog type with its payload and returns the typed envelope', () => {
    expectTypeOf(bus.publish('auth.user_signed_up', { email: 'a@b.c', name: 'Ada' })).resolves.toEqualTypeOf<SignedUp>();
    // The publisher passes the schema input (default omitted, string date); the envelope has the output.
    expectTypeOf(
      bus.publish('billing.invoice_paid', { invoiceId: 'i', amountCents: 1, paidAt: '2026-01-01' }),
    ).resolves.toEqualTypeOf<InvoicePaid>();
    expectTypeOf(bus.publish<'org.created'>).parameter(0).toEqualTypeOf<'org.created'>();
    expectTypeOf(bus.publish).parameter(0).toEqualTypeOf<
      'auth.user_signed_up' | 'auth.user_logged_in' | 'billing.invoice_paid' | 'org.created'
    >();
  });

  it('refuses an unknown type or a wrong payload at compile time', () => {
    // @ts-expect-error unknown event type
    void bus.publish('auth.user_deleted', { userId: 'u' });
    // @ts-expect-error a pattern is not an event type
    void bus.publish('auth.*', { userId: 'u' });
    // @ts-expect-error missing field
    void bus.publish('auth.user_signed_up', { email: 'a@b.c' });
    // @ts-expect-error wrong field type
    void bus.publish('auth.user_logged_in', { userId: 42 });
    // @ts-expect-error the payload of another type
    void bus.publish('org.created', { userId: 'u' });
    // @ts-expect-error the schema input takes a string date, not the output's number
    void bus.publish('billing.invoice_paid', { invoiceId: 'i', amountCents: 1, paidAt: 1767225600000 });
    // @ts-expect-error a payload is required
    void bus.publish('org.created');
    // @ts-expect-error unknown publish option
    void bus.publish('org.created', { orgId: 'o' }, { priority: 1 });
  });

  it('accepts the constants of eventTypes(catalog)', () => {
    const EventType = eventTypes(catalog);
    expectTypeOf(bus.publish(EventType.ORG_CREATED, { orgId: 'o' })).resolves.toEqualTypeOf<OrgCreated>();
    // @ts-expect-error the constant's payload is checked like the literal's
    void bus.publish(EventType.ORG_CREATED, { userId: 'u' });
  });
});

describe('publishMany', () => {
  it('types each item by its own type', () => {
    void bus.publishMany([
      { type: 'auth.user_signed_up', payload: { email: 'a@b.c', name: 'Ada' } },
      { type: 'org.created', payload: { orgId: 'o' }, options: { actor: 'u1', idempotencyKey: 'k' } },
    ]);
    expectTypeOf(bus.publishMany([])).resolves.toEqualTypeOf<CatalogEvent<C>[]>();
    expectTypeOf<CatalogEvent<C>>().toEqualTypeOf<SignedUp | LoggedIn | InvoicePaid | OrgCreated>();
    expectTypeOf<PublishItem<C>>().toHaveProperty('type').toEqualTypeOf<
      'auth.user_signed_up' | 'auth.user_logged_in' | 'billing.invoice_paid' | 'org.created'
    >();
  });

  it('refuses an item whose payload belongs to another type, or an unknown type', () => {
    void bus.publishMany([
      { type: 'org.created', payload: { orgId: 'o' } },
      // @ts-expect-error payload of auth.user_logged_in under org.created
      { type: 'org.created', payload: { userId: 'u' } },
    ]);
    // @ts-expect-error unknown event type
    void bus.publishMany([{ type: 'org.deleted', payload: { orgId: 'o' } }]);
    // @ts-expect-error a per-item transaction is not allowed (the batch has one)
    void bus.publishMany([{ type: 'org.created', payload: { orgId: 'o' }, options: { tx: {} } }]);
  });
});

describe('subscribe', () => {
  it('types the payload for an exact event type', () => {
    bus.subscribe(
      'auth.user_signed_up',
      (event, ctx) => {
        expectTypeOf(event).toEqualTypeOf<SignedUp>();
        expectTypeOf(event.payload.email).toBeString();
        expectTypeOf(ctx).toEqualTypeOf<HandlerContext<C>>();
      },
      opts,
    );
    bus.subscribe(
      'billing.invoice_paid',
      (event) => {
        // Handlers get the schema output: default filled in, transform applied.
        expectTypeOf(event.payload.currency).toEqualTypeOf<string>();
        expectTypeOf(event.payload.paidAt).toEqualTypeOf<number>();
      },
      opts,
    );
  });

  it("types 'domain.*' as the union of that domain's events, narrowable by eventType", () => {
    bus.subscribe(
      'auth.*',
      (event) => {
        expectTypeOf(event).toEqualTypeOf<SignedUp | LoggedIn>();
        expectTypeOf(event.eventType).toEqualTypeOf<'auth.user_signed_up' | 'auth.user_logged_in'>();
        if (event.eventType === 'auth.user_signed_up') {
          expectTypeOf(event.payload).toEqualTypeOf<{ email: string; name: string }>();
        } else {
          expectTypeOf(event.payload).toEqualTypeOf<{ userId: string }>();
        }
        // @ts-expect-error not every auth event has an email
        void event.payload.email;
      },
      opts,
    );
  });

  it("types '*' as every event of the catalog", () => {
    bus.subscribe(
      '*',
      (event) => {
        expectTypeOf(event).toEqualTypeOf<SignedUp | LoggedIn | InvoicePaid | OrgCreated>();
        switch (event.eventType) {
          case 'billing.invoice_paid':
            expectTypeOf(event.payload.amountCents).toBeNumber();
            break;
          case 'org.created':
            expectTypeOf(event.payload).toEqualTypeOf<{ orgId: string }>();
            break;
          default:
            expectTypeOf(event.eventType).toEqualTypeOf<'auth.user_signed_up' | 'auth.user_logged_in'>();
        }
      },
      opts,
    );
  });

  it('types an array of patterns as the union of what they match', () => {
    bus.subscribe(
      ['org.created', 'billing.*'],
      (event) => {
        expectTypeOf(event).toEqualTypeOf<OrgCreated | InvoicePaid>();
      },
      opts,
    );
    bus.subscribe(
      ['auth.user_logged_in', 'auth.*'],
      (event) => {
        expectTypeOf(event).toEqualTypeOf<SignedUp | LoggedIn>();
      },
      opts,
    );
    expectTypeOf<EventFor<C, 'org.created' | 'auth.user_logged_in'>>().toEqualTypeOf<OrgCreated | LoggedIn>();
  });

  it('refuses unknown types and patterns, and a handler expecting another payload', () => {
    // @ts-expect-error unknown event type
    bus.subscribe('auth.user_deleted', () => {}, opts);
    // @ts-expect-error unknown domain
    bus.subscribe('shipping.*', () => {}, opts);
    // @ts-expect-error a partial wildcard is not a pattern
    bus.subscribe('auth.user_*', () => {}, opts);
    // @ts-expect-error one unknown pattern in the list
    bus.subscribe(['org.created', 'nope.*'], () => {}, opts);
    bus.subscribe(
      'org.created',
      // @ts-expect-error the handler wants another event's payload
      (event: BaseEvent<'org.created', { userId: string }>) => void event,
      opts,
    );
  });

  it('requires options with a name', () => {
    // @ts-expect-error options (with a name) are required
    bus.subscribe('org.created', () => {});
    // @ts-expect-error the name is required
    bus.subscribe('org.created', () => {}, { retry: { attempts: 3 } });
    expectTypeOf(bus.subscribe('org.created', () => {}, opts)).toEqualTypeOf<() => void>();
  });

  it('accepts async handlers', () => {
    bus.subscribe('org.created', async (event) => void (await Promise.resolve(event.payload.orgId)), opts);
  });
});

describe('handler context', () => {
  it('exposes attempt, deliveryId, signal and a typed publish', () => {
    bus.subscribe(
      'auth.user_signed_up',
      async (event, ctx) => {
        expectTypeOf(ctx.attempt).toBeNumber();
        expectTypeOf(ctx.deliveryId).toBeString();
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        expectTypeOf(ctx.publish).toEqualTypeOf<EventBus<C>['publish']>();
        expectTypeOf(await ctx.publish('org.created', { orgId: event.payload.name })).toEqualTypeOf<OrgCreated>();
        // @ts-expect-error ctx.publish checks payloads like bus.publish
        await ctx.publish('org.created', { name: 'x' });
        // @ts-expect-error and event types
        await ctx.publish('org.deleted', { orgId: 'x' });
      },
      opts,
    );
  });
});
