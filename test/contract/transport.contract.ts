/**
 * The transport contract: every behaviour the `Transport` port promises,
 * written once and run against every adapter. The factory is called once per
 * simulated process; a cross-process transport's instances share the broker.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Transport, TransportMessage } from '../../src/ports/transport';

/** Creates one transport instance (one "process") on a namespace private to the current test. */
export type TransportFactory = (namespace: string) => Promise<Transport>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

function messages(n: number, orderingKey?: string): TransportMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    eventId: `evt_${i}`,
    eventType: 'auth.user_signed_up',
    ...(orderingKey ? { orderingKey } : {}),
  }));
}

export function describeTransportContract(name: string, factory: TransportFactory): void {
  describe(`Transport contract: ${name}`, () => {
    const open: Transport[] = [];
    let namespaceCounter = 0;
    let namespace = '';

    async function instance(): Promise<Transport> {
      const transport = await factory(namespace);
      open.push(transport);
      return transport;
    }

    async function fresh(): Promise<Transport> {
      namespace = `t${process.pid}_${Date.now()}_${++namespaceCounter}`;
      return instance();
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    it('delivers every message to exactly one member of each group', async () => {
      const t1 = await fresh();
      const t2 = t1.capabilities.crossProcess ? await instance() : t1;
      const got = { a1: [] as string[], a2: [] as string[], b: [] as string[] };
      await t1.subscribe('a', (ms) => void got.a1.push(...ms.map((m) => m.eventId)));
      await t2.subscribe('a', (ms) => void got.a2.push(...ms.map((m) => m.eventId)));
      await t2.subscribe('b', (ms) => void got.b.push(...ms.map((m) => m.eventId)));
      const sent = messages(30);
      for (let i = 0; i < sent.length; i += 3) await t1.publish(sent.slice(i, i + 3));
      await eventually(() => got.a1.length + got.a2.length === 30 && got.b.length === 30);
      await sleep(100);
      const groupA = [...got.a1, ...got.a2];
      expect(groupA.sort()).toEqual(sent.map((m) => m.eventId).sort());
      expect([...got.b].sort()).toEqual(sent.map((m) => m.eventId).sort());
    });

    it('keeps messages of one ordering key in publish order within a group', async () => {
      const t = await fresh();
      const got: string[] = [];
      await t.subscribe('a', async (ms) => {
        for (const m of ms) got.push(m.eventId);
      });
      const sent = messages(20, 'org_1');
      for (const m of sent) await t.publish([m]);
      await eventually(() => got.length === 20);
      expect(got).toEqual(sent.map((m) => m.eventId));
    });

    it('stops calling a consumer after unsubscribe resolves', async () => {
      const t = await fresh();
      let calls = 0;
      const sub = await t.subscribe('a', () => void (calls += 1));
      await t.publish(messages(1));
      await eventually(() => calls === 1);
      await sub.unsubscribe();
      await t.publish(messages(3));
      await sleep(200);
      expect(calls).toBe(1);
    });

    it('waits for handler calls in progress on close, and closes idempotently', async () => {
      const t = await fresh();
      let finished = false;
      let started = false;
      await t.subscribe('a', async () => {
        started = true;
        await sleep(150);
        finished = true;
      });
      await t.publish(messages(1));
      await eventually(() => started);
      await t.close();
      expect(finished).toBe(true);
      await t.close();
    });

    it('redelivers a message whose handler rejected (durable transports)', async (ctx) => {
      const t = await fresh();
      if (!t.capabilities.durable) {
        ctx.skip(`transport "${t.name}" is not durable: a failed notice is dropped and the storage poll covers it`);
        return;
      }
      const seen: string[] = [];
      let failed = false;
      await t.subscribe('a', async (ms) => {
        seen.push(...ms.map((m) => m.eventId));
        if (!failed) {
          failed = true;
          throw new Error('nack');
        }
      });
      await t.publish(messages(1));
      await eventually(() => seen.length >= 2, 15_000);
      expect(seen.every((id) => id === 'evt_0')).toBe(true);
    });

    it('keeps a group\'s messages while it has no member (durable transports)', async (ctx) => {
      const t = await fresh();
      if (!t.capabilities.durable) {
        ctx.skip(`transport "${t.name}" is not durable`);
        return;
      }
      const first = await t.subscribe('a', () => undefined);
      await first.unsubscribe();
      await t.publish(messages(2));
      const got: string[] = [];
      await t.subscribe('a', (ms) => void got.push(...ms.map((m) => m.eventId)));
      await eventually(() => got.length === 2);
      expect(got.sort()).toEqual(['evt_0', 'evt_1']);
    });
  });
}
