/** `bus.timeline`'s tenant scope and idempotency conflicts, through the bus (memory storage). */
import { describe, expect, it } from 'vitest';
import { EventBusError } from '../../src/index';
import type { InvalidOptionError } from '../../src/index';
import { signup, testBus } from './fixtures';

const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

describe('bus.timeline scope', () => {
  it('passes the scope to the storage: organizations listed, plus the actor\'s events without organization', async () => {
    const bus = testBus();
    try {
      const inOrg = await bus.publish('org.created', { organizationName: 'A' }, { actor: 'user_b', organizationId: 'org_1' });
      await bus.publish('org.created', { organizationName: 'B' }, { actor: 'user_a', organizationId: 'org_2' });
      const own = await bus.publish('auth.user_signed_up', signup, { actor: 'user_a' });
      await bus.publish('auth.user_signed_up', signup, { actor: 'user_b' });
      const page = await bus.timeline({ scope: { organizationIds: ['org_1'], actor: 'user_a' } });
      expect(page.events.map((e) => e.eventId)).toEqual([own.eventId, inOrg.eventId]);
    } finally {
      await bus.stop();
    }
  });

  it('refuses a malformed scope with INVALID_OPTION', async () => {
    const bus = testBus();
    try {
      const bad: unknown[] = [null, {}, { organizationIds: 'org_1' }, { organizationIds: [1] }, { organizationIds: [], actor: 7 }];
      for (const scope of bad) {
        const err = await rejection(bus.timeline({ scope: scope as never }));
        expect(EventBusError.is(err, 'INVALID_OPTION'), JSON.stringify(scope)).toBe(true);
        expect((err as InvalidOptionError).option, JSON.stringify(scope)).toMatch(/^scope\./);
      }
    } finally {
      await bus.stop();
    }
  });
});

describe('publish with a reused idempotency key', () => {
  it('rejects with IDEMPOTENCY_CONFLICT across organizations or types, and returns the first event otherwise', async () => {
    const bus = testBus();
    try {
      const first = await bus.publish('org.created', { organizationName: 'A' }, { organizationId: 'org_1', idempotencyKey: 'k' });
      const otherOrg = await rejection(
        bus.publish('org.created', { organizationName: 'A' }, { organizationId: 'org_2', idempotencyKey: 'k' }),
      );
      expect(EventBusError.is(otherOrg, 'IDEMPOTENCY_CONFLICT')).toBe(true);
      expect((otherOrg as Error).message).not.toContain('org_');
      const otherType = await rejection(bus.publish('auth.user_signed_up', signup, { organizationId: 'org_1', idempotencyKey: 'k' }));
      expect(EventBusError.is(otherType, 'IDEMPOTENCY_CONFLICT')).toBe(true);
      const many = await rejection(
        bus.publishMany([
          { type: 'org.created', payload: { organizationName: 'C' }, options: { organizationId: 'org_1' } },
          { type: 'org.created', payload: { organizationName: 'D' }, options: { organizationId: 'org_3', idempotencyKey: 'k' } },
        ]),
      );
      expect(EventBusError.is(many, 'IDEMPOTENCY_CONFLICT')).toBe(true);
      const again = await bus.publish('org.created', { organizationName: 'A2' }, { organizationId: 'org_1', idempotencyKey: 'k' });
      expect(again.eventId).toBe(first.eventId);
      expect((await bus.timeline({})).events.map((e) => e.eventId)).toEqual([first.eventId]);
    } finally {
      await bus.stop();
    }
  });
});
