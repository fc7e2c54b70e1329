/**
 * `@blawby/event-bus/prometheus` on the memory storage: a registry given or
 * created, the prefix, retries, a storage that fails a scrape, and `close()`.
 * (The shared HTTP suite checks the served text of each counter and gauge.)
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createEventBus, memoryStorage, type Logger, type Storage } from '@blawby/event-bus';
import { eventBusMetrics } from '@blawby/event-bus/prometheus';
import { catalog } from '../bus/fixtures';

async function valueOf(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const { values } = await metric.get();
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return values.find((v) => JSON.stringify(Object.entries(v.labels).sort()) === wanted)?.value;
}

describe('eventBusMetrics', () => {
  it('registers on the registry it is given, under the prefix, and counts retries', async () => {
    const registry = new Registry();
    const bus = createEventBus({ catalog, retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 2 } });
    const metrics = eventBusMetrics(bus, { registry, prefix: 'app_bus_', subscribers: ['never.ran'] });
    let calls = 0;
    bus.subscribe('auth.user_logged_in', () => {
      calls += 1;
      if (calls < 3) throw new Error('flaky');
    }, { name: 'flaky' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    const labels = { event_type: 'auth.user_logged_in', subscriber: 'flaky' };
    expect(metrics.registry).toBe(registry);
    expect(await valueOf(registry, 'app_bus_delivery_retries_total', labels)).toBe(2);
    expect(await valueOf(registry, 'app_bus_delivery_failures_total', labels)).toBe(2);
    expect(await valueOf(registry, 'app_bus_deliveries_succeeded_total', labels)).toBe(1);
    const text = await metrics.metrics();
    // Only first attempts measure lag.
    expect(text).toContain('app_bus_delivery_lag_seconds_count{event_type="auth.user_logged_in",subscriber="flaky"} 1');
    expect(text).toContain('app_bus_handler_duration_seconds_count{event_type="auth.user_logged_in",subscriber="flaky",outcome="retrying"} 2');
    // A subscriber named in the options is reported before it runs anything.
    expect(text).toContain('app_bus_deliveries_pending{subscriber="never.ran",state="due"} 0');
    expect(metrics.contentType).toBe(registry.contentType);
    await bus.stop();
  });

  it('creates a registry of its own, and close() stops counting and unregisters', async () => {
    const bus = createEventBus({ catalog });
    const metrics = eventBusMetrics(bus);
    await bus.publish('org.created', { organizationName: 'O' });
    expect(await valueOf(metrics.registry, 'event_bus_events_published_total', { event_type: 'org.created' })).toBe(1);
    metrics.close();
    metrics.close();
    expect(metrics.registry.getMetricsAsArray()).toHaveLength(0);
    await bus.publish('org.created', { organizationName: 'P' });
    // A second set on the same registry can register again after close().
    const again = eventBusMetrics(bus, { registry: metrics.registry });
    expect(await valueOf(again.registry, 'event_bus_events_published_total', { event_type: 'org.created' })).toBeUndefined();
    again.close();
    await bus.stop();
  });

  it('reports storage_up 0, the storage gauges as NaN, and warns when the storage fails a scrape', async () => {
    const inner = memoryStorage();
    let broken = false;
    const storage = new Proxy(inner, {
      get(target, key) {
        const value = Reflect.get(target, key) as unknown;
        if (key === 'health' && broken) return async () => Promise.reject(new Error('connection refused'));
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Storage;
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (_fields, msg) => void warnings.push(msg ?? '') };
    const bus = createEventBus({ catalog, storage });
    const metrics = eventBusMetrics(bus, { logger, subscribers: ['a'] });
    broken = true;
    const text = await metrics.metrics();
    expect(text).toContain('event_bus_storage_up 0');
    // prom-client writes NaN as "Nan"; Prometheus reads either.
    expect(text).toMatch(/^event_bus_unprocessed_events NaN$/im);
    expect(text).toMatch(/^event_bus_deliveries_pending\{subscriber="a",state="due"\} NaN$/im);
    expect(warnings).toEqual(['event bus metrics: the storage did not answer; storage gauges read NaN']);
    metrics.close();
    await bus.stop();
  });
});
