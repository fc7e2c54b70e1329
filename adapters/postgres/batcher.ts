/**
 * Coalesces calls made in the same tick into one statement: ten callers that
 * publish at once pay one round trip and one commit, not ten.
 */
import { firstOf, untilAborted } from './deadline';

interface Pending<I, O> {
  input: I;
  /** The caller's deadline. */
  signal: AbortSignal | undefined;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects calls until the current tick ends, then runs them with `runMany`.
 * When a batch of several calls fails for a reason other than `isFatal` (one
 * call's bad data, say), each call is retried alone so the others succeed.
 * A batch runs under the earliest deadline of its calls: once that passes,
 * its calls reject with the deadline's reason and the batch is no longer
 * waited for (`drain` included), though its statement may still complete.
 */
export class TickBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly runMany: (inputs: I[], signal: AbortSignal | undefined) => Promise<O[]>,
    private readonly sizeOf: (input: I) => number,
    private readonly maxSize: number,
    private readonly isFatal: (err: unknown) => boolean,
  ) {}

  add(input: I, signal?: AbortSignal): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, signal, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Resolves when the batches already sent have settled (at once when none is in flight); never rejects. */
  sent(): Promise<unknown> | undefined {
    return this.inFlight.size === 0 ? undefined : Promise.allSettled([...this.inFlight]);
  }

  /** Resolves when every batch sent so far has settled. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0 || this.queue.length > 0) {
      if (this.queue.length > 0 && !this.scheduled) this.flush();
      await Promise.allSettled([...this.inFlight]);
      if (this.scheduled) await new Promise((r) => setImmediate(r));
    }
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch: Pending<I, O>[] = [];
      let size = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0]!;
        const n = this.sizeOf(next.input);
        if (batch.length > 0 && size + n > this.maxSize) break;
        batch.push(this.queue.shift()!);
        size += n;
      }
      const run = this.send(batch).finally(() => this.inFlight.delete(run));
      this.inFlight.add(run);
    }
  }

  private async send(batch: Pending<I, O>[]): Promise<void> {
    const signal = firstOf(batch.map((p) => p.signal));
    try {
      const results = await untilAborted(this.runMany(batch.map((p) => p.input), signal), signal);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1 || this.isFatal(err) || signal?.aborted) {
        for (const p of batch) p.reject(err);
        return;
      }
      await Promise.all(batch.map((p) => this.send([p])));
    }
  }
}
