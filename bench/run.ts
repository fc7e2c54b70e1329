/**
 * `npm run bench`: runs the core benchmarks and the PostgreSQL ones under
 * bench/postgres/, each in its own child process, and
 * writes the collected tables with the machine and versions to docs/benchmarks.md.
 *
 * Options:
 *   --quick        short smoke run (a few seconds per script); prints the result but
 *                  does not overwrite docs/benchmarks.md unless --out is given
 *   --out <file>   where to write the markdown (default docs/benchmarks.md for a full run)
 *   --strict       exit 1 when a performance target is missed (default: only on errors)
 *   --only <text>  run only the scripts whose file name contains it (e.g. --only e2e)
 *
 * The PostgreSQL scripts run on a private cluster this run starts (initdb, stock
 * settings, a free port) and, when DATABASE_URL is set, on that server as well.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startThrowawayServer, type ThrowawayServer } from '../test/postgres/fixtures/throwaway-server';
import { flag, loadAverage, option, progress, table } from './core/util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quick = flag('quick');
const strict = flag('strict');
const out = option('out') ?? (quick ? undefined : 'docs/benchmarks.md');
/** Only the scripts whose file name contains this (e.g. `--only e2e`). */
const only = option('only');
let privateServer: ThrowawayServer | undefined;

/** Packages whose versions matter to the numbers. */
const PACKAGES = [
  'zod',
  'eventemitter3',
  'emittery',
  'drizzle-orm',
  'postgres',
  '@electric-sql/pglite',
  'graphile-worker',
  'pg-boss',
  'bullmq',
  'ioredis',
  '@nats-io/transport-node',
  '@nats-io/jetstream',
];

/** Files under bench/postgres/ that are helpers, not benchmark scripts. */
const HELPER = /^(_.*|.*\.d\.ts|util|utils|helpers?|shared|common|lib|setup|db)\.ts$/;

interface Script {
  title: string;
  file: string;
  nodeArgs: string[];
  timeoutMs: number;
  /** For PostgreSQL scripts: the server they run on (passed as DATABASE_URL). */
  server?: Server;
}

interface ScriptResult {
  script: Script;
  /** 0: all targets met, 1: ran but missed a target, other: failed. */
  code: number;
  stdout: string;
  stderrTail: string;
  seconds: number;
}

