/**
 * `GET {prefix}/metrics`: the Prometheus text of a metrics source, such as
 * `eventBusMetrics(bus)` of `@blawby/event-bus/prometheus` or a prom-client
 * `Registry`. Typed structurally, so the framework adapters never import
 * prom-client (an optional peer dependency).
 */
import type { Logger } from '@blawby/event-bus';

/** What the metrics route serves: anything with prom-client's `Registry` shape for text output. */
export interface MetricsSource {
  /** The `Content-Type` of {@link metrics}' text (prom-client: `registry.contentType`). */
  readonly contentType: string;
  /** The metrics in the Prometheus (or OpenMetrics) text format. */
  metrics(): Promise<string>;
}

/** A text answer of a route, before the framework sends it. */
export interface TextResult {
  status: number;
  contentType: string;
  body: string;
}

/** The route's answer when the source fails (logged; no detail goes to the scraper). */
const UNAVAILABLE: TextResult = { status: 503, contentType: 'text/plain; charset=utf-8', body: 'metrics unavailable\n' };

/** Checks the `metrics` route option of an adapter: absent, or a {@link MetricsSource}. */
export function isMetricsSource(value: unknown): value is MetricsSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as MetricsSource).metrics === 'function' &&
    typeof (value as MetricsSource).contentType === 'string'
  );
}

/** `GET {prefix}/metrics` (public, like health): 200 with the text, 503 when the source throws. */
export async function metricsRoute(source: MetricsSource, logger?: Logger): Promise<TextResult> {
  try {
    return { status: 200, contentType: source.contentType, body: await source.metrics() };
  } catch (err) {
    logger?.error({ err }, 'event bus metrics failed');
    return UNAVAILABLE;
  }
}
