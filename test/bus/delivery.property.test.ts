/**
 * The delivery property (see delivery-property.ts) on the in-memory storage:
 * every (event, subscriber) pair ends succeeded exactly once or dead-lettered,
 * none lost, and no subscriber re-runs because another failed.
 */
import { describe } from 'vitest';
import { memoryStorage } from '@blawby/event-bus';
import { deliveryPropertyTests } from './delivery-property';

describe('delivery (property, memory storage)', () => {
  // One storage per plan, shared by all its buses (closing a memory storage releases nothing).
  deliveryPropertyTests(
    async () => {
      const storage = memoryStorage();
      return { makeStorage: () => storage };
    },
    { numRuns: 100, timeoutMs: 120_000 },
  );
});
