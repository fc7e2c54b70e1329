import { describe, expect, it } from 'vitest';
import { memoryStorage } from '../../src/index';
import { describeStorageContract, makeEvent } from '../contract/storage.contract';

describeStorageContract('memory', async () => ({ storage: memoryStorage() }));

describe('memoryStorage window', () => {
  it('keeps only the newest maxEvents events for the timeline, but every unfinished one for its subscribers', async () => {
    const storage = memoryStorage({ maxEvents: 5 });
    await storage.register([{ name: 'a', patterns: ['*'] }]);
    const events = Array.from({ length: 12 }, () => ({ event: makeEvent() }));
    await storage.append(events);
    const page = await storage.timeline({ limit: 100 });
    expect(page.events.map((e) => e.eventId)).toEqual(events.slice(-5).map((i) => i.event.eventId).reverse());
    const claimed = await storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 100 }], limit: 100, leaseMs: 1000 });
    expect(claimed).toHaveLength(12);
  });

  it('refuses a transaction with a coded error', async () => {
    const storage = memoryStorage();
    await expect(storage.append([{ event: makeEvent() }], { tx: {} })).rejects.toMatchObject({ code: 'UNSUPPORTED_BY_STORAGE' });
  });
});
