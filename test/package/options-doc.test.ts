/**
 * docs/options.md against the code: the defaults the reference table states
 * for the bus (retry, dispatch, health), the HTTP routes, metrics and traces
 * are the ones the code resolves, so the table cannot drift from them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  INGEST_DEFAULT_BODY_LIMIT,
  INGEST_DEFAULT_MAX_BATCH,
  resolveDashboardOptions,
  TIMELINE_DEFAULT_LIMIT,
  TIMELINE_MAX_EVENT_TYPES,
  TIMELINE_MAX_LIMIT,
} from '../../adapters/http';
import { DEFAULT_MESSAGING_SYSTEM } from '../../adapters/opentelemetry';
import { DEFAULT_DURATION_BUCKETS, DEFAULT_LAG_BUCKETS } from '../../adapters/prometheus';
import { resolveDispatch, resolveHealth, resolveRetry } from '../../src/bus/options';

const TABLE = readFileSync(new URL('../../docs/options.md', import.meta.url), 'utf8');

/** The table's rows as `where option` to the default cell. */
const rows = new Map<string, string>();
for (const line of TABLE.split('\n')) {
  const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
  if (cells.length !== 4 || cells[0] === 'where' || cells[0]!.startsWith('---')) continue;
  rows.set(`${cells[0]} ${cells[1]}`.replaceAll('`', ''), cells[2]!.replaceAll('`', ''));
}

/** The default cell of a row (failing the test when the row is missing). */
function cell(where: string, option: string): string {
  const value = rows.get(`${where} ${option}`);
  if (value === undefined) throw new Error(`docs/options.md has no row for ${where} / ${option}`);
  return value;
}

/** The number a default cell starts with (`900000 (15 min)` is 900000). */
const numberIn = (text: string) => Number(/^[\d.]+/.exec(text)?.[0]);

describe('docs/options.md', () => {
  it('states the bus defaults the code resolves (retry, dispatch, health)', () => {
    for (const [option, value] of Object.entries(resolveRetry(undefined))) {
      expect(numberIn(cell('createEventBus retry', option)), `retry.${option}`).toBe(value);
    }
    for (const [option, value] of Object.entries(resolveDispatch(undefined))) {
      expect(numberIn(cell('createEventBus dispatch', option)), `dispatch.${option}`).toBe(value);
    }
    const health = resolveHealth(undefined);
    expect(numberIn(cell('createEventBus health', 'maxUnprocessed'))).toBe(health.maxUnprocessed);
    expect(numberIn(cell('createEventBus health', 'staleSubscriberMs'))).toBe(health.staleSubscriberMs);
    // "No limit" is the largest safe integer in the code.
    expect(cell('createEventBus health', 'maxPendingAgeMs')).toBe('no limit');
    expect(health.maxPendingAgeMs).toBe(Number.MAX_SAFE_INTEGER);
    expect(cell('createEventBus health', 'maxDeadLetters')).toBe('no limit');
    expect(health.maxDeadLetters).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('states the routes, metrics and tracing defaults the adapters use', () => {
    expect(numberIn(cell('ingest options', 'bodyLimit'))).toBe(INGEST_DEFAULT_BODY_LIMIT);
    expect(numberIn(cell('ingest options', 'maxBatchSize'))).toBe(INGEST_DEFAULT_MAX_BATCH);
    expect(numberIn(cell('timeline route query', 'limit'))).toBe(TIMELINE_DEFAULT_LIMIT);
    expect(TABLE).toContain(`page size, at most ${TIMELINE_MAX_LIMIT} (at most ${TIMELINE_MAX_EVENT_TYPES} \`eventTypes\`)`);
    expect(cell('dashboard options', 'readOnly')).toBe(String(resolveDashboardOptions(true)!.readOnly));
    expect(cell('traceEventBus, tracingMiddleware', 'messagingSystem')).toBe(`'${DEFAULT_MESSAGING_SYSTEM}'`);
    expect(cell('eventBusMetrics', 'durationBuckets')).toContain(`${DEFAULT_DURATION_BUCKETS[0]} to ${DEFAULT_DURATION_BUCKETS.at(-1)} s`);
    expect(cell('eventBusMetrics', 'lagBuckets')).toContain(`${DEFAULT_LAG_BUCKETS[0]} s to ${DEFAULT_LAG_BUCKETS.at(-1)! / 3600} h`);
  });
});
