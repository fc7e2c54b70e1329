/**
 * OpenTelemetry traces of an event bus, through `@opentelemetry/api` only
 * (bring your own SDK; with none installed every span is a no-op), built on
 * the bus's public middleware seam and following the messaging semantic
 * conventions:
 *
 * - a `PRODUCER` span `publish {eventType}` around each publish, whose
 *   context is written to the event's `metadata.traceparent` (W3C Trace
 *   Context) before it is stored, so it travels through every storage and
 *   transport;
 * - a `CONSUMER` span `process {eventType}` around each handler run, a child
 *   of (and linked to) the context the event carries, active while the
 *   handler runs, so what the handler does (including `ctx.publish`) joins
 *   the same trace.
 *
 * @example
 * ```ts
 * import { createEventBus } from '@blawby/event-bus';
 * import { traceEventBus } from '@blawby/event-bus/opentelemetry';
 *
 * const bus = createEventBus({ catalog, storage });
 * traceEventBus(bus); // the global tracer provider, or { tracerProvider }
 * ```
 *
 * @module @blawby/event-bus/opentelemetry
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { EventBusError } from '@blawby/event-bus';
import type { BaseEvent, Catalog, EventBus, HandlerMiddleware, PublishMiddleware } from '@blawby/event-bus';

/** The instrumentation scope name of the spans. */
export const TRACER_NAME = '@blawby/event-bus';

/** Default `messaging.system` of the spans. */
export const DEFAULT_MESSAGING_SYSTEM = 'blawby_event_bus';

/** Options of {@link traceEventBus} and {@link tracingMiddleware}. */
export interface EventBusTracingOptions {
  /** Where the tracer comes from (default: the global one, `trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** The `messaging.system` attribute (default {@link DEFAULT_MESSAGING_SYSTEM}). */
  messagingSystem?: string;
  /**
   * `'child'` (default): a `process` span is a child of the publish that
   * created the event, and linked to it, so one trace shows the request, the
   * publish and every handler. `'link'`: it starts a trace of its own, only
   * linked to the publish (for events replayed long after, say).
   */
  consumerParent?: 'child' | 'link';
}

/** The middleware pair {@link traceEventBus} installs. */
export interface TracingMiddleware {
  /** Starts the `PRODUCER` spans and writes `metadata.traceparent`. */
  publish: PublishMiddleware;
  /** Runs each handler inside its `CONSUMER` span. */
  handle: HandlerMiddleware;
}

/**
 * Traces the bus's publishes and handler runs (see the module comment).
 * Install it before handlers run. Returns the function that removes the
 * middleware again.
 */
export function traceEventBus<C extends Catalog>(bus: EventBus<C>, options: EventBusTracingOptions = {}): () => void {
  const middleware = tracingMiddleware(options);
  const removePublish = bus.usePublish(middleware.publish);
  const removeHandle = bus.use(middleware.handle);
  return () => {
    removePublish();
    removeHandle();
  };
}

/**
 * The tracing middleware, for `createEventBus({ publishMiddleware: [m.publish], middleware: [m.handle] })`
 * when it should wrap the others (the first middleware is the outermost).
 */
export function tracingMiddleware(options: EventBusTracingOptions = {}): TracingMiddleware {
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME);
  const system = options.messagingSystem ?? DEFAULT_MESSAGING_SYSTEM;
  const linkOnly = options.consumerParent === 'link';

  const publish: PublishMiddleware = async (batch, next) => {
    const active = context.active();
    const spans = batch.events.map((event) => {
      // Inside a handler the active context is its `process` span; elsewhere a
      // context the caller put in the metadata (e.g. from an ingested CloudEvent) is used.
      const carried = trace.getSpan(active) ? undefined : parseTraceparent(event.metadata.traceparent, event.metadata.tracestate);
      const parent = carried ? trace.setSpanContext(active, carried) : active;
      const attributes: Attributes = {
        'messaging.system': system,
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': event.eventType,
        'messaging.message.id': event.eventId,
      };
      if (typeof event.metadata.correlationId === 'string') attributes['messaging.message.conversation_id'] = event.metadata.correlationId;
      if (batch.events.length > 1) attributes['messaging.batch.message_count'] = batch.events.length;
      const span = tracer.startSpan(`publish ${event.eventType}`, { kind: SpanKind.PRODUCER, attributes }, parent);
      const spanContext = span.spanContext();
      if (isSpanContextValid(spanContext)) {
        const fields: Record<string, string> = { traceparent: formatTraceparent(spanContext) };
        const state = spanContext.traceState?.serialize();
        if (state) fields.tracestate = state;
        batch.setMetadata(event, fields);
      }
      return span;
    });
    try {
      await next();
    } catch (err) {
      for (const span of spans) fail(span, err);
      throw err;
    } finally {
      for (const span of spans) span.end();
    }
  };

  const handle: HandlerMiddleware = async (event, ctx, next) => {
    const creation = parseTraceparent(event.metadata.traceparent, event.metadata.tracestate);
    const parent: Context = creation && !linkOnly ? trace.setSpanContext(ROOT_CONTEXT, creation) : ROOT_CONTEXT;
    const links: Link[] = creation ? [{ context: creation }] : [];
    const span = tracer.startSpan(
      `process ${event.eventType}`,
      { kind: SpanKind.CONSUMER, attributes: processAttributes(system, event, ctx), links },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), next);
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  };

  return { publish, handle };
}

function processAttributes(system: string, event: BaseEvent, ctx: { subscriber: string; deliveryId: string; attempt: number }): Attributes {
  const attributes: Attributes = {
    'messaging.system': system,
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': event.eventType,
    'messaging.consumer.group.name': ctx.subscriber,
    'messaging.message.id': event.eventId,
    'event_bus.delivery.id': ctx.deliveryId,
    'event_bus.delivery.attempt': ctx.attempt,
  };
  if (typeof event.metadata.correlationId === 'string') attributes['messaging.message.conversation_id'] = event.metadata.correlationId;
  return attributes;
}

/** Marks a span failed: `error.type` is the error's stable code when it has one, else its class name. */
function fail(span: Span, err: unknown): void {
  const type = EventBusError.is(err) ? err.code : err instanceof Error ? err.name : 'Error';
  span.setAttribute('error.type', type);
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** A span context as a W3C `traceparent` header value (version 00). */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The remote span context in a W3C `traceparent` (and `tracestate`) value,
 * or `undefined` when it is absent or malformed (version `ff`, all-zero ids,
 * trailing data on version 00).
 */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const spanContext: SpanContext = { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) & 0xff, isRemote: true };
  if (typeof tracestate === 'string' && tracestate.length > 0) spanContext.traceState = createTraceState(tracestate);
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}
