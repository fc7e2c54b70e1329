/**
 * `@blawby/event-bus/opentelemetry` with the real SDK (an in-memory exporter
 * and the AsyncLocalStorage context manager): one trace joins an outer span
 * (standing in for the HTTP request), the publish, every handler, and what a
 * handler publishes in turn, on the memory storage and on PostgreSQL (PGlite,
 * and postgres.js when `DATABASE_URL` is set), where the trace context
 * travels in the stored `metadata.traceparent`.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, memoryStorage, type EventBus, type Storage } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import {
  DEFAULT_MESSAGING_SYSTEM,
  formatTraceparent,
  parseTraceparent,
  traceEventBus,
} from '@blawby/event-bus/opentelemetry';
import { catalog, signup } from '../bus/fixtures';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../postgres/databases';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(async () => {
  context.disable();
  await provider.shutdown();
});
afterEach(() => exporter.reset());

interface StorageUnderTest {
  name: string;
  /** Whether `open()` gives a `transaction` runner (publishing inside the caller's transaction). */
  transactional: boolean;
  open(): Promise<{ storage: Storage; close(): Promise<void>; transaction?: <T>(fn: (tx: unknown) => Promise<T>) => Promise<T> }>;
}

const STORAGES: StorageUnderTest[] = [
  { name: 'memory', transactional: false, open: async () => ({ storage: memoryStorage(), close: async () => {} }) },
  ...DRIVERS.map(
    (driver): StorageUnderTest => ({
      name: `postgres (${driver})`,
      transactional: true,
      async open() {
        const database: TestDatabase = await createTestDatabase(driver);
        await migrate(database.db);
        return {
          storage: postgresStorage({ db: database.db }),
          close: () => database.dispose(),
          transaction: (fn) => database.db.transaction((tx) => fn(tx)),
        };
      },
    }),
  ),
];

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

for (const { name, open, transactional } of STORAGES) {
  describe(`tracing on ${name} storage`, () => {
    let bus: EventBus<typeof catalog>;
    let close: () => Promise<void>;

    afterEach(async () => {
      await bus?.stop();
      await close?.();
    });

    it('joins the outer span, the publish, every handler and what a handler publishes in one trace', async () => {
      const opened = await open();
      close = opened.close;
      bus = createEventBus({
        catalog,
        storage: opened.storage,
        retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 5 },
        dispatch: { pollIntervalMs: 50 },
      });
      traceEventBus(bus, { tracerProvider: provider });
      const seenInHandler: (string | undefined)[] = [];
      bus.subscribe('auth.user_signed_up', async (event, ctx) => {
        seenInHandler.push(trace.getActiveSpan()?.spanContext().spanId);
        await ctx.publish('org.created', { organizationName: `${event.payload.name}'s practice` });
      }, { name: 'onboarding.create_org' });
      bus.subscribe('*', () => undefined, { name: 'audit.log' });
      let failures = 0;
      bus.subscribe('auth.user_signed_up', () => {
        failures += 1;
        if (failures === 1) throw new TypeError('smtp timeout');
      }, { name: 'email.welcome' });
      await bus.start();

      const outer = tracer.startSpan('POST /signup', { kind: SpanKind.SERVER });
      const published = await context.with(trace.setSpan(context.active(), outer), () =>
        bus.publish('auth.user_signed_up', signup, { actor: 'user_1' }),
      );
      outer.end();
      await bus.idle({ timeoutMs: 10_000 });

      const spans = exporter.getFinishedSpans();
      const traceId = outer.spanContext().traceId;
      expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));

      // The publish: a PRODUCER child of the outer span, its context stored with the event.
      const [publish] = byName(spans, 'publish auth.user_signed_up');
      expect(publish).toBeDefined();
      expect(publish!.kind).toBe(SpanKind.PRODUCER);
      expect(parentOf(publish!)).toBe(outer.spanContext().spanId);
      expect(publish!.attributes).toMatchObject({
        'messaging.system': DEFAULT_MESSAGING_SYSTEM,
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'auth.user_signed_up',
        'messaging.message.id': published.eventId,
      });
      const [stored] = (await bus.timeline({ eventTypes: ['auth.user_signed_up'] })).events;
      expect(stored!.metadata.traceparent).toBe(formatTraceparent(publish!.spanContext()));
      expect(published.metadata.traceparent).toBe(stored!.metadata.traceparent);

      // Every handler run: a CONSUMER child of the publish, linked to it.
      const processes = byName(spans, 'process auth.user_signed_up');
      expect(processes.map((s) => `${s.attributes['messaging.consumer.group.name']}#${s.attributes['event_bus.delivery.attempt']}`).sort()).toEqual([
        'audit.log#1',
        'email.welcome#1',
        'email.welcome#2',
        'onboarding.create_org#1',
      ]);
      for (const span of processes) {
        expect(span.kind).toBe(SpanKind.CONSUMER);
        expect(parentOf(span)).toBe(publish!.spanContext().spanId);
        expect(span.links.map((l) => l.context.spanId)).toEqual([publish!.spanContext().spanId]);
        expect(span.attributes).toMatchObject({
          'messaging.system': DEFAULT_MESSAGING_SYSTEM,
          'messaging.operation.type': 'process',
          'messaging.destination.name': 'auth.user_signed_up',
          'messaging.message.id': published.eventId,
        });
      }
      const failed = processes.find((s) => s.attributes['messaging.consumer.group.name'] === 'email.welcome' && s.attributes['event_bus.delivery.attempt'] === 1)!;
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(failed.attributes['error.type']).toBe('TypeError');
      const ok = processes.filter((s) => s !== failed);
      expect(ok.every((s) => s.status.code !== SpanStatusCode.ERROR && s.attributes['error.type'] === undefined)).toBe(true);

      // The handler ran inside its span, and what it published is a child of it.
      const creator = processes.find((s) => s.attributes['messaging.consumer.group.name'] === 'onboarding.create_org')!;
      expect(seenInHandler).toEqual([creator.spanContext().spanId]);
      const [caused] = byName(spans, 'publish org.created');
      expect(parentOf(caused!)).toBe(creator.spanContext().spanId);
      const [audit] = byName(spans, 'process org.created');
      expect(audit!.attributes['messaging.consumer.group.name']).toBe('audit.log');
      expect(parentOf(audit!)).toBe(caused!.spanContext().spanId);
    });

    if (transactional) {
      it("carries the trace of a publish inside the caller's transaction (the outbox) to its handler", async () => {
        const opened = await open();
        close = opened.close;
        bus = createEventBus({ catalog, storage: opened.storage, dispatch: { pollIntervalMs: 50 } });
        traceEventBus(bus, { tracerProvider: provider });
        const published: { inTransaction: boolean }[] = [];
        bus.observe({ published: (o) => void published.push(o) });
        bus.subscribe('org.created', () => undefined, { name: 'projection' });
        await bus.start();
        const outer = tracer.startSpan('POST /organizations', { kind: SpanKind.SERVER });
        await context.with(trace.setSpan(context.active(), outer), () =>
          opened.transaction!((tx) => bus.publish('org.created', { organizationName: 'O' }, { tx })),
        );
        outer.end();
        await bus.idle({ timeoutMs: 10_000 });
        expect(published.map((p) => p.inTransaction)).toEqual([true]);
        const spans = exporter.getFinishedSpans();
        const [publish] = byName(spans, 'publish org.created');
        const [process] = byName(spans, 'process org.created');
        expect(parentOf(publish!)).toBe(outer.spanContext().spanId);
        expect(parentOf(process!)).toBe(publish!.spanContext().spanId);
        expect(process!.spanContext().traceId).toBe(outer.spanContext().traceId);
      });
    }
  });
}

