/**
 * The transport contract: every behaviour the `Transport` port promises,
 * written once and run against every adapter. The factory is called once per
 * simulated process; a cross-process transport's instances share the broker.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BaseEvent } from '../../src/envelope';
import type { Transport, TransportConsumer, TransportDelivery, TransportEvent } from '../../src/ports/transport';

/** Creates one transport instance (one "process") on a namespace private to the current test. */
export type TransportFactory = (namespace: string) => Promise<Transport>;

const LEASE_MS = 1500;

let sequence = 0;

function envelope(eventType: string): BaseEvent {
  sequence += 1;
  return {
    eventId: `evt_${String(sequence).padStart(6, '0')}`,
    eventType,
    eventVersion: 1,
    occurredAt: new Date(1_700_000_000_000 + sequence).toISOString(),
    actor: 'user_1',
    actorType: 'user',
    organizationId: 'org_1',
    payload: { n: sequence },
    metadata: {},
  } as unknown as BaseEvent;
}

function events(n: number, options: { type?: string; orderingKey?: string } = {}): TransportEvent[] {
  return Array.from({ length: n }, () => ({
    event: envelope(options.type ?? 'auth.user_signed_up'),
    ...(options.orderingKey !== undefined ? { orderingKey: options.orderingKey } : {}),
  }));
}

const ids = (ds: readonly { event: BaseEvent }[]) => ds.map((d) => d.event.eventId);

/** Fetches until `count` deliveries arrived or `timeoutMs` passed; acknowledges them unless told not to. */
async function collect(consumer: TransportConsumer, count: number, options: { ack?: boolean; timeoutMs?: number } = {}): Promise<TransportDelivery[]> {
  const got: TransportDelivery[] = [];
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  while (got.length < count && Date.now() < deadline) {
    const batch = await consumer.fetch(count - got.length, Math.min(500, Math.max(1, deadline - Date.now())));
    for (const d of batch) {
      got.push(d);
      if (options.ack !== false) await d.ack();
    }
  }
  return got;
}

