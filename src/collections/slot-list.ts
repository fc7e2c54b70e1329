/**
 * An unordered collection with O(1) add and remove that never rehashes or
 * shrinks. Sets that go from empty to one item and back on every event make
 * V8 reallocate their table each time; this keeps one array and lets each item
 * remember its slot.
 */

/** An item of a {@link SlotList}: `slot` is the list's bookkeeping (-1 when not in a list). */
export interface Slotted {
  slot: number;
}

export class SlotList<T extends Slotted> {
  private readonly items: (T | undefined)[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    item.slot = this.count;
    this.items[this.count++] = item;
  }

  has(item: T): boolean {
    return item.slot >= 0 && this.items[item.slot] === item;
  }

  delete(item: T): boolean {
    if (!this.has(item)) return false;
    const last = this.items[--this.count]!;
    this.items[item.slot] = last;
    last.slot = item.slot;
    this.items[this.count] = undefined;
    item.slot = -1;
    return true;
  }

  /** A snapshot of the items, safe to iterate while adding or removing. */
  values(): T[] {
    return this.items.slice(0, this.count) as T[];
  }

  [Symbol.iterator](): Iterator<T> {
    return this.values()[Symbol.iterator]();
  }
}
