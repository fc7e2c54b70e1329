/**
 * Runs the Hono variant: `DATABASE_URL=postgres://... npx tsx examples/hono/main.ts`
 * (PORT for the port, STRIPE_WEBHOOK_SECRET for the webhook's secret).
 */
import { createHonoBlawby } from './server';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  process.stderr.write('The Hono variant runs on node-postgres: set DATABASE_URL to a PostgreSQL server.\n');
  process.exit(2);
}
const blawby = await createHonoBlawby({
  databaseUrl,
  outboxDir: process.env.OUTBOX_DIR ?? '.outbox/hono',
  stripeWebhookSecret: process.env.STRIPE_WEBHOOK_SECRET ?? 'whsec_local_development',
});
await blawby.bus.start();
const url = await blawby.listen(Number(process.env.PORT ?? 3000));
process.stdout.write(`Blawby (Hono) listening on ${url}\n  POST ${url}/auth/signup\n  GET  ${url}/events/health\n`);

// Graceful shutdown as the backend's (30 s): stop taking requests, then let in-flight handlers finish.
const shutdown = () => {
  blawby.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`shutdown failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
