import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fifo } from '../src/collections/fifo';
import { MinHeap } from '../src/collections/min-heap';
import { SlotList } from '../src/collections/slot-list';

describe('SlotList', () => {
  it('behaves as a set under any sequence of adds and removes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 9 }))), (ops) => {
        const items = Array.from({ length: 10 }, (_, id) => ({ id, slot: -1 }));
        const list = new SlotList<(typeof items)[number]>();
        const model = new Set<number>();
        for (const [add, i] of ops) {
          const item = items[i]!;
          if (add && !model.has(i)) {
            list.add(item);
            model.add(i);
          } else if (!add) {
            expect(list.delete(item)).toBe(model.delete(i));
          }
          expect(list.size).toBe(model.size);
          expect(list.values().map((x) => x.id).sort()).toEqual([...model].sort());
          for (const x of items) expect(list.has(x)).toBe(model.has(x.id));
        }
      }),
    );
  });
});

describe('MinHeap', () => {
  it('pops in key order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), (keys) => {
        const heap = new MinHeap<number>((k) => k);
        for (const k of keys) heap.push(k);
        const out: number[] = [];
        for (let k = heap.pop(); k !== undefined; k = heap.pop()) out.push(k);
        expect(out).toEqual([...keys].sort((a, b) => a - b));
      }),
    );
  });
});

describe('Fifo', () => {
  it('behaves as a first-in first-out queue under any sequence of pushes and shifts, across rewinds and compactions', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 3000 }))), (ops) => {
        const queue = new Fifo<number>();
        const model: number[] = [];
        let next = 0;
        for (const [push, count] of ops) {
          for (let i = 0; i < count; i++) {
            if (push) {
              queue.push(next);
              model.push(next++);
            } else expect(queue.shift()).toBe(model.shift());
          }
          expect(queue.size).toBe(model.length);
        }
        while (model.length > 0) expect(queue.shift()).toBe(model.shift());
        expect(queue.shift()).toBeUndefined();
        expect(queue.size).toBe(0);
      }),
      { numRuns: 50 },
    );
  });
});
