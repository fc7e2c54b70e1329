/**
 * Says once, loudly, which real services this run lacks. Suites that need a
 * server read its URL from the environment; without it they are skipped with
 * a reason (or, for PostgreSQL, run on PGlite only).
 */
export default function setup(): void {
  const lines = [
    ['DATABASE_URL', 'PostgreSQL suites run on PGlite only, not on a real server'],
    ['REDIS_URL', 'the Redis transport suites are skipped'],
    ['NATS_URL', 'the NATS transport suites are skipped'],
  ]
    .filter(([name]) => !process.env[name!])
    .map(([name, effect]) => `  ${name} is not set: ${effect}`);
  if (lines.length) process.stderr.write(`\n[event-bus tests] services missing:\n${lines.join('\n')}\n\n`);
}
