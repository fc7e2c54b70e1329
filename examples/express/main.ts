/**
 * Runs the Express variant: `npx tsx examples/express/main.ts`
 * (PGlite in process; set DATABASE_URL for PostgreSQL, PORT for the port).
 */
import { createExpressBlawby } from './server';

const blawby = await createExpressBlawby({
  ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
  outboxDir: process.env.OUTBOX_DIR ?? '.outbox/express',
});
await blawby.bus.start();
const url = await blawby.listen(Number(process.env.PORT ?? 3000));
process.stdout.write(`Blawby (Express) listening on ${url}\n  POST ${url}/auth/signup\n  GET  ${url}/events/health\n`);

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
