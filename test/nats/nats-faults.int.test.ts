/**
 * Faults on a private nats-server (its own port and store folder):
 * (1) a member in a child process holds keyed and unkeyed deliveries and is
 * killed with SIGKILL: the surviving member gets every one of them, each key
 * in order; (2) the server restarts on the same store: the transport
 * reconnects, publishing and consuming go on, nothing acknowledged comes
 * back and nothing unacknowledged is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7, type BaseEvent, type Transport, type TransportConsumer, type TransportDelivery, type TransportEvent } from '../../src/index';
import { natsTransport } from '../../adapters/nats/index';
import { natsServerUnavailable, startNatsServer, type PrivateNatsServer } from './fixtures/nats-server';

const reason = natsServerUnavailable();
/** Long enough that a worker slowed down by a busy machine keeps its leases while it lives. */
const LEASE_MS = 2500;
const root = fileURLToPath(new URL('../../', import.meta.url));
const workerScript = fileURLToPath(new URL('./fixtures/consumer-worker.ts', import.meta.url));

function event(orderingKey?: string): TransportEvent {
  const envelope = {
    eventId: uuidv7(),
    eventType: 'auth.user_signed_up',
    eventVersion: 1,
    occurredAt: new Date().toISOString(),
    actor: 'user_1',
    actorType: 'user',
    organizationId: 'org_1',
    payload: {},
    metadata: {},
  } as unknown as BaseEvent;
  return orderingKey === undefined ? { event: envelope } : { event: envelope, orderingKey };
}

/** Fetches and acknowledges until `count` arrived or `timeoutMs` passed; asserts no keyed batch carries two events of one key. */
async function drain(consumer: TransportConsumer, count: number, timeoutMs: number): Promise<TransportDelivery[]> {
  const got: TransportDelivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count && Date.now() < deadline) {
    const batch = await consumer.fetch(count - got.length, 300);
    const keys = batch.flatMap((d) => (d.orderingKey ? [d.orderingKey] : []));
    expect(new Set(keys).size).toBe(keys.length);
    for (const d of batch) {
      got.push(d);
      await d.ack();
    }
  }
  return got;
}

const ids = (xs: readonly { event: BaseEvent }[]) => xs.map((x) => x.event.eventId);

describe.skipIf(reason !== null)(`NATS transport faults${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let server: PrivateNatsServer;
  const transports: Transport[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(transports.splice(0).map((t) => t.close()));
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('hands a SIGKILLed member\'s deliveries to the survivor: unkeyed after the lease, keyed after the partition lease, in order', async () => {
    const prefix = `kill${Date.now()}`;
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript], {
      cwd: root,
      env: { ...process.env, NATS_URL: server.url, PREFIX: prefix, GROUP: 'g', LEASE_MS: String(LEASE_MS) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const until = async (check: () => boolean, what: string, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!check()) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${what}; worker stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(() => out.includes('ready'), 'worker did not start');

    const publisher = natsTransport({ servers: server.url, prefix });
    transports.push(publisher);
    const unkeyed = Array.from({ length: 10 }, () => event());
    const keyed = ['k1', 'k2', 'k3'].flatMap((k) => Array.from({ length: 4 }, () => event(k)));
    await publisher.publish([...unkeyed.slice(0, 5), ...keyed, ...unkeyed.slice(5)]);

    // The worker holds every unkeyed event and the first event of each key (the rest wait behind them).
    const got = () => out.split('\n').filter((l) => l.startsWith('got ')).map((l) => l.split(' ')[1]!);
    await until(() => got().length >= 13, 'worker did not get its deliveries');
    const firstOfKeys = [keyed[0]!, keyed[4]!, keyed[8]!];
    expect(got().sort()).toEqual(ids([...unkeyed, ...firstOfKeys]).sort());

    // While the worker lives, its deliveries stay its own.
    const survivor = await publisher.consume('g', { patterns: ['*'], leaseMs: LEASE_MS, member: 'survivor' });
    expect(await survivor.fetch(50, LEASE_MS * 1.5)).toEqual([]);

    child.kill('SIGKILL');
    const started = Date.now();
    const taken = await drain(survivor, 22, 20_000);
    expect(ids(taken).sort()).toEqual(ids([...unkeyed, ...keyed]).sort());
    for (const k of ['k1', 'k2', 'k3']) {
      expect(ids(taken.filter((d) => d.orderingKey === k))).toEqual(ids(keyed.filter((e) => e.orderingKey === k)));
    }
    // What the worker had was redelivered (count 2), and not before its lease ran out.
    for (const d of taken) if (got().includes(d.event.eventId)) expect(d.deliveryCount).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(LEASE_MS * 0.9);
    expect(await survivor.fetch(50, LEASE_MS + 500)).toEqual([]);
    await survivor.close();
  });

  it('goes on after a server restart: reconnects, keeps what was not acknowledged, never brings back what was', async () => {
    const prefix = `restart${Date.now()}`;
    const t = natsTransport({ servers: server.url, prefix, connectOptions: { reconnectTimeWait: 200 } });
    transports.push(t);
    const consumer = await t.consume('g', { patterns: ['*'], leaseMs: LEASE_MS, member: 'm1' });
    const unkeyed = Array.from({ length: 4 }, () => event());
    const keyed = Array.from({ length: 3 }, () => event('k'));
    const sent = [...unkeyed, ...keyed].map((e, i) => ({ ...e, position: `1:${i + 1}` }));
    await t.publish(sent);

    // Fetch all that can be had: the 4 unkeyed and the first keyed; ack two unkeyed and the first keyed.
    const first: TransportDelivery[] = [];
    const deadline = Date.now() + 10_000;
    while (first.length < 5 && Date.now() < deadline) first.push(...(await consumer.fetch(10, 300)));
    expect(first).toHaveLength(5);
    const byId = (id: string) => first.find((d) => d.event.eventId === id)!;
    const acked = [sent[0]!, sent[1]!, sent[4]!];
    for (const e of acked) await byId(e.event.eventId).ack();
    // The second keyed event comes once the first is acknowledged; leave it unacknowledged too.
    const [second] = await consumer.fetch(1, 3000);
    expect(second?.event.eventId).toBe(sent[5]!.event.eventId);
    expect(await t.progress!(['g'])).toEqual({ intact: true, oldestPending: { g: '1:3' } });

    await server.stop();
    await new Promise((r) => setTimeout(r, 300));
    await server.start();

    // Publishing works again once the client reconnected.
    const later = [event(), event('k')].map((e, i) => ({ ...e, position: `2:${i + 1}` }));
    const publishDeadline = Date.now() + 20_000;
    for (;;) {
      try {
        await t.publish(later);
        break;
      } catch (err) {
        if (Date.now() > publishDeadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    // Everything not acknowledged arrives (the held ones after their lease), the key in order; nothing acknowledged does.
    const expected = [sent[2]!, sent[3]!, sent[5]!, sent[6]!, ...later];
    const rest = await drain(consumer, expected.length, 25_000);
    expect(ids(rest).sort()).toEqual(ids(expected).sort());
    expect(ids(rest.filter((d) => d.orderingKey === 'k'))).toEqual(ids([sent[5]!, sent[6]!, later[1]!]));
    expect(await consumer.fetch(10, LEASE_MS + 500)).toEqual([]);
    expect(await t.progress!(['g'])).toEqual({ intact: true, oldestPending: { g: null } });
  });
});
