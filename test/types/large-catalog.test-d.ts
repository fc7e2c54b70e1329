/**
 * The typed API over a generated catalog of 300 event types. Besides these
 * assertions, test/types/large-catalog.test.ts type-checks this file alone
 * with `tsc` and bounds the check time (no "excessively deep" error).
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { EventBus, SubscribeOptions } from '../../src/bus/types';
import { eventTypes, type DomainOf, type EventPattern, type EventTypeOf, type PayloadOf } from '../../src/catalog';
import type { BaseEvent } from '../../src/envelope';
import { largeCatalog, type LARGE_CATALOG_DOMAINS, type LargeEventType } from './generated/large-catalog';

type L = typeof largeCatalog;
declare const bus: EventBus<L>;
const opts: SubscribeOptions = { name: 'large' };
const teamSetting = { settingId: 's', updatedRef0: '0190a6e0-0000-7000-8000-000000000001', updatedLength1: 'x' };

type OnboardingMemberDeleted = {
  memberId: string;
  deletedLength0: number;
  deletedFlag1: boolean;
  deletedCount2: number;
  deletedAmount3: number | null;
  deletedTags4: string[];
  deletedStatus5: 'pending' | 'active' | 'closed';
};

describe('a catalog of 300 event types', () => {
  it('keeps every event type as a literal', () => {
    // Mutual assignability rather than toEqualTypeOf: identity checks of 300-member unions cost
    // seconds in the assertion library alone, which is not what users pay.
    expectTypeOf<EventTypeOf<L>>().toExtend<LargeEventType>();
    expectTypeOf<LargeEventType>().toExtend<EventTypeOf<L>>();
    expectTypeOf<string>().not.toExtend<EventTypeOf<L>>();
    expectTypeOf<DomainOf<L>>().toEqualTypeOf<(typeof LARGE_CATALOG_DOMAINS)[number]>();
    expectTypeOf<'billing.*'>().toExtend<EventPattern<L>>();
    expectTypeOf<'billing.account_*'>().not.toExtend<EventPattern<L>>();
  });

  it('types publish: payload input per type, unknown types and wrong payloads refused', async () => {
    const event = await bus.publish('onboarding.member_deleted', {
      memberId: 'm',
      deletedLength0: 'abc',
      deletedCount2: 1,
      deletedAmount3: null,
      deletedTags4: [],
      deletedStatus5: 'active',
    });
    expectTypeOf(event).toEqualTypeOf<BaseEvent<'onboarding.member_deleted', OnboardingMemberDeleted>>();
    await bus.publish('auth.account_created', {
      accountId: 'a',
      createdRef0: '0190a6e0-0000-7000-8000-000000000001',
      createdLength1: 'x',
    });
    // @ts-expect-error unknown event type
    await bus.publish('auth.account_archived', { accountId: 'a' });
    // @ts-expect-error wrong payload: a field of another event type
    await bus.publish('auth.account_created', { memberId: 'a', createdRef0: 'r', createdLength1: 'x' });
    // @ts-expect-error wrong payload: the output type (number) where the input (string) is expected
    await bus.publish('auth.account_created', { accountId: 'a', createdRef0: 'r', createdLength1: 3 });
  });

  it('types handlers for an exact type, a domain, every type and a list', () => {
    bus.subscribe(
      'onboarding.member_deleted',
      (event) => {
        expectTypeOf(event.payload).toEqualTypeOf<OnboardingMemberDeleted>();
      },
      opts,
    );
    bus.subscribe(
      'billing.*',
      (event) => {
        expectTypeOf(event.eventType).toExtend<Extract<LargeEventType, `billing.${string}`>>();
        expectTypeOf<Extract<LargeEventType, `billing.${string}`>>().toExtend<typeof event.eventType>();
        if (event.eventType === 'billing.member_updated') {
          expectTypeOf(event.payload).toEqualTypeOf<PayloadOf<L, 'billing.member_updated'>>();
          expectTypeOf(event.payload.memberId).toBeString();
        }
      },
      opts,
    );
    bus.subscribe(
      '*',
      (event) => {
        expectTypeOf(event.eventType).toExtend<LargeEventType>();
        expectTypeOf<LargeEventType>().toExtend<typeof event.eventType>();
        if (event.eventType === 'onboarding.member_deleted') {
          expectTypeOf(event.payload).toEqualTypeOf<OnboardingMemberDeleted>();
        }
      },
      opts,
    );
    bus.subscribe(
      ['auth.account_created', 'audit.*', 'onboarding.member_deleted'],
      async (event, ctx) => {
        expectTypeOf(event.eventType).toEqualTypeOf<
          'auth.account_created' | 'onboarding.member_deleted' | Extract<LargeEventType, `audit.${string}`>
        >();
        await ctx.publish('team.setting_updated', teamSetting);
      },
      opts,
    );
    // @ts-expect-error unknown domain
    bus.subscribe('shipping.*', () => {}, opts);
    // @ts-expect-error unknown type in a list
    bus.subscribe(['audit.*', 'audit.thing_happened'], () => {}, opts);
  });

  it('types publishMany items and eventTypes constants', () => {
    const EventType = eventTypes(largeCatalog);
    expectTypeOf(EventType.ONBOARDING_MEMBER_DELETED).toEqualTypeOf<'onboarding.member_deleted'>();
    expectTypeOf(EventType.AUTH_ACCOUNT_CREATED).toEqualTypeOf<'auth.account_created'>();
    void bus.publishMany([
      { type: EventType.TEAM_SETTING_UPDATED, payload: teamSetting },
      // @ts-expect-error payload of another type
      { type: 'team.setting_updated', payload: { memberId: 'm' } },
    ]);
  });
});
