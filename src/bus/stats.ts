/** In-process counters behind `bus.stats()`: plain numbers, updated on the hot path without allocation. */
import type { BusStats, TypeStats } from './types';

function emptyTypeStats(): TypeStats {
  return { published: 0, processed: 0, failed: 0, retried: 0 };
}

/** Counts what this process published and what its deliveries did. */
export class StatsCollector {
  private readonly total = emptyTypeStats();
  private readonly byType = new Map<string, TypeStats>();
  private timeTotal = 0;
  private timeMax = 0;
  /** The type counted last and its counters: a run of one type skips the map. */
  private lastType: string | undefined;
  private lastStats: TypeStats | undefined;

  private of(type: string): TypeStats {
    if (type === this.lastType) return this.lastStats!;
    let stats = this.byType.get(type);
    if (!stats) {
      stats = emptyTypeStats();
      this.byType.set(type, stats);
    }
    this.lastType = type;
    this.lastStats = stats;
    return stats;
  }

  published(type: string): void {
    this.total.published += 1;
    this.of(type).published += 1;
  }

  processed(type: string, elapsedMs: number): void {
    this.total.processed += 1;
    this.of(type).processed += 1;
    this.timeTotal += elapsedMs;
    if (elapsedMs > this.timeMax) this.timeMax = elapsedMs;
  }

  retried(type: string): void {
    this.total.retried += 1;
    this.of(type).retried += 1;
  }

  failed(type: string): void {
    this.total.failed += 1;
    this.of(type).failed += 1;
  }

  snapshot(inFlight: number): BusStats {
    const byType: Record<string, TypeStats> = {};
    for (const [type, stats] of this.byType) byType[type] = { ...stats };
    const processed = this.total.processed;
    return {
      ...this.total,
      processingTimeMs: {
        total: this.timeTotal,
        average: processed === 0 ? 0 : this.timeTotal / processed,
        max: this.timeMax,
      },
      inFlight,
      byType,
    };
  }
}
