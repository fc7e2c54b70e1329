import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../src/index';

describe('uuidv7', () => {
  it('makes RFC 9562 version-7 ids that carry the millisecond and sort in creation order', () => {
    const now = Date.UTC(2026, 10, 27, 12, 0, 0, 123);
    const ids = Array.from({ length: 5000 }, () => uuidv7(now));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids); // same millisecond: the counter keeps order, then borrows the next ms
    expect(parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16)).toBe(now);
    const later = uuidv7(now + 60_000);
    expect(later > ids[ids.length - 1]!).toBe(true);
  });
});
