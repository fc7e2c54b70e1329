/**
 * The transport contract on the shared NATS server (`NATS_URL`, JetStream
 * enabled): every test on its own prefix, its streams deleted afterwards.
 * Without `NATS_URL` the suite is skipped, saying why.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { EventBusError } from '../../src/index';
import { natsTransport } from '../../adapters/nats/index';
import { describeTransportContract } from '../contract/transport.contract';

const NATS_URL = process.env.NATS_URL || undefined;
const reason = NATS_URL ? null : 'NATS_URL is not set';
const prefixes = new Set<string>();

/** Deletes the streams of every prefix the suite used. */
async function dropStreams(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for (const prefix of prefixes) {
      for (const stream of [`${prefix}_events`, `${prefix}_leases`]) await jsm.streams.delete(stream).catch(() => {});
    }
  } finally {
    await nc.close();
  }
}

describe.skipIf(reason !== null)(`NATS transport${reason ? ` (skipped: ${reason})` : ''}`, () => {
  afterAll(async () => {
    if (NATS_URL) await dropStreams(NATS_URL);
  });

  describeTransportContract('nats', async (namespace) => {
    prefixes.add(namespace);
    return natsTransport({ servers: NATS_URL!, prefix: namespace });
  });

  it('refuses bad options with INVALID_OPTION', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return EventBusError.is(err) ? err.code : String(err);
      }
      return 'no error';
    };
    expect(code(() => natsTransport({} as never))).toBe('INVALID_OPTION');
    expect(code(() => natsTransport({ servers: NATS_URL!, prefix: 'a.b' }))).toBe('INVALID_OPTION');
    expect(code(() => natsTransport({ servers: NATS_URL!, partitions: 0 }))).toBe('INVALID_OPTION');
    expect(code(() => natsTransport({ servers: NATS_URL!, maxAgeMs: 1000, duplicateWindowMs: 5000 }))).toBe('INVALID_OPTION');
  });

  it('reports TRANSPORT_UNAVAILABLE when no server answers', async () => {
    const t = natsTransport({ servers: 'nats://127.0.0.1:1', connectOptions: { timeout: 500 } });
    await expect(t.publish([])).resolves.toBeUndefined();
    const err = await t.consume('a', { patterns: ['*'], leaseMs: 1000, member: 'm' }).catch((e: unknown) => e);
    expect(EventBusError.is(err, 'TRANSPORT_UNAVAILABLE')).toBe(true);
    await t.close();
  });
});
