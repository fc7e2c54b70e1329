/** A fixed-capacity buffer that keeps the newest items: a push past capacity overwrites the oldest, with no copying. */
export class RingBuffer<T> {
  private readonly items: T[] = [];
  /** Where the next push goes once full; then also the oldest item. */
  private next = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  /** Adds `item`; returns the item it pushed out, if the buffer was full. */
  push(item: T): T | undefined {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return undefined;
    }
    const oldest = this.items[this.next];
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    return oldest;
  }

  /** The item at `index`, 0 being the oldest. */
  at(index: number): T {
    return this.items[(this.next + index) % this.items.length]!;
  }
}
