/**
 * `npm run demo`: runs the Blawby backend on an embedded PostgreSQL (PGlite;
 * set DATABASE_URL to use a real server), drives a scripted journey over
 * HTTP, and prints what the event bus did. Exits 0 when every check holds.
 *
 *   npm run demo              run the journey, print the report, exit
 *   npm run demo -- --serve   then keep the server up (Ctrl-C to stop)
 */
import { runDemo, type DemoReport, type DemoStep } from './blawby/demo/run-demo';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (s: string) => color ? `\x1b[${code}m${s}\x1b[0m` : s;
const green = paint('32');
const red = paint('31');
const dim = paint('2');
const bold = paint('1');
const out = (line = '') => process.stdout.write(`${line}\n`);

function heading(title: string): void {
  out();
  out(bold(title));
}

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  rows.forEach((row, index) => {
    const line = row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
    out(`  ${index === 0 ? dim(line) : line}`);
  });
}

function printStepStart(name: string): void {
  // On a terminal, show the running step; its result line replaces it.
  if (process.stdout.isTTY) process.stdout.write(dim(`… ${name}`));
}

function printStep(step: DemoStep): void {
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[2K');
  const mark = step.ok ? green('✓') : red('✗');
  out(`${mark} ${step.name} ${dim(`(${step.durationMs} ms)`)}`);
  out(`  ${step.ok ? dim(step.detail) : red(step.detail)}`);
}

function printReport(report: DemoReport): void {
  heading(`Events published (${report.totalEvents})`);
  table([
    ['type', 'count'],
    ...Object.entries(report.eventsByType)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([type, n]) => [type, String(n)]),
  ]);

  heading('Deliveries per subscriber');
  table([
    ['subscriber', 'events', 'attempts', 'succeeded', 'retried', 'dead-lettered'],
    ...report.deliveries.map((d) => [
      d.subscriber,
      String(d.deliveries),
      String(d.attempts),
      String(d.succeeded),
      String(d.retried),
      String(d.deadLettered),
    ]),
  ]);

  heading('Dead letters');
  if (!report.deadLetters.length) out('  none');
  for (const d of report.deadLetters) {
    out(`  ${d.subscriber} <- ${d.eventType} (${d.eventId})`);
    out(`    after ${d.attempts} attempt(s): ${d.error}`);
    out(dim('    fix the cause, then bus.deadLetters.redrive(id) delivers it again'));
  }

  heading(`Timeline of organization ${report.timeline.organizationId} (newest first)`);
  for (const e of report.timeline.events) {
    out(`  ${dim(e.timestamp.slice(11, 23))}  ${e.eventType.padEnd(38)} ${dim(e.actor ?? '')}`);
  }

  heading(`Emails written to ${report.outboxDir}`);
  table([['to', 'subject', 'file'], ...report.emails.map((e) => [e.to, e.subject, e.file])]);

  heading('Slack webhook calls');
  table([
    ['channel', 'status', 'text'],
    ...report.slack.map((s) => [s.path.replace('/slack/', '#'), String(s.status), s.text]),
  ]);

  heading('Stripe webhooks');
  out(
    `  redelivered event: ${JSON.stringify(report.webhooks.duplicateResponse)} (stored once: ${
      report.webhooks.storedOnce
    })`,
  );
  out(`  forged signature: HTTP ${report.webhooks.badSignatureStatus}`);

  heading('Analytics table');
  out(`  ${report.analytics.tracked} events tracked; conversions: ${JSON.stringify(report.analytics.conversions)}`);

  heading('GET /events/health');
  out(`  HTTP ${report.health.status} ${JSON.stringify(report.health.body)}`);

  heading('Checks');
  for (const c of report.checks) out(`  ${c.ok ? green('✓') : red('✗')} ${c.name}`);
}

async function main(): Promise<number> {
  const serve = process.argv.includes('--serve');
  const databaseUrl = process.env.DATABASE_URL;
  out(bold('Blawby event bus demo'));
  out(
    dim(
      databaseUrl
        ? 'PostgreSQL from DATABASE_URL (in a schema of its own, dropped afterwards)'
        : 'embedded PostgreSQL (PGlite); set DATABASE_URL to use a server',
    ),
  );
  out();
  const report = await runDemo({
    ...(databaseUrl ? { databaseUrl } : {}),
    keepServer: serve,
    onStepStart: printStepStart,
    onStep: printStep,
  });
  if (report.checks.length) printReport(report);
  out();
  if (!report.ok) {
    out(red(bold('Demo failed:')));
    for (const f of report.failures) out(red(`  ${f}`));
    return 1;
  }
  out(green(bold(`Demo passed in ${(report.durationMs / 1000).toFixed(1)} s.`)));
  if (report.server) {
    const { url, ownerToken, organizationId } = report.server;
    out();
    out(`Server running at ${bold(url)}  (Ctrl-C to stop)`);
    out(`Dashboard: ${bold(`${url}/events/dashboard#token=${ownerToken}`)}`);
    out(dim(`  curl ${url}/events/health`));
    out(
      dim(`  curl -H 'authorization: Bearer ${ownerToken}' '${url}/events/timeline?organizationId=${organizationId}'`),
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await report.server.close();
    out('Stopped.');
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`Demo crashed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