describe('tracing without an active span or with consumerParent: link', () => {
  it('starts a trace at the publish, and a linked trace of its own per handler run with link', async () => {
    const bus = createEventBus({ catalog });
    traceEventBus(bus, { tracerProvider: provider, consumerParent: 'link', messagingSystem: 'blawby' });
    bus.subscribe('org.created', () => undefined, { name: 'projection' });
    await bus.start();
    await bus.publish('org.created', { organizationName: 'O' });
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    const [publish] = byName(exporter.getFinishedSpans(), 'publish org.created');
    const [process] = byName(exporter.getFinishedSpans(), 'process org.created');
    expect(parentOf(publish!)).toBeUndefined();
    expect(parentOf(process!)).toBeUndefined();
    expect(process!.spanContext().traceId).not.toBe(publish!.spanContext().traceId);
    expect(process!.links.map((l) => l.context.spanId)).toEqual([publish!.spanContext().spanId]);
    expect(process!.attributes['messaging.system']).toBe('blawby');
  });

  it('continues a trace context the caller put in the metadata, and leaves the event alone when removed', async () => {
    const bus = createEventBus({ catalog });
    const remove = traceEventBus(bus, { tracerProvider: provider });
    const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const event = await bus.publish('org.created', { organizationName: 'O' }, { metadata: { traceparent: incoming } });
    const [publish] = byName(exporter.getFinishedSpans(), 'publish org.created');
    expect(publish!.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(parentOf(publish!)).toBe('b7ad6b7169203331');
    expect(event.metadata.traceparent).toBe(formatTraceparent(publish!.spanContext()));
    remove();
    const untouched = await bus.publish('org.created', { organizationName: 'P' }, { metadata: { traceparent: incoming } });
    expect(untouched.metadata.traceparent).toBe(incoming);
    expect(byName(exporter.getFinishedSpans(), 'publish org.created')).toHaveLength(1);
    await bus.stop();
  });

  it('marks a failed publish with error.type, the stable code', async () => {
    const bus = createEventBus({ catalog, storage: memoryStorage() });
    traceEventBus(bus, { tracerProvider: provider });
    await bus.publish('org.created', { organizationName: 'O' }, { idempotencyKey: 'k' });
    const err = await bus.publish('auth.user_logged_in', { sessionId: 's' }, { idempotencyKey: 'k' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    const [span] = byName(exporter.getFinishedSpans(), 'publish auth.user_logged_in');
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes['error.type']).toBe('IDEMPOTENCY_CONFLICT');
    await bus.stop();
  });
});

describe('parseTraceparent', () => {
  it('reads valid W3C values and refuses malformed ones', () => {
    const valid = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect(parseTraceparent(valid)).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      isRemote: true,
    });
    expect(parseTraceparent(valid, 'vendor=abc')?.traceState?.get('vendor')).toBe('abc');
    // A later version may append fields; version 00 may not.
    expect(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra')?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    for (const bad of [
      undefined,
      42,
      '',
      `${valid}-extra`,
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
  });
});
