/**
 * Says once, loudly, which real services this run has. Suites that need a
 * server read its URL from the environment; without it they are skipped with
 * a reason (or, for PostgreSQL, run on PGlite).
 */
export default function setup(): void {
  const lines = [
    ['DATABASE_URL', 'PostgreSQL suites run on PGlite only'],
    ['REDIS_URL', 'Redis suites are SKIPPED'],
    ['NATS_URL', 'NATS suites are SKIPPED'],
  ]
    .filter(([name]) => !process.env[name!])
    .map(([name, effect]) => `  ${name} is not set: ${effect}`);
  if (lines.length) process.stderr.write(`\n[event-bus tests] services missing:\n${lines.join('\n')}\n\n`);
}