export function describeTransportContract(name: string, factory: TransportFactory): void {
  describe(`Transport contract: ${name}`, () => {
    const open: Transport[] = [];
    const consumers: TransportConsumer[] = [];
    let namespaceCounter = 0;
    let namespace = '';
    let memberCounter = 0;

    async function instance(): Promise<Transport> {
      const transport = await factory(namespace);
      open.push(transport);
      return transport;
    }

    async function fresh(): Promise<Transport> {
      namespace = `t${process.pid}_${Date.now()}_${++namespaceCounter}`;
      return instance();
    }

    /** A second "process" where the transport crosses processes, else the same instance. */
    async function peer(t: Transport): Promise<Transport> {
      return t.capabilities.crossProcess ? instance() : t;
    }

    async function join(t: Transport, group: string, patterns: readonly string[] = ['*']): Promise<TransportConsumer> {
      const consumer = await t.consume(group, { patterns, leaseMs: LEASE_MS, member: `m${++memberCounter}` });
      consumers.push(consumer);
      return consumer;
    }

    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((c) => c.close()));
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    it('hands every event to one member of each group, and each group only the types it asked for', async () => {
      const t1 = await fresh();
      const t2 = await peer(t1);
      const a1 = await join(t1, 'a');
      const a2 = await join(t2, 'a');
      const b = await join(t2, 'b', ['billing.*']);
      const signups = events(20);
      const invoices = events(5, { type: 'billing.invoice_paid' });
      await t1.publish([...signups.slice(0, 10), ...invoices, ...signups.slice(10)]);
      const groupA: string[] = [];
      const deadline = Date.now() + 10_000;
      while (groupA.length < 25 && Date.now() < deadline) {
        const [x, y] = await Promise.all([a1.fetch(25, 200), a2.fetch(25, 200)]);
        for (const d of [...x, ...y]) {
          groupA.push(d.event.eventId);
          await d.ack();
        }
      }
      const gotB = await collect(b, 5);
      expect(groupA.sort()).toEqual(ids([...signups, ...invoices]).sort());
      expect(new Set(groupA).size).toBe(25);
      expect(ids(gotB)).toEqual(ids(invoices));
      expect(await b.fetch(10, 200)).toEqual([]);
    });

    it('hands an event addressed to one group to that group only', async () => {
      const t = await fresh();
      const a = await join(t, 'a');
      const b = await join(t, 'b');
      const [addressed] = events(1);
      await t.publish([{ ...addressed!, subscriber: 'b' }]);
      expect(ids(await collect(b, 1))).toEqual([addressed!.event.eventId]);
      expect(await a.fetch(10, 300)).toEqual([]);
    });

    it('carries the envelope, ordering key and position unchanged, with a first delivery count of 1', async () => {
      const t = await fresh();
      const a = await join(t, 'a');
      const sent: TransportEvent = { event: envelope('auth.user_signed_up'), orderingKey: 'org_1', position: '42:7' };
      await t.publish([sent]);
      const [got] = await collect(a, 1);
      expect(got!.event).toEqual(sent.event);
      expect(got!.orderingKey).toBe('org_1');
      expect(got!.position).toBe('42:7');
      expect(got!.deliveryCount).toBe(1);
    });

    it('does not hand a held delivery to another member, and hands it over once its lease runs out', async () => {
      const t1 = await fresh();
      const t2 = await peer(t1);
      const holder = await join(t1, 'a');
      const other = await join(t2, 'a');
      await t1.publish(events(1));
      const [held] = await collect(holder, 1, { ack: false });
      expect(held).toBeDefined();
      expect(await other.fetch(10, LEASE_MS / 3)).toEqual([]);
      const [taken] = await collect(other, 1, { ack: false, timeoutMs: LEASE_MS * 4 });
      expect(taken?.event.eventId).toBe(held!.event.eventId);
      // At least one more: a broker may count a hand-out no member took up (see TransportDelivery.deliveryCount).
      expect(taken!.deliveryCount).toBeGreaterThanOrEqual(2);
      await taken!.ack();
    });

    it('keeps a delivery held while its holder extends the lease', async () => {
      const t1 = await fresh();
      const t2 = await peer(t1);
      const holder = await join(t1, 'a');
      const other = await join(t2, 'a');
      await t1.publish(events(1));
      const [held] = await collect(holder, 1, { ack: false });
      const until = Date.now() + LEASE_MS * 2;
      const stolen: TransportDelivery[] = [];
      while (Date.now() < until) {
        expect(await held!.extend()).toBe(true);
        stolen.push(...(await other.fetch(1, LEASE_MS / 4)));
      }
      expect(stolen).toEqual([]);
      await held!.ack();
    });

    it('brings a delivery back after retry(delay), no sooner, with the count one higher; never after ack', async () => {
      const t = await fresh();
      const a = await join(t, 'a');
      await t.publish(events(1));
      const [first] = await collect(a, 1, { ack: false });
      const asked = Date.now();
      await first!.retry(400);
      const [again] = await collect(a, 1, { ack: false });
      expect(Date.now() - asked).toBeGreaterThanOrEqual(390);
      expect(again!.event.eventId).toBe(first!.event.eventId);
      expect(again!.deliveryCount).toBe(2);
      await again!.ack();
      expect(await a.fetch(10, LEASE_MS + 500)).toEqual([]);
    });

    it('waits for the first delivery up to waitMs, and returns at once when the signal aborts', async () => {
      const t = await fresh();
      const a = await join(t, 'a');
      const started = Date.now();
      expect(await a.fetch(5, 300)).toEqual([]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const controller = new AbortController();
      const waiting = a.fetch(5, 10_000, controller.signal);
      setTimeout(() => controller.abort(), 100);
      const abortedAt = Date.now();
      expect(await waiting).toEqual([]);
      expect(Date.now() - abortedAt).toBeLessThan(3000);
      await t.publish(events(1));
      expect(await collect(a, 1)).toHaveLength(1);
    });

    it('hands out one ordering key one event at a time, in publish order, to any member (orderedPerKey)', async (ctx) => {
      const t1 = await fresh();
      if (!t1.capabilities.orderedPerKey) return ctx.skip(`transport "${t1.name}" does not keep order per key`);
      const t2 = await peer(t1);
      const m1 = await join(t1, 'a');
      const m2 = await join(t2, 'a');
      const keyed = events(6, { orderingKey: 'org_1' });
      const loose = events(4);
      for (const e of keyed.slice(0, 3)) await t1.publish([e]);
      await t1.publish(loose);
      for (const e of keyed.slice(3)) await t1.publish([e]);
      const handled: string[] = [];
      // Both members fetch at once; while a keyed event is held, no later event of its key may show up anywhere.
      const deadline = Date.now() + 15_000;
      while (handled.filter((id) => ids(keyed).includes(id)).length < 6 && Date.now() < deadline) {
        const [x, y] = await Promise.all([m1.fetch(10, 200), m2.fetch(10, 200)]);
        const batch = [...x, ...y];
        const keyedInBatch = batch.filter((d) => d.orderingKey === 'org_1');
        expect(keyedInBatch.length).toBeLessThanOrEqual(1);
        for (const d of batch) {
          handled.push(d.event.eventId);
          await d.ack();
        }
      }
      expect(handled.filter((id) => ids(keyed).includes(id))).toEqual(ids(keyed));
      expect(handled.filter((id) => ids(loose).includes(id)).sort()).toEqual(ids(loose).sort());
    });

    it('keeps a later event of a key back while an earlier one waits for its retry (orderedPerKey)', async (ctx) => {
      const t = await fresh();
      if (!t.capabilities.orderedPerKey) return ctx.skip(`transport "${t.name}" does not keep order per key`);
      const a = await join(t, 'a');
      const [first, second] = events(2, { orderingKey: 'k' });
      const other = events(1, { orderingKey: 'other' });
      await t.publish([first!, second!, ...other]);
      const initial = await collect(a, 2, { ack: false });
      expect(ids(initial).sort()).toEqual([first!.event.eventId, other[0]!.event.eventId].sort());
      await initial.find((d) => d.orderingKey === 'other')!.ack();
      await initial.find((d) => d.orderingKey === 'k')!.retry(300);
      const next = await collect(a, 2, { timeoutMs: 5000 });
      expect(ids(next)).toEqual([first!.event.eventId, second!.event.eventId]);
    });

    it('gives a leaving member\'s unacknowledged deliveries to the others', async () => {
      const t1 = await fresh();
      const t2 = await peer(t1);
      const leaving = await join(t1, 'a');
      const staying = await join(t2, 'a');
      await t1.publish(events(3));
      const held = await collect(leaving, 3, { ack: false });
      expect(held).toHaveLength(3);
      await leaving.close();
      const taken = await collect(staying, 3, { timeoutMs: LEASE_MS * 4 });
      expect(ids(taken).sort()).toEqual(ids(held).sort());
    });

    it('keeps a group\'s events while it has no member (durable transports)', async (ctx) => {
      const t1 = await fresh();
      if (!t1.capabilities.durable) return ctx.skip(`transport "${t1.name}" is not durable`);
      const first = await join(t1, 'a');
      await first.close();
      const sent = events(2);
      await t1.publish(sent);
      const t2 = await peer(t1);
      const again = await join(t2, 'a');
      expect(ids(await collect(again, 2)).sort()).toEqual(ids(sent).sort());
    });

    it('reports each group\'s oldest unacknowledged position, counting events not yet fetched (progress)', async (ctx) => {
      const t = await fresh();
      if (!t.progress) return ctx.skip(`transport "${t.name}" has no progress (not fed by the relay)`);
      const a = await join(t, 'a');
      const b = await join(t, 'b');
      const sent = events(3).map((e, i) => ({ ...e, position: `1:${i + 1}` }));
      await t.publish(sent);
      expect(await t.progress(['a', 'b'])).toEqual({ intact: true, oldestPending: { a: '1:1', b: '1:1' } });
      const gotA = await collect(a, 3, { ack: false });
      await gotA[0]!.ack();
      await gotA[1]!.ack();
      await collect(b, 3);
      expect(await t.progress(['a', 'b'])).toEqual({ intact: true, oldestPending: { a: '1:3', b: null } });
      expect((await t.progress(['a', 'never_joined'])).oldestPending).toEqual({ a: '1:3' });
    });

    it('closes idempotently', async () => {
      const t = await fresh();
      await join(t, 'a');
      await t.close();
      await t.close();
    });

    it('brings a retried keyed delivery back with the count one higher, before the next event of its key (orderedPerKey)', async (ctx) => {
      const t = await fresh();
      if (!t.capabilities.orderedPerKey) return ctx.skip(`transport "${t.name}" does not keep order per key`);
      const a = await join(t, 'a');
      const sent = events(2, { orderingKey: 'k' });
      await t.publish(sent);
      const [first] = await collect(a, 1, { ack: false });
      expect(first!.deliveryCount).toBe(1);
      await first!.retry(200);
      const [again] = await collect(a, 1, { ack: false });
      expect([again!.event.eventId, again!.deliveryCount]).toEqual([sent[0]!.event.eventId, 2]);
      await again!.ack();
      const [next] = await collect(a, 1);
      expect([next!.event.eventId, next!.deliveryCount]).toEqual([sent[1]!.event.eventId, 1]);
    });

    it('gives a leaving member\'s keyed deliveries to the others, in order (orderedPerKey)', async (ctx) => {
      const t1 = await fresh();
      if (!t1.capabilities.orderedPerKey) return ctx.skip(`transport "${t1.name}" does not keep order per key`);
      const t2 = t1.capabilities.crossProcess ? await instance() : t1;
      const leaving = await join(t1, 'a');
      const sent = events(3, { orderingKey: 'k' });
      await t1.publish(sent);
      const held = await collect(leaving, 1, { ack: false });
      expect(ids(held)).toEqual([sent[0]!.event.eventId]);
      const staying = await join(t2, 'a');
      await leaving.close();
      const taken = await collect(staying, 3, { timeoutMs: LEASE_MS * 4 });
      expect(ids(taken)).toEqual(ids(sent));
    });

    it('reports progress only over the types a group takes (progress)', async (ctx) => {
      const t = await fresh();
      if (!t.progress) return ctx.skip(`transport "${t.name}" has no progress (not fed by the relay)`);
      const billing = await join(t, 'billing', ['billing.*']);
      const signups = events(2).map((e, i) => ({ ...e, position: `2:${i + 1}` }));
      const invoice = { ...events(1, { type: 'billing.invoice_paid' })[0]!, position: '2:3' };
      await t.publish([...signups, invoice]);
      expect((await t.progress(['billing'])).oldestPending).toEqual({ billing: '2:3' });
      await collect(billing, 1);
      expect((await t.progress(['billing'])).oldestPending).toEqual({ billing: null });
    });
  });
}
