/**
 * A first-in first-out queue over one array. A queue that goes from empty to
 * one item and back on every event would make `array.length = 0` (a runtime
 * call) or a fresh array its cost; this one rewinds its indexes instead and
 * keeps the array, dropping it only once a burst left it large.
 */

/** Slots kept when the queue empties; a larger array is dropped (memory stays flat after a burst). */
const KEEP = 1024;

/** A first-in first-out queue that reuses its array (see the module comment). */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private tail = 0;

  /** Items queued (the memory storage counts its stale entries too). */
  get size(): number {
    return this.tail - this.head;
  }

  push(item: T): void {
    this.items[this.tail++] = item;
  }

  /** The oldest item, removed; `undefined` when empty. */
  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
      if (this.items.length > KEEP) this.items = [];
    } else if (this.head > KEEP && this.head * 2 > this.tail) {
      // Mostly consumed: move the rest to the front so the array does not grow without end.
      this.items = this.items.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    return item;
  }
}
