/**
 * The Blawby Fastify application (seed section 5): the event bus plugin with
 * its timeline, health, Prometheus metrics and dashboard routes, then the
 * feature routes. Unexpected errors publish `system.error_occurred`; slow requests `system.performance_degraded`.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { eventBusPlugin } from '@blawby/event-bus/fastify';
import { eventBusMetrics } from '@blawby/event-bus/prometheus';
import type { BlawbyBus } from './handlers/bus';
import { findCaller } from './auth/sessions';
import { authRoutes } from './routes/auth';
import { billingRoutes } from './routes/billing';
import type { RouteDeps } from './routes/deps';
import { HttpError, requestEvents } from './routes/http';
import { onboardingRoutes } from './routes/onboarding';
import { organizationRoutes } from './routes/organizations';
import { practiceRoutes } from './routes/practice';

/** Options of {@link buildApp}. */
export interface AppOptions extends RouteDeps {
  bus: BlawbyBus;
  /** Fastify's logger option (default off). */
  logger?: FastifyServerOptions['logger'];
  /** A request slower than this publishes `system.performance_degraded` (default 2000 ms). */
  slowRequestMs?: number;
}

/** Builds the Fastify app (not listening yet). Closing it stops the bus. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { bus, db } = options;
  const slowRequestMs = options.slowRequestMs ?? 2000;
  const app = Fastify({ logger: options.logger ?? false });

  await app.register(eventBusPlugin, {
    bus,
    // The dashboard shows every organization: in this demo any signed-in user may open it; a real app admits operators only.
    routes: { prefix: '/events', timeline: true, health: true, metrics: eventBusMetrics(bus), dashboard: true },
    authorize: async (request) => {
      const caller = await findCaller(db, request);
      return caller ? { actor: caller.userId, organizationIds: [...caller.memberships.keys()] } : null;
    },
  });

  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof HttpError) {
      return reply.code(error.status).send({
        error: { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) },
      });
    }
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    if (status < 500) {
      // Fastify's own 4xx (malformed JSON, body too large, ...).
      return reply.code(status).send({
        error: { code: (error as { code?: string }).code ?? 'BAD_REQUEST', message: (error as Error).message },
      });
    }
    request.log.error({ err: error }, 'request failed');
    const err = error as Error;
    try {
      await requestEvents(request).publish(
        'system.error_occurred',
        {
          errorName: err.name ?? 'Error',
          message: String(err.message ?? '').slice(0, 2000),
          statusCode: status,
          method: request.method,
          route: request.routeOptions.url ?? request.url,
        },
        { actor: 'system', actorType: 'system' },
      );
    } catch (publishError) {
      request.log.error({ err: publishError }, 'could not publish system.error_occurred');
    }
    return reply.code(500).send({ error: { code: 'INTERNAL', message: 'Internal server error' } });
  });

  app.addHook('onResponse', async (request, reply) => {
    if (reply.elapsedTime < slowRequestMs) return;
    try {
      await requestEvents(request).publish(
        'system.performance_degraded',
        {
          metric: 'response_time_ms',
          value: Math.round(reply.elapsedTime),
          threshold: slowRequestMs,
          method: request.method,
          route: request.routeOptions.url ?? request.url,
        },
        { actor: 'system', actorType: 'system' },
      );
    } catch (err) {
      request.log.error({ err }, 'could not publish system.performance_degraded');
    }
  });

  await app.register(async (scope) => {
    await authRoutes(scope, options);
    await onboardingRoutes(scope, options);
    await organizationRoutes(scope, options);
    await practiceRoutes(scope, options);
    await billingRoutes(scope, options);
  });
  return app;
}