function packageVersion(name: string): string {
  const file = path.join(root, 'node_modules', name, 'package.json');
  if (!existsSync(file)) return 'not installed';
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** Runs one script as `node --import tsx <file>`, stdout collected, stderr streamed through. */
function runScript(script: Script): Promise<ScriptResult> {
  const started = Date.now();
  const args = [...script.nodeArgs, '--import', 'tsx', script.file, ...(quick ? ['--quick'] : [])];
  progress(`\n▶ ${script.title}: node ${args.join(' ')}`);
  return new Promise((resolve) => {
    const url = script.server?.private ? privateServer?.url : script.server?.url;
    const env = script.server ? { ...process.env, DATABASE_URL: url, BENCH_SERVER: script.server.label } : process.env;
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
      process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      progress(`${script.title}: no result after ${script.timeoutMs} ms, killing pid ${child.pid}`);
      child.kill('SIGKILL');
    }, script.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        script,
        code: code ?? (signal ? 128 : 3),
        stdout: stdout.trim(),
        stderrTail: stderr.trim().split('\n').slice(-15).join('\n'),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}

function scripts(): { list: Script[]; notes: string[] } {
  const minutes = (m: number) => m * 60_000;
  const list: Script[] = [
    {
      title: 'in-process throughput',
      file: 'bench/core/inprocess.ts',
      nodeArgs: ['--expose-gc'],
      timeoutMs: quick ? minutes(5) : minutes(45),
    },
    {
      title: 'memory over a long run',
      file: 'bench/core/memory.ts',
      nodeArgs: ['--expose-gc'],
      timeoutMs: quick ? minutes(5) : minutes(30),
    },
  ];
  const notes: string[] = [];
  const pgDir = path.join(root, 'bench', 'postgres');
  const pgScripts = existsSync(pgDir)
    ? readdirSync(pgDir)
        .filter((f) => f.endsWith('.ts') && !HELPER.test(f))
        .sort()
    : [];
  if (pgScripts.length === 0) {
    notes.push('No PostgreSQL benchmark scripts found under bench/postgres/.');
  } else {
    // Every PostgreSQL script runs on a private cluster with stock settings (autovacuum and
    // fsync on, as in production) and, when DATABASE_URL is set, on that server too.
    const servers: Server[] = [{ label: 'private stock PostgreSQL 15 cluster', private: true }];
    if (process.env.DATABASE_URL) servers.push({ label: 'shared server (DATABASE_URL)', url: process.env.DATABASE_URL });
    else notes.push('The PostgreSQL benchmarks ran on the private cluster only: DATABASE_URL is not set.');
    for (const server of servers) {
      for (const f of pgScripts) {
        // The long soak runs where it means something: on the stock cluster, autovacuum on.
        if (f === 'soak.ts' && !server.private) continue;
        list.push({
          title: `PostgreSQL: ${f} on the ${server.label}`,
          file: `bench/postgres/${f}`,
          nodeArgs: ['--expose-gc'],
          timeoutMs: quick ? minutes(10) : minutes(60),
          server,
        });
      }
    }
  }
  return { list, notes };
}

/** Where a PostgreSQL script runs. */
interface Server {
  label: string;
  /** Started by this run: initdb into a temporary folder, stock settings, a free port. */
  private?: boolean;
  url?: string;
}

function environmentSection(loadAtStart: string): string {
  const cpus = os.cpus();
  const rows: string[][] = [
    ['date', new Date().toISOString()],
    ['CPU', `${cpus[0]?.model.trim() ?? 'unknown'} (${cpus.length} cores)`],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['OS', `${os.type()} ${os.release()} ${os.arch()}`],
    ['Node.js', process.version],
    ['load average at start (1/5/15 min)', loadAtStart],
    ['mode', quick ? 'quick smoke run (short; not representative)' : 'full run'],
    ...PACKAGES.map((p) => [p, packageVersion(p)]),
  ];
  return table(['', ''], rows);
}

async function main(): Promise<number> {
  const loadAtStart = loadAverage();
  const { list: all, notes } = scripts();
  const list = only ? all.filter((s) => s.file.includes(only)) : all;
  const results: ScriptResult[] = [];
  try {
    for (const script of list) {
      if (script.server?.private && !privateServer) {
        progress('\nstarting a private PostgreSQL cluster (initdb, stock settings)');
        privateServer = await startThrowawayServer({ settings: 'stock' });
      }
      results.push(await runScript(script));
    }
  } finally {
    privateServer?.destroy();
  }

  const doc: string[] = [];
  doc.push('# Benchmarks');
  doc.push('');
  doc.push(
    'Generated by `npm run bench` (`bench/run.ts`); `npm run bench -- --quick` is a short smoke run. ' +
      'Each script runs in its own process. The machine is shared (other processes may run at the same time), ' +
      'so absolute rates vary between runs: compare the ratios, which are measured side by side in one run ' +
      '(alternating repetitions), and mind the load average recorded with each section.',
  );
  doc.push('');
  doc.push(
    'To see where the bus spends its time: `node --import tsx --expose-gc --cpu-prof --cpu-prof-dir=.tmp/prof ' +
      'bench/core/inprocess.ts --only bus1 --rounds 3 --n 100000`, then ' +
      '`npx tsx bench/core/cpuprofile-top.ts .tmp/prof/<file>.cpuprofile` (self time by function and file, ' +
      'inclusive time of src/ functions; `--lines` for the hottest lines of a profiled esbuild bundle).',
  );
  doc.push('');
  doc.push('## Machine and versions');
  doc.push('');
  doc.push(environmentSection(loadAtStart));
  doc.push('');
  for (const r of results) {
    if (r.stdout) {
      // Each PostgreSQL script's headings say which server they ran on.
      doc.push(r.script.server ? r.stdout.replace(/^(## .*)$/gm, `$1, ${r.script.server.label}`) : r.stdout);
      doc.push('');
    }
    if (r.code > 1) {
      doc.push(`**${r.script.title} (\`${r.script.file}\`) failed** (exit ${r.code} after ${r.seconds.toFixed(0)} s):`);
      doc.push('');
      doc.push('```');
      doc.push(r.stderrTail || '(no output)');
      doc.push('```');
      doc.push('');
    }
  }
  doc.push('## Summary');
  doc.push('');
  doc.push(
    table(
      ['script', 'result', 'time'],
      results.map((r) => [
        `\`${r.script.file}\``,
        r.code === 0 ? 'all targets met' : r.code === 1 ? 'ran; a target was missed' : `failed (exit ${r.code})`,
        `${r.seconds.toFixed(0)} s`,
      ]),
    ),
  );
  for (const note of notes) doc.push('', note);
  doc.push('');
  // The reading of the numbers (why a target is missed, what would close it) is written by hand.
  const analysis = path.join(root, 'bench', 'analysis.md');
  if (existsSync(analysis)) doc.push(readFileSync(analysis, 'utf8').trim(), '');
  const markdown = doc.join('\n');

  process.stdout.write(`\n${markdown}`);
  if (out) {
    writeFileSync(path.resolve(root, out), markdown);
    progress(`\nwritten to ${out}`);
  } else {
    progress('\n(quick run: docs/benchmarks.md left unchanged; pass --out <file> to write it)');
  }
  const failed = results.some((r) => r.code > 1);
  const missed = results.some((r) => r.code === 1);
  return failed || (strict && missed) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    progress(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
